"""The html and warc readers: crafted pages and WARC files written here, then the real dolma WARC samples."""

import base64
import gzip
import hashlib

import pytest
from conftest import SHARED_DATA
from test_clean import STORY  # one page of prose, shared with the cleaning tests

from open_autoglm.data.readers import (
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
    detect_format,
    iter_records,
    read_records,
)

PRETRAIN = ReadOptions(task="pretrain")
WARC_SAMPLES = SHARED_DATA / "web_warc_dolma"

STORY_ZH = (
    "<p>我们一大早就出发了，开了两个小时的车才到达湖的北岸，那里的湖水很平静，空气中弥漫着松树的香味。</p>"
    "<p>游了很久的泳之后，我们在小火堆上做了午饭，看着船只经过，聊起小时候在这里度过的夏天和一起来的朋友们。</p>"
    "<p>傍晚起风了，云从西边飘过来，我们在第一滴雨落到回家的路上之前收拾好了车子。</p>"
)


def page(body: str = STORY, head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head>{head}<title>Lake blog</title><script>var t = 'SCRIPTCODE';</script>"
        "</head><body><nav><a href='/'>Home</a> <a href='/about'>About us</a></nav>"
        f"<article><h1>A day at the lake</h1>{body}</article>"
        "<footer><p>Copyright 2024 Lake Blog Inc. All rights reserved.</p></footer></body></html>"
    )


EMPTY_PAGE = "<html><head><script>var x = 1;</script></head><body><div></div></body></html>"


def rows(path, options=PRETRAIN, fmt="auto"):
    return list(iter_records(path, options, fmt))


# --- html -----------------------------------------------------------------------------------------------


def test_html_page_is_one_row_of_main_text(tmp_path):
    path = tmp_path / "lake.html"
    path.write_text(page(), encoding="utf-8")
    assert detect_format(path) == "html"
    [row] = rows(path)
    assert isinstance(row, Record) and (row.source, row.line) == (str(path), 1)
    assert "northern shore of the lake" in row.data["text"] and "road home" in row.data["text"]
    for boilerplate in ("About us", "Copyright 2024", "SCRIPTCODE", "<p>", "<script"):
        assert boilerplate not in row.data["text"]


def test_gzipped_htm_page_with_a_meta_charset(tmp_path):
    path = tmp_path / "lake.htm.gz"
    path.write_bytes(gzip.compress(page(STORY_ZH, head='<meta charset="gbk">').encode("gbk")))
    assert detect_format(path) == "html"
    [row] = rows(path)
    assert "湖的北岸" in row.data["text"]


def test_html_page_without_main_text_is_quarantined(tmp_path):
    path = tmp_path / "empty.html"
    path.write_text(EMPTY_PAGE, encoding="utf-8")
    [row] = rows(path)
    assert isinstance(row, Malformed)
    assert (row.line, row.reason) == (1, "no main text in HTML page")
    assert "<script>" in row.raw


def test_html_forced_encoding(tmp_path):
    path = tmp_path / "latin.html"
    path.write_bytes(page(STORY.replace("lake", "lac à côté")).encode("latin-1"))
    [good] = rows(path, ReadOptions(task="pretrain", encoding="latin-1"))
    assert "lac à côté" in good.data["text"]
    [bad] = rows(path, ReadOptions(task="pretrain", encoding="utf-8"))
    assert isinstance(bad, Malformed) and bad.reason == "undecodable bytes (encoding utf-8)"


@pytest.mark.parametrize("fmt", ["html", "warc"])
def test_web_formats_feed_pretraining_only(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    path.write_text(page(), encoding="utf-8")
    with pytest.raises(DataFormatError, match="cannot feed task 'classification'"):
        rows(path, ReadOptions(), fmt=fmt)


# --- warc -----------------------------------------------------------------------------------------------


def http_response(
    body: bytes, content_type: str | None = "text/html; charset=utf-8", status: str = "200 OK", headers=()
):
    lines = [f"HTTP/1.1 {status}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [*headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def warc_record(kind: str, block: bytes, uri: str = "https://example.org/", digest: bool = True) -> bytes:
    """One WARC/1.0 record; requests and responses carry an HTTP message."""
    headers = [
        "WARC/1.0",
        f"WARC-Type: {kind}",
        f"WARC-Record-ID: <urn:uuid:{hashlib.md5(block + kind.encode()).hexdigest()}>",
        "WARC-Date: 2024-04-25T16:24:46Z",
    ]
    if kind != "warcinfo":
        headers.append(f"WARC-Target-URI: {uri}")
    if kind in ("request", "response"):
        headers.append(f"Content-Type: application/http;msgtype={kind}")
    if digest:
        headers.append("WARC-Block-Digest: sha1:" + base64.b32encode(hashlib.sha1(block).digest()).decode())
    headers.append(f"Content-Length: {len(block)}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + block + b"\r\n\r\n"


def request(uri: str) -> bytes:
    return warc_record("request", f"GET / HTTP/1.1\r\nHost: {uri}\r\n\r\n".encode(), uri)


def crafted_warc() -> list[bytes]:
    """Records 1..13: what each becomes is in `test_warc_rows_are_html_responses`."""
    return [
        warc_record("warcinfo", b"software: test\r\nformat: WARC File Format 1.0\r\n"),  # 1
        request("https://a.example/"),  # 2
        warc_record("response", http_response(page().encode()), "https://a.example/"),  # 3
        warc_record("response", http_response(page().encode(), status="404 Not Found"), "https://b.example/"),
        warc_record(
            "response", http_response(b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"), "https://c.example/i"
        ),
        warc_record("response", http_response(EMPTY_PAGE.encode()), "https://d.example/"),  # 6
        warc_record(  # 7: gzip Content-Encoding, GBK named by HTTP only
            "response",
            http_response(
                gzip.compress(page(STORY_ZH).encode("gbk")),
                "text/html; charset=GBK",
                headers=["Content-Encoding: gzip"],
            ),
            "https://e.example/zh",
        ),
        warc_record("response", http_response(page().encode(), content_type=None), "https://f.example/"),  # 8
        warc_record("metadata", b"outlinks: https://a.example/x\r\n"),  # 9
        warc_record("resource", b"wget log line\n", "metadata://wget.log"),  # 10
        warc_record("response", http_response(b'{"not": "html"}', "application/json"), "https://g.example/"),
        warc_record("response", http_response(page().encode(), "text/html"), "<https://h.example/>"),  # 12
        warc_record("response", http_response(page().encode("utf-16"), "text/html"), "https://i.example/"),
    ]


def test_warc_rows_are_html_responses(tmp_path):
    path = tmp_path / "crawl.warc"
    path.write_bytes(b"".join(crafted_warc()))
    assert detect_format(path) == "warc"
    got = rows(path)
    assert [(r.line, type(r).__name__) for r in got] == [
        (3, "Record"),
        (4, "Malformed"),
        (5, "Malformed"),
        (6, "Malformed"),
        (7, "Record"),
        (8, "Record"),
        (11, "Malformed"),
        (12, "Record"),
        (13, "Record"),
    ]
    by_line = {r.line: r for r in got}
    assert "northern shore of the lake" in by_line[3].data["text"]
    assert "SCRIPTCODE" not in by_line[3].data["text"] and "About us" not in by_line[3].data["text"]
    assert "湖的北岸" in by_line[7].data["text"]
    assert by_line[8].data == by_line[3].data == by_line[12].data == by_line[13].data
    assert (by_line[4].reason, by_line[4].raw) == ("HTTP status 404, not a page", "https://b.example/")
    assert by_line[5].reason == "not an HTML page (Content-Type image/png)"
    assert by_line[6].reason == "no main text in HTML page"
    assert by_line[11].reason == "not an HTML page (Content-Type application/json)"


def test_gzipped_warc_of_gzipped_records(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in crafted_warc()))
    assert detect_format(path) == "warc"
    good, bad = read_records(path, PRETRAIN, max_bad_ratio=1.0)
    assert [r.line for r in good] == [3, 7, 8, 12, 13] and [m.line for m in bad] == [4, 5, 6, 11]


def test_record_cut_short_is_quarantined(tmp_path):
    records = crafted_warc()[:3]
    path = tmp_path / "cut.warc"
    path.write_bytes(b"".join(records)[: -len(records[-1]) // 2])
    got = rows(path)
    assert len(got) == 1 and isinstance(got[0], Malformed)
    assert got[0].line == 3 and "cut short" in got[0].reason


def test_broken_record_header_ends_the_file_with_one_quarantined_row(tmp_path):
    records = crafted_warc()
    path = tmp_path / "broken.warc"
    path.write_bytes(b"".join(records[:3]) + b"NOT A WARC HEADER\r\n\r\n" + b"".join(records[3:]))
    got = rows(path)
    assert [type(r).__name__ for r in got] == ["Record", "Malformed"]
    assert got[1].line == 4 and got[1].reason.startswith("broken WARC record")


def test_warc_forced_encoding_quarantines_pages_that_do_not_fit(tmp_path):
    path = tmp_path / "forced.warc"
    path.write_bytes(b"".join(crafted_warc()[:3]) + crafted_warc()[6])
    got = rows(path, ReadOptions(task="pretrain", encoding="utf-8"))
    assert [(r.line, type(r).__name__) for r in got] == [(3, "Record"), (4, "Malformed")]
    assert got[1].reason == "undecodable bytes (encoding utf-8)" and got[1].raw == "https://e.example/zh"


# --- the real dolma WARC samples (shared/data/web_warc_dolma/SOURCE.txt) -------------------------------


@pytest.mark.parametrize(("name", "pages"), [("sample-0000.warc.gz", 22), ("sample-0001.warc.gz", 15)])
def test_real_warc_samples(name, pages):
    path = WARC_SAMPLES / name
    assert detect_format(path) == "warc"
    records, bad = read_records(path, PRETRAIN)
    assert (len(records), bad) == (pages, [])
    # wget writes each response after its request, after one warcinfo record
    assert [r.line for r in records] == list(range(3, 3 + 2 * pages, 2))
    texts = [r.data["text"] for r in records]
    assert sum(len(t) >= 300 for t in texts) >= 0.9 * pages
    for text in texts:
        assert "<script" not in text and "<div" not in text and "</" not in text


def test_real_warc_exact_duplicate_pages_give_identical_texts():
    records, _ = read_records(WARC_SAMPLES / "sample-0001.warc.gz", PRETRAIN)
    by_line = {r.line: r.data["text"] for r in records}
    # records 13 and 21 are two fetches of https://allenai.org/ with the same WARC-Payload-Digest
    assert by_line[13] == by_line[21]
    assert "AI2" in by_line[13] or "Allen" in by_line[13]
    assert len(set(by_line.values())) < len(by_line)
