"""The canonical JSON Lines reader: generic objects whose keys are mapped by task (a JSON array works too)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    to_records,
)
from open_autoglm.data.readers.canonical import canonical
from open_autoglm.data.readers.json_objects import iter_json_rows


@READERS.register
class JsonlReader(BaseReader):
    """classification: `text_field`/`label_field`; sft: prompt/response or messages; pretrain: `text_field`."""

    name = "jsonl"

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        rows = iter_json_rows(path, options.encoding)
        return to_records(rows, str(path), partial(canonical, options=options))
