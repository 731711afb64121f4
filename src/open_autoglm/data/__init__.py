"""The data pipeline: read (readers/), then clean, filter, deduplicate and split, accounting for every row."""

from open_autoglm.data.encoding import detect_encoding, open_text
from open_autoglm.data.readers import (
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
    detect_format,
    iter_records,
    read_records,
)

__all__ = [
    "DataFormatError",
    "Malformed",
    "ReadOptions",
    "Record",
    "detect_encoding",
    "detect_format",
    "iter_records",
    "open_text",
    "read_records",
]
