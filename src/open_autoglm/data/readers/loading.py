"""The entry points: read any supported file into canonical records, by format name or auto-detected."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from open_autoglm.data.encoding import SAMPLE_BYTES, open_binary
from open_autoglm.data.readers.base import (
    READERS,
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
    file_errors,
)
from open_autoglm.data.readers.detect import detect_format

SHOWN_ERRORS = 5  # malformed rows quoted in a DataFormatError
logger = logging.getLogger(__name__)


def iter_records(
    path: str | Path, options: ReadOptions | None = None, fmt: str = "auto"
) -> Iterator[Record | Malformed]:
    """Stream the rows of a file as `Record`s and `Malformed`s; format and task are checked before the first row.

    A file that cannot be read at all (a folder, broken gzip) is a `DataFormatError` naming it, raised before the
    first row when its start shows it, else where the reading finds it.
    """
    path, options = Path(path), options or ReadOptions()
    name = detect_format(path) if fmt == "auto" else fmt
    if name not in READERS:
        raise DataFormatError(f"{path}: unknown data format {name!r}; known: {', '.join(READERS.names())}")
    logger.debug("%s: reading as %s", path, name)
    with file_errors(path):
        _read_start(path)
        rows = READERS.get(name)().read(path, options)
    return _with_file_errors(path, rows)


def _read_start(path: Path) -> None:
    """Read as much as encoding detection will, so that a folder or a file that is not gzip fails here."""
    with open_binary(path) as f:
        f.read(SAMPLE_BYTES + 1)


def _with_file_errors(path: Path, rows: Iterator[Record | Malformed]) -> Iterator[Record | Malformed]:
    """`rows`, with a gzip stream found cut short or corrupt midway reported as a `DataFormatError`."""
    with file_errors(path):
        yield from rows


def read_records(
    path: str | Path, options: ReadOptions | None = None, fmt: str = "auto", max_bad_ratio: float = 0.01
) -> tuple[list[Record], list[Malformed]]:
    """All good and bad rows of a file; a file with no good row, or too many bad ones, is refused."""
    if not 0.0 <= max_bad_ratio <= 1.0:
        raise ValueError(f"max_bad_ratio must be within [0, 1], got {max_bad_ratio}")
    good: list[Record] = []
    bad: list[Malformed] = []
    for row in iter_records(path, options, fmt):
        (bad if isinstance(row, Malformed) else good).append(row)  # type: ignore[arg-type]
    total = len(good) + len(bad)
    if not total:
        raise DataFormatError(f"{path}: no rows")
    if good and len(bad) <= max_bad_ratio * total:
        return good, bad
    problem = (
        "no good row" if not good else f"{len(bad) / total:.1%} malformed, more than {max_bad_ratio:.1%}"
    )
    shown = "\n".join(f"  {row.source}:{row.line}: {row.reason}" for row in bad[:SHOWN_ERRORS])
    more = f"\n  ... and {len(bad) - SHOWN_ERRORS} more" if len(bad) > SHOWN_ERRORS else ""
    raise DataFormatError(f"{path}: {len(bad)} of {total} rows are malformed ({problem}):\n{shown}{more}")
