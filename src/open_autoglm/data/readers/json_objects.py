"""JSON input as a stream of objects: JSON Lines, or one JSON array parsed a chunk at a time.

The array is never loaded whole, so memory stays flat (it is bounded by the longest line: a minified array on
one line is read in one piece). A bad line of JSON Lines is one `Malformed`; a broken array cannot be
resynchronised, so it is a `DataFormatError` naming the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from open_autoglm.data.encoding import Line, open_text
from open_autoglm.data.readers.base import DataFormatError, Malformed, Row, undecodable

CHUNK_CHARS = 64 * 1024  # how much more text the array parser reads when a value is cut off
_SPACE = re.compile(r"\s*")
_DECODER = json.JSONDecoder()


def iter_json_rows(path: Path, encoding: str | None = None) -> Iterator[Row | Malformed]:
    """Each JSON object of a JSON Lines file or a JSON array file, with the line where it starts."""
    text = open_text(path, encoding)
    lines = iter(text)
    for first in lines:
        if first.text.strip():
            rest = chain([first], lines)
            if first.text.lstrip().startswith("["):
                yield from _array_rows(str(path), rest, text.encoding)
            else:
                yield from _jsonl_rows(str(path), rest, text.encoding)
            return


def _jsonl_rows(source: str, lines: Iterator[Line], encoding: str) -> Iterator[Row | Malformed]:
    for line in lines:
        raw = line.text.strip()
        if not raw:
            continue
        if not line.ok:
            yield undecodable(source, line.number, encoding, raw)
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            yield Malformed(source, line.number, f"invalid JSON: {err.msg} (column {err.colno})", raw)
            continue
        yield _object_row(source, line.number, value, raw)


def _object_row(source: str, line: int, value: Any, raw: str) -> Row | Malformed:
    if not isinstance(value, dict):
        return Malformed(source, line, f"expected a JSON object, got {type(value).__name__}", raw)
    return Row(line, value, raw)


def _array_rows(source: str, lines: Iterator[Line], encoding: str) -> Iterator[Row | Malformed]:
    stream = _ArrayStream(source, lines)
    stream.expect("[")
    if stream.peek() == "]":
        stream.expect("]")
    else:
        while True:
            value, raw, start = stream.decode_value()
            if any(n in stream.bad_lines for n in range(start, stream.line + 1)):
                yield undecodable(source, start, encoding, raw)
            else:
                yield _object_row(source, start, value, raw)
            if stream.peek() != ",":
                stream.expect("]")
                break
            stream.expect(",")
    if stream.peek():
        raise DataFormatError(f"{source}:{stream.line}: extra data after the JSON array")


class _ArrayStream:
    """A read position in JSON text that is read on demand; `line` is the line number at `pos`."""

    def __init__(self, source: str, lines: Iterator[Line]) -> None:
        self.source, self.lines = source, lines
        self.buf, self.pos, self.line = "", 0, 1
        self.bad_lines: set[int] = set()

    def peek(self) -> str:
        """Skip white space; the next character, or "" at the end of the input."""
        while True:
            self._advance(_SPACE.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            found_text = repr(found) if found else "the end of the file"
            raise DataFormatError(
                f"{self.source}:{self.line}: invalid JSON array: expected {char!r}, found {found_text}"
            )
        self._advance(self.pos + 1)

    def decode_value(self) -> tuple[Any, str, int]:
        """The next JSON value, its text, and the line where it starts."""
        self.peek()
        start = self.line
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                break
            except json.JSONDecodeError as err:
                # Read on only when the value may just be cut off, and at least as much again as is held, so a
                # long value is re-parsed a logarithmic number of times. An error before the buffer's last line
                # is real: reading the rest of the file to report it made an early error cost quadratic time.
                if not self._cut_off_at(err.pos) or not self._fill(len(self.buf) - self.pos):
                    line = self.line + self.buf.count("\n", self.pos, err.pos)
                    raise DataFormatError(f"{self.source}:{line}: invalid JSON array: {err.msg}") from None
        raw = self.buf[self.pos : end]
        self._advance(end)
        return value, raw, start

    def _advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def _cut_off_at(self, pos: int) -> bool:
        """Whether a decode error at `pos` may come from the end of the text read so far.

        The buffer holds whole lines and no valid JSON token spans a line break, so a value that is only cut
        off fails on the buffer's last line (an unterminated string is reported where it starts, on that line).
        """
        return self.buf.find("\n", pos, len(self.buf) - 1) == -1

    def _fill(self, at_least: int = 0) -> bool:
        """Append whole lines, max(CHUNK_CHARS, at_least) characters or more; False when the input is exhausted."""
        parts: list[str] = []
        size = 0
        for line in self.lines:
            parts.append(line.text)
            size += len(line.text)
            if not line.ok:
                self.bad_lines.add(line.number)
            if size >= max(CHUNK_CHARS, at_least):
                break
        self.buf, self.pos = self.buf[self.pos :] + "".join(parts), 0
        return size > 0
