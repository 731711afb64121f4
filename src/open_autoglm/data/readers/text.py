"""Plain text for continued pretraining: one document per non-empty line (blank lines separate nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from open_autoglm.data.encoding import open_text
from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    undecodable,
)


@READERS.register
class TextReader(BaseReader):
    """Plain text has no labels and no prompt/response split, so it feeds pretraining only."""

    name = "text"
    tasks = frozenset({"pretrain"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        lines = open_text(path, options.encoding)
        for line in lines:
            text = line.text.rstrip("\r\n")
            if not text.strip():
                continue
            if line.ok:
                yield Record({"text": text}, str(path), line.number)
            else:
                yield undecodable(str(path), line.number, lines.encoding, text)
