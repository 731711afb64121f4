"""Which reader fits a file: by extension, then by content (tabs, the keys of the first JSON object)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from open_autoglm.data.encoding import open_text
from open_autoglm.data.readers.base import READERS, DataFormatError, Row, file_errors
from open_autoglm.data.readers.json_objects import iter_json_rows

BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".warc": "warc",
}
JSON_EXTENSIONS = {".json", ".jsonl"}
SNIFF_ROWS = 20  # lines (or JSON rows) looked at when the extension does not decide


def detect_format(path: str | Path) -> str:
    """The name of the reader for `path` (one of READERS.names()); `.gz` files are judged by the inner name."""
    path = Path(path)
    inner = Path(path.stem) if path.suffix == ".gz" else path
    suffix = inner.suffix.lower()
    if suffix in BY_EXTENSION:
        return BY_EXTENSION[suffix]
    with file_errors(path):
        lines = [line.text for line in islice(open_text(path), SNIFF_ROWS) if line.text.strip()]
        if not lines:
            raise DataFormatError(f"{path}: the file is empty")
        if suffix in JSON_EXTENSIONS or lines[0].lstrip()[:1] in ("{", "["):
            return _json_flavour(path)
    if all("\t" in line for line in lines):
        return "tsv"
    raise DataFormatError(
        f"{path}: cannot tell the data format from its name or content; "
        f"set data.format (or fmt=), one of: {', '.join(READERS.names())}"
    )


def _json_flavour(path: Path) -> str:
    """alpaca for instruction/output keys, sharegpt for conversations/messages, else generic jsonl."""
    for row in islice(iter_json_rows(path), SNIFF_ROWS):
        if isinstance(row, Row):
            keys = row.fields.keys()
            if {"instruction", "output"} <= keys:
                return "alpaca"
            return "sharegpt" if keys & {"conversations", "messages"} else "jsonl"
    raise DataFormatError(f"{path}: no JSON object in the first {SNIFF_ROWS} rows")
