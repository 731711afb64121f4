"""Which CSV/TSV column is which: given names, a header row, or a guess for a headerless two-column file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from open_autoglm.data.readers.base import DataFormatError, ReadOptions

MAX_LABEL_CHARS = 32  # a label is a short token ("1", "spam", "NUM:dist"), a text usually is not
TOKEN_SHARE = 0.9  # share of a column's values that must look like labels


@dataclass(frozen=True)
class Layout:
    """The column names of a delimited file, and the options to map them (text/label fields may be renamed)."""

    names: tuple[str, ...]
    options: ReadOptions
    header_line: int | None = None  # the line of the header row, which is not data
    note: str = ""  # what was inferred, for the log

    def rejoin(self, fields: list[str], delimiter: str) -> list[str]:
        """Two columns from a row with more fields: the text column keeps the extra delimiters."""
        if self.names[0] == self.options.text_field:
            return [delimiter.join(fields[:-1]), fields[-1]]
        return [fields[0], delimiter.join(fields[1:])]


def choose_layout(source: str, sample: list[tuple[int, list[str], str]], options: ReadOptions) -> Layout:
    """The layout from the first rows of the file: `options.columns`, else a header, else a guess."""
    if not sample:
        return Layout(options.columns or (options.text_field, options.label_field), options)
    line, first, _ = sample[0]
    first = [name.strip() for name in first]
    if options.columns:
        return Layout(options.columns, options, line if tuple(first) == options.columns else None)
    wanted = _task_fields(options)
    if any(name in first for name in wanted):
        return _from_header(source, line, tuple(first), wanted, options)
    return _guess(source, [fields for _, fields, _ in sample], options)


def _task_fields(options: ReadOptions) -> tuple[str, ...]:
    if options.task == "classification":
        return (options.text_field, options.label_field)
    return (options.text_field,) if options.task == "pretrain" else ("prompt", "response")


def _from_header(
    source: str, line: int, names: tuple[str, ...], wanted: tuple[str, ...], options: ReadOptions
) -> Layout:
    if len(set(names)) != len(names):
        raise DataFormatError(f"{source}:{line}: duplicate column names in the header {list(names)}")
    missing = [name for name in wanted if name not in names]
    if not missing:
        return Layout(names, options, line)
    if options.task == "classification" and len(names) == 2:
        # "label,review": the one column that is not the label must be the text (and vice versa).
        other = next(name for name in names if name not in wanted)
        if missing[0] == options.text_field:
            options, role = replace(options, text_field=other), "text"
        else:
            options, role = replace(options, label_field=other), "label"
        return Layout(
            names, options, line, f"no column {missing[0]!r}: reading column {other!r} as the {role}"
        )
    raise DataFormatError(
        f"{source}:{line}: the header has no column {missing[0]!r} (columns: {', '.join(names)}); "
        "set text_field/label_field to the right names"
    )


def _guess(source: str, rows: list[list[str]], options: ReadOptions) -> Layout:
    width = Counter(len(fields) for fields in rows).most_common(1)[0][0]
    if width == 1 and options.task == "pretrain":
        return Layout((options.text_field,), options)
    if width == 2 and options.task != "sft":
        label = _label_column([fields for fields in rows if len(fields) == 2])
        if label is not None:
            names = (options.label_field, options.text_field)
            names = names if label == 0 else names[::-1]
            return Layout(names, options, note=f"no header: guessed columns {names}")
    raise DataFormatError(
        f"{source}: no header row naming {' / '.join(map(repr, _task_fields(options)))} and {width} columns "
        "whose roles cannot be guessed; pass columns=(...) to name them"
    )


def _label_column(rows: list[list[str]]) -> int | None:
    """The column that looks like labels (short tokens, few distinct values), or None when unclear."""
    candidates, distinct = [], []
    for i in (0, 1):
        values = [fields[i].strip() for fields in rows]
        tokens = sum(1 for v in values if v and len(v) <= MAX_LABEL_CHARS and not any(c.isspace() for c in v))
        distinct.append(len(set(values)))
        if tokens >= TOKEN_SHARE * len(values) and distinct[i] <= max(2, len(values) // 2):
            candidates.append(i)
    if len(candidates) == 2 and distinct[0] != distinct[1]:
        return 0 if distinct[0] < distinct[1] else 1
    return candidates[0] if len(candidates) == 1 else None
