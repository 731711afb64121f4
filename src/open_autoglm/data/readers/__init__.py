"""Data readers, one module per format; importing this package registers the built-ins.

`iter_records` / `read_records` read any supported file into canonical records (see `canonical.py`);
`detect_format` says which reader a file needs. Third-party readers join through the
`open_autoglm.readers` entry-point group.
"""

from open_autoglm.data.readers import (  # noqa: F401  (registration)
    alpaca,
    delimited,
    html,
    jsonl,
    sharegpt,
    text,
    warc,
)
from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
)
from open_autoglm.data.readers.detect import detect_format
from open_autoglm.data.readers.loading import iter_records, read_records

__all__ = [
    "READERS",
    "BaseReader",
    "DataFormatError",
    "Malformed",
    "ReadOptions",
    "Record",
    "detect_format",
    "iter_records",
    "read_records",
]
