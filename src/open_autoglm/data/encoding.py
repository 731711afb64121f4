"""Input encodings: detect UTF-8, UTF-8 with BOM, GB18030 (GBK) or Latin-1, then decode line by line.

Detection looks at the first 64 KiB only, so huge files stream. Decoding each line on its own means a line
that does not fit the detected encoding becomes one quarantined row instead of ending the whole read.
"""

from __future__ import annotations

import codecs
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

SAMPLE_BYTES = 64 * 1024
# GBK decodes many Latin-1 byte pairs too ("sister\xf0city" is valid GBK); real Chinese text is mostly made
# of the common GB2312 characters, so GB18030 wins only when at least this share of its characters are.
GB2312_MIN_SHARE = 0.5
MIN_VALID_PER_BROKEN = 2  # a UTF-8 file with damage: valid non-ASCII lines per broken line, at least
BROKEN_LINE_SHARE = 0.01


class Line(NamedTuple):
    number: int  # 1-based
    text: str  # with its line ending; when `ok` is False, undecodable bytes are replaced by U+FFFD
    ok: bool


def open_binary(path: str | Path) -> BinaryIO:
    """Open a file for reading bytes, gunzipping `.gz` files transparently."""
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def detect_encoding(path: str | Path) -> str:
    """The encoding of a file, from its first 64 KiB: utf-8, utf-8-sig, gb18030 or latin-1."""
    with open_binary(path) as f:
        sample = f.read(SAMPLE_BYTES)
        complete = not f.read(1)
    return guess_encoding(sample, complete)


def guess_encoding(sample: bytes, complete: bool = True) -> str:
    """Try strict decodes from the most to the least specific; `complete` is False when `sample` is a prefix."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if _decode(sample, "utf-8", complete) is not None or _mostly_utf8(sample, complete):
        return "utf-8"
    text = _decode(sample, "gb18030", complete)
    if text is not None and _mostly_gb2312(text):
        return "gb18030"
    return "latin-1"  # decodes any byte sequence: the last resort


def open_text(path: str | Path, encoding: str | None = None) -> TextLines:
    """The decoded lines of a file (`.gz` included); `encoding=None` detects it."""
    return TextLines(path, encoding)


class TextLines:
    """The lines of a text file, each decoded on its own; `encoding` says which encoding is used."""

    def __init__(self, path: str | Path, encoding: str | None = None) -> None:
        self.path = Path(path)
        self.encoding = encoding or detect_encoding(self.path)

    def __iter__(self) -> Iterator[Line]:
        with open_binary(self.path) as f:
            # Splitting bytes on b"\n" is safe for every supported encoding: none uses 0x0A inside a character.
            for number, raw in enumerate(f, 1):
                try:
                    yield Line(number, raw.decode(self.encoding), True)
                except UnicodeDecodeError:
                    yield Line(number, raw.decode(self.encoding, errors="replace"), False)


def _decode(sample: bytes, encoding: str, complete: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return decoder.decode(sample, final=complete)  # not final: a character cut at the end is not an error
    except UnicodeDecodeError:
        return None


def _mostly_utf8(sample: bytes, complete: bool) -> bool:
    """UTF-8 with a few broken lines: those lines are quarantined, the rest must not be read as Latin-1 mojibake.

    Latin-1 and GBK text almost never forms valid multi-byte UTF-8, so valid non-ASCII lines outnumbering the
    broken ones (and the broken ones being rare) is a UTF-8 file with damage, not another encoding.
    """
    lines = sample.split(b"\n")
    if not complete:
        lines = lines[:-1]  # the last line may be cut mid-character
    valid = broken = 0
    for line in lines:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            valid += 1
        except UnicodeDecodeError:
            broken += 1
    return valid >= MIN_VALID_PER_BROKEN * broken and broken <= max(1, BROKEN_LINE_SHARE * len(lines))


def _mostly_gb2312(text: str) -> bool:
    wide = [ch for ch in text if ord(ch) > 0x7F]
    common = sum(1 for ch in wide if _in_gb2312(ch))
    return bool(wide) and common >= GB2312_MIN_SHARE * len(wide)


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True
