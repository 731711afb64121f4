"""The rows an evaluation scores: the run's test split, or any data file read and cleaned as training data is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from open_autoglm.data.pipeline import read_options
from open_autoglm.data.prepared import load_data
from open_autoglm.data.process import RowProcessor
from open_autoglm.data.readers import read_records
from open_autoglm.data.request import DataRequest


@dataclass
class EvaluationRows:
    rows: list[dict[str, Any]]
    source: str  # what they are, in words: "test split of runs/x/data" or the file
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # {source, line, reason} of refused rows


def evaluation_rows(request: DataRequest, data_dir: Path, data_file: Path | None) -> EvaluationRows:
    """The test split of the run's data (prepared into `data_dir` when needed), or `data_file`'s rows."""
    if data_file is None:
        loaded = load_data(request, data_dir)
        if not loaded.splits.get("test"):
            raise ValueError(
                f"{data_dir} has no test split: set data.test (a file) or data.test_ratio > 0, "
                "or evaluate a file with --data FILE"
            )
        return EvaluationRows(loaded.splits["test"], f"test split of {data_dir}")
    return _file_rows(request, data_file)


def _file_rows(request: DataRequest, path: Path) -> EvaluationRows:
    """Every row is scored or quarantined with its line: cleaning and PII scrubbing match training (the model
    never saw raw phone numbers), but no quality filter drops a test row."""
    data = request.data
    options = read_options(data, request.kind)
    good, bad = read_records(path, options, data.format, max_bad_ratio=data.max_bad_ratio)
    unfiltered = data.model_copy(update={"filter": data.filter.model_copy(update={"enabled": False})})
    processor = RowProcessor(unfiltered, request.kind)
    return EvaluationRows(
        rows=[processor.process(record.data).data for record in good],
        source=str(path),
        quarantined=[{"source": row.source, "line": row.line, "reason": row.reason} for row in bad],
    )
