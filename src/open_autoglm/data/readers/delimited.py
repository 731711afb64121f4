"""CSV and TSV readers: one module because they differ only in delimiter and quoting.

Column names come from `options.columns`, a header row, or a guess (see `columns.py`). TSV is read without
quoting (csv.QUOTE_NONE) since its texts contain quote marks, and a two-column TSV row with extra tabs keeps
them in its text, as splitting on the first tab only would.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import ClassVar, Literal

from open_autoglm.data.encoding import open_text
from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    Row,
    to_records,
    undecodable,
)
from open_autoglm.data.readers.canonical import canonical
from open_autoglm.data.readers.columns import Layout, choose_layout

SAMPLE_ROWS = 200  # rows looked at to find the header and the label column
logger = logging.getLogger(__name__)

Split = tuple[int, list[str], str]  # (line where the row starts, fields, raw text)


class DelimitedReader(BaseReader):
    delimiter: ClassVar[str]
    quoting: ClassVar[Literal[0, 1, 2, 3]]  # a csv.QUOTE_* constant
    joins_extra_fields: ClassVar[bool]  # unquoted format: extra delimiters belong to the text

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        rows = self._split(path, options)
        sample = list(islice(rows, SAMPLE_ROWS))  # buffered, then replayed: memory stays bounded
        layout = choose_layout(str(path), [row for row in sample if not isinstance(row, Malformed)], options)
        if layout.note:
            logger.info("%s: %s", path, layout.note)
        named = self._name(str(path), chain(sample, rows), layout)
        return to_records(named, str(path), lambda fields: canonical(fields, layout.options))

    def _split(self, path: Path, options: ReadOptions) -> Iterator[Split | Malformed]:
        """Each row's fields; a row touching an undecodable line, or that csv refuses, is a `Malformed`."""
        text = open_text(path, options.encoding)
        pending: list[str] = []  # the lines of the row being parsed (several when a quoted field spans lines)
        bad = False

        def feed() -> Iterator[str]:
            nonlocal bad
            for line in text:
                pending.append(line.text)
                bad = bad or not line.ok
                yield line.text

        reader = csv.reader(feed(), delimiter=self.delimiter, quoting=self.quoting)
        while True:
            start = reader.line_num + 1
            error = None
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                error = f"CSV error: {err}"
            raw = "".join(pending).rstrip("\r\n")
            if bad:
                yield undecodable(str(path), start, text.encoding, raw)
            elif error is not None:
                yield Malformed(str(path), start, error, raw)
            elif fields:  # a blank line is not a row
                yield start, fields, raw
            pending.clear()
            bad = False

    def _name(
        self, source: str, rows: Iterator[Split | Malformed], layout: Layout
    ) -> Iterator[Row | Malformed]:
        """Fields by column name; a row with the wrong number of fields is a `Malformed`."""
        width = len(layout.names)
        for row in rows:
            if isinstance(row, Malformed):
                yield row
                continue
            start, fields, raw = row
            if start == layout.header_line:
                continue
            if self.joins_extra_fields and width == 2 and len(fields) > 2:
                fields = layout.rejoin(fields, self.delimiter)
            if len(fields) != width:
                yield Malformed(source, start, f"expected {width} fields, got {len(fields)}", raw)
            else:
                yield Row(start, dict(zip(layout.names, fields, strict=True)), raw)


@READERS.register
class CsvReader(DelimitedReader):
    name = "csv"
    delimiter = ","
    quoting = csv.QUOTE_MINIMAL
    joins_extra_fields = False  # quoting is how CSV keeps commas in a text


@READERS.register
class TsvReader(DelimitedReader):
    name = "tsv"
    delimiter = "\t"
    quoting = csv.QUOTE_NONE
    joins_extra_fields = True
