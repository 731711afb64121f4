"""Web archives (`.warc`, `.warc.gz`) for continued pretraining: each HTML response record is one row.

Read with FastWARC (Resiliparse's WARC library) rather than warcio: it ships type stubs, parses several
times faster (C++), undoes chunked, gzip and brotli HTTP encodings itself, and reads the HTTP charset.
Both libraries raise on a corrupt record header, and both end quietly where a file is cut short, so a cut
record is caught by its block digest (or by its missing HTTP headers) and quarantined.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from open_autoglm.data.clean import decode_html, page_main_text
from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    undecodable,
)
from open_autoglm.data.readers.html import NO_MAIN_TEXT

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SNIFF_BYTES = 1024  # the start of a payload looked at when the Content-Type is missing, or for binary data
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@READERS.register
class WarcReader(BaseReader):
    """The main text of each HTML `response` record as `text`; requests, warcinfo, metadata, resource and
    revisit records are not data rows and are skipped.

    For WARC files `line` is the 1-based number of the record in the file (counting every record), so a
    quarantined row points at its record. A response that is not a successful HTML page, cannot be decoded,
    or has no main text becomes a `Malformed` whose `raw` is the page's URL. `options.encoding` overrides
    the pages' own charset labels.
    """

    name = "warc"
    tasks = frozenset({"pretrain"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        source = str(path)
        with open(path, "rb") as f:  # gzip is detected from the content, record by record
            records = iter(ArchiveIterator(f, parse_http=False))
            number = 0
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    return
                except OSError as err:  # a broken record header: nothing after it can be found
                    yield Malformed(source, number + 1, f"broken WARC record ({err}); the rest is unread", "")
                    return
                number += 1
                if record.record_type == WarcRecordType.response:
                    yield _page_row(record, source, number, options.encoding)


def _page_row(record: WarcRecord, source: str, number: int, encoding: str | None) -> Record | Malformed:
    """One response record as a row: its page's main text, or why it has none."""
    url = (record.headers.get("WARC-Target-URI") or "").strip("<>")  # WARC/1.0 writers may bracket it

    def bad(reason: str) -> Malformed:
        return Malformed(source, number, reason, url)

    # Checked before the HTTP parse, which consumes the block the digest covers.
    if record.headers.get("WARC-Block-Digest") and not record.verify_block_digest(consume=False):
        return bad("WARC block digest mismatch (record cut short or corrupted)")
    try:
        record.parse_http(auto_decode="all")
        payload = record.reader.read()
    except (OSError, ValueError) as err:
        return bad(f"broken HTTP response ({err})")
    if record.http_headers is None or record.http_headers.status_code is None:
        return bad("response record without an HTTP status line (record cut short?)")
    status = record.http_headers.status_code
    if not 200 <= status < 300:
        return bad(f"HTTP status {status}, not a page")
    content_type = (record.http_content_type or "").lower()
    if not _is_html(content_type, payload):
        return bad(f"not an HTML page (Content-Type {content_type or 'missing'})")
    if encoding is None:
        page = decode_html(payload, record.http_charset)
    else:
        try:
            page = payload.decode(encoding)
        except UnicodeDecodeError:
            return undecodable(source, number, encoding, url)
    text = page_main_text(page, url or None)
    return Record({"text": text}, source, number) if text else bad(NO_MAIN_TEXT)


def _is_html(content_type: str, payload: bytes) -> bool:
    """An HTML content type, or none with a payload that starts like HTML; binary data never is."""
    start = payload[:SNIFF_BYTES]
    if b"\x00" in start and not start.startswith(_UTF16_BOMS):
        return False
    if content_type:
        return content_type in HTML_TYPES
    head = start.lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
