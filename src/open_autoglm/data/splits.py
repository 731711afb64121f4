"""Which rows go to train, validation and test: seeded, stratified for classification; and reading them back."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from open_autoglm.run_folder import DATA_REPORT, read_json_object

SPLITS = ("train", "validation", "test")


@dataclass
class LoadedData:
    """The prepared splits, in memory for training, with the data report of how they were made."""

    splits: dict[str, list[dict]]  # split -> canonical rows
    report: dict[str, Any] = field(default_factory=dict)


def assign_splits(
    n: int, ratios: dict[str, float], labels: Sequence[str] | None, seed: int
) -> dict[str, list[int]]:
    """Positions 0..n-1 shared out: `ratios` (split -> share of n) held out in turn, the rest to train.

    Stratified by `labels` when given (falls back to a plain split for classes too small to stratify).
    """
    from sklearn.model_selection import train_test_split

    result: dict[str, list[int]] = {}
    remaining = np.arange(n)
    for split, ratio in ratios.items():
        size = max(1, round(n * ratio))
        if size >= len(remaining):
            raise ValueError(f"only {n} training rows: nothing left after holding out validation/test rows")
        strata = [labels[int(i)] for i in remaining] if labels is not None else None
        if strata is not None and min(Counter(strata).values()) < 2:
            strata = None  # a class with one row cannot be stratified
        try:
            remaining, held = train_test_split(remaining, test_size=size, random_state=seed, stratify=strata)
        except ValueError:  # too few rows per class for a stratified split of this size
            remaining, held = train_test_split(remaining, test_size=size, random_state=seed)
        result[split] = sorted(int(i) for i in held)
    result["train"] = sorted(int(i) for i in remaining)
    return result


def stratified_sample(n: int, size: int, labels: Sequence[str] | None, seed: int) -> list[int]:
    """A seeded sample of `size` positions out of n (stratified when labels are given: files are often sorted)."""
    from sklearn.model_selection import train_test_split

    try:
        sample, _ = train_test_split(np.arange(n), train_size=size, random_state=seed, stratify=labels)
    except ValueError:  # a class too small to stratify
        sample, _ = train_test_split(np.arange(n), train_size=size, random_state=seed)
    return sorted(int(i) for i in sample)


def read_written_splits(out_dir: Path) -> LoadedData:
    """The splits a prepared data folder holds, with its report; a line or file that is not JSON is named."""
    splits = {}
    for split in SPLITS:
        path = out_dir / f"{split}.jsonl"
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                splits[split] = [
                    _json_row(path, number, line) for number, line in enumerate(handle, 1) if line.strip()
                ]
    report_path = out_dir / DATA_REPORT
    fix = "run `autoglm data prepare --force`"
    report = read_json_object(report_path, "a data report", fix) if report_path.exists() else {}
    return LoadedData(splits=splits, report=report)


def _json_row(path: Path, line: int, text: str) -> dict[str, Any]:
    """One JSON object of a prepared split file; an error names the file and the line."""
    where = f"{path}:{line}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{where}: not valid JSON ({err.msg}); the prepared data is damaged: run `autoglm data prepare --force`"
        ) from None
    if not isinstance(row, dict):
        raise ValueError(
            f"{where}: a JSON {type(row).__name__}, not an object; run `autoglm data prepare --force`"
        )
    return row
