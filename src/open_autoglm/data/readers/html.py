"""Saved web pages (`.html`, `.htm`, optionally gzipped) for continued pretraining: one page is one row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from open_autoglm.data.clean import decode_html, page_main_text
from open_autoglm.data.encoding import open_binary
from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    undecodable,
)

NO_MAIN_TEXT = "no main text in HTML page"


@READERS.register
class HtmlReader(BaseReader):
    """The main text of the page (navigation, menus, footers and comments dropped) as `text`; a page with
    none is quarantined. `line` is always 1. `options.encoding` overrides the page's own charset labels."""

    name = "html"
    tasks = frozenset({"pretrain"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        with open_binary(path) as f:
            payload = f.read()  # one page: parsing needs all of it
        if options.encoding is None:
            page = decode_html(payload)
        else:
            try:
                page = payload.decode(options.encoding)
            except UnicodeDecodeError:
                raw = payload.decode(options.encoding, errors="replace")
                yield undecodable(str(path), 1, options.encoding, raw)
                return
        text = page_main_text(page)
        if text:
            yield Record({"text": text}, str(path), 1)
        else:
            yield Malformed(str(path), 1, NO_MAIN_TEXT, page)
