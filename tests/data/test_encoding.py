"""Encoding detection and line-by-line decoding (data/encoding.py)."""

import gzip

import pytest

from open_autoglm.data.encoding import SAMPLE_BYTES, detect_encoding, guess_encoding, open_text

TEXTS = {
    "utf-8": "酒店很好\nnice hotel\n".encode(),
    "utf-8-sig": "\ufeff酒店很好\nnice hotel\n".encode(),
    "gb18030": "距离川沙公路较近，但是公交指示不对。\n房间较为简单\n".encode("gbk"),
    "latin-1": "a sister\xf0city\ncaf\xe9 cr\xe8me\n".encode("latin-1"),  # \xf0c is valid GBK too
}


@pytest.mark.parametrize("encoding", list(TEXTS))
def test_detects_and_decodes(tmp_path, encoding):
    path = tmp_path / "f.txt"
    path.write_bytes(TEXTS[encoding])
    assert detect_encoding(path) == encoding
    lines = list(open_text(path))
    assert all(line.ok for line in lines)
    assert [line.number for line in lines] == [1, 2]
    assert "".join(line.text for line in lines) == TEXTS[encoding].decode(encoding)
    assert not lines[0].text.startswith("\ufeff")  # the BOM is stripped


def test_character_cut_at_the_end_of_the_sample_is_not_an_error():
    data = "好".encode() * 10
    assert guess_encoding(data[:-1], complete=False) == "utf-8"
    assert guess_encoding(data[:-1], complete=True) != "utf-8"


def test_line_after_the_sample_that_does_not_decode_is_flagged(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes((b"x" * 80 + b"\n") * (SAMPLE_BYTES // 80) + "中文\n".encode("gbk") + b"end\n")
    text = open_text(path)
    assert text.encoding == "utf-8"
    bad = [line for line in text if not line.ok]
    assert len(bad) == 1 and "\ufffd" in bad[0].text


def test_given_encoding_wins_and_gz_is_opened(tmp_path):
    path = tmp_path / "f.txt.gz"
    path.write_bytes(gzip.compress(TEXTS["gb18030"]))
    assert detect_encoding(path) == "gb18030"
    assert [line.text for line in open_text(path, "latin-1")][0] == TEXTS["gb18030"].split(b"\n")[0].decode(
        "latin-1"
    ) + "\n"
