"""What every data reader yields: good rows in canonical form (`Record`) and bad rows (`Malformed`).

A reader never drops a row silently: each input row comes out as exactly one of the two, so the data report
can account for every row (rows in = kept + removed + quarantined).
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from open_autoglm.registry import Registry

TASKS = frozenset({"classification", "sft", "pretrain"})
MAX_RAW_CHARS = 500


@dataclass(frozen=True)
class ReadOptions:
    """How to read a data file; the task decides which canonical fields each row must have."""

    task: str = "classification"  # classification | sft | pretrain
    text_field: str = "text"  # the input key/column (classification and pretrain)
    label_field: str = "label"  # the label key/column (classification)
    columns: tuple[str, ...] | None = None  # CSV/TSV column names; a first row equal to them is a header
    encoding: str | None = None  # None = detect (utf-8, utf-8-sig, gb18030, latin-1)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; known: {', '.join(sorted(TASKS))}")
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
            if not self.columns or len(set(self.columns)) != len(self.columns):
                raise ValueError(f"columns must be distinct names, got {self.columns!r}")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"unknown encoding {self.encoding!r}") from None


@dataclass(frozen=True)
class Record:
    """One good input row in canonical form (see `canonical.py` for the keys of each task)."""

    data: dict[str, Any]
    source: str  # the file path as given
    line: int  # 1-based line where the row starts


@dataclass(frozen=True)
class Malformed:
    """One bad input row, kept for the quarantine file with where it was and why it was refused."""

    source: str
    line: int
    reason: str
    raw: str  # the offending text, cut to MAX_RAW_CHARS

    def __post_init__(self) -> None:
        if len(self.raw) > MAX_RAW_CHARS:
            object.__setattr__(self, "raw", self.raw[:MAX_RAW_CHARS] + "…")


class DataFormatError(ValueError):
    """The input as a whole cannot be read; the message names the file (and line or key where known)."""


@contextmanager
def file_errors(path: str | Path) -> Iterator[None]:
    """Turn what the OS and gzip raise about the file as a whole into a `DataFormatError` naming it.

    A folder, a file named `.gz` that is not gzip, or a cut-off `.gz` otherwise surface as an IsADirectoryError,
    BadGzipFile or EOFError whose message names no file. A missing file stays a FileNotFoundError.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise DataFormatError(f"{path} is a folder, not a data file") from None
    except gzip.BadGzipFile as err:
        raise DataFormatError(f"{path}: not a valid gzip file ({err})") from None
    except (EOFError, zlib.error) as err:
        raise DataFormatError(f"{path}: the gzip data is cut short or corrupt ({err})") from None
    except OSError as err:
        raise DataFormatError(f"{path}: cannot be read ({err.strerror or err})") from None


class RowError(ValueError):
    """One row cannot become a canonical record; the message is the `Malformed` reason."""


class Row(NamedTuple):
    """A parsed row whose fields are not yet checked against the task."""

    line: int
    fields: dict[str, Any]
    raw: str


def undecodable(source: str, line: int, encoding: str, raw: str) -> Malformed:
    return Malformed(source, line, f"undecodable bytes (encoding {encoding})", raw)


def to_records(
    rows: Iterable[Row | Malformed], source: str, convert: Callable[[dict[str, Any]], dict[str, Any]]
) -> Iterator[Record | Malformed]:
    """Turn parsed rows into records with `convert`; a row it refuses becomes a `Malformed`."""
    for row in rows:
        if isinstance(row, Malformed):
            yield row
            continue
        try:
            yield Record(convert(row.fields), source, row.line)
        except RowError as err:
            yield Malformed(source, row.line, str(err), row.raw)


class BaseReader(ABC):
    """A data format. Subclasses set `name` (and `tasks` when they cannot feed every task) and register with
    `@READERS.register` above the class; a plugin's reader joins through the `open_autoglm.readers` entry points."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[str]] = TASKS

    def read(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        """Every row of the file, in order, as a `Record` or a `Malformed`; streams the file."""
        if options.task not in self.tasks:
            raise DataFormatError(
                f"{path}: a {self.name} file cannot feed task {options.task!r} "
                f"(it holds data for: {', '.join(sorted(self.tasks))})"
            )
        return self.iter_rows(Path(path), options)

    @abstractmethod
    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        """The rows of `read`, once the task has been checked."""


READERS: Registry[type[BaseReader]] = Registry("data reader", entry_point_group="open_autoglm.readers")
