"""Turn the configured data files into train/validation/test rows, written to the run folder.

Split by ratio (stratified for classification, seeded) unless validation/test files are given. Malformed rows
go to quarantine.jsonl with file, line and reason; nothing is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from open_autoglm.config import Config
from open_autoglm.data.readers import Malformed, ReadOptions, read_records

SPLITS = ("train", "validation", "test")


@dataclass
class LoadedData:
    splits: dict[str, list[dict]]  # split -> canonical rows
    rows_in: int = 0
    quarantined: list[Malformed] = field(default_factory=list)
    truncated_by_max_rows: int = 0


def load_splits(config: Config, out_dir: Path | None = None) -> LoadedData:
    """Read, split and (when `out_dir` is given) write `train.jsonl`, `validation.jsonl`, `test.jsonl`."""
    data = config.data
    if data.train is None:
        raise ValueError(
            "data.train: no training file given (set data.train in the config or --set data.train=PATH)"
        )
    options = ReadOptions(
        task=config.task,
        text_field=data.text_field,
        label_field=data.label_field,
        columns=tuple(data.columns) if data.columns else None,
    )
    fmt = data.format
    loaded = LoadedData(splits={})
    given: dict[str, list[dict]] = {}
    for split in SPLITS:
        path = getattr(data, split)
        if path is None:
            continue
        records, bad = read_records(Path(path), options, fmt=fmt, max_bad_ratio=data.max_bad_ratio)
        loaded.rows_in += len(records) + len(bad)
        loaded.quarantined += bad
        given[split] = [r.data for r in records]

    train = given["train"]
    if data.max_rows is not None and len(train) > data.max_rows:
        loaded.truncated_by_max_rows = len(train) - data.max_rows
        train = _sample(train, data.max_rows, config.task == "classification", config.train.seed)
    ratios = {s: getattr(data, f"{'val' if s == 'validation' else s}_ratio") for s in ("validation", "test")}
    to_split = {s: r for s, r in ratios.items() if s not in given and r > 0}
    held_out = _split_off(train, to_split, config.task == "classification", config.train.seed)
    loaded.splits = {
        "train": held_out.pop("train"),
        **{s: given[s] for s in ("validation", "test") if s in given},
    }
    loaded.splits.update(held_out)
    if "validation" not in loaded.splits:
        raise ValueError("no validation rows: give data.validation or set data.val_ratio above 0")
    if out_dir is not None:
        write_splits(loaded, out_dir)
    return loaded


def _sample(rows: list[dict], n: int, stratify: bool, seed: int) -> list[dict]:
    """A seeded sample of n rows (stratified for classification): files are often sorted by label."""
    from sklearn.model_selection import train_test_split

    labels = [str(r["label"]) for r in rows] if stratify else None
    try:
        sample, _ = train_test_split(rows, train_size=n, random_state=seed, stratify=labels)
    except ValueError:  # a class too small to stratify
        sample, _ = train_test_split(rows, train_size=n, random_state=seed)
    return list(sample)


def _split_off(
    rows: list[dict], ratios: dict[str, float], stratify: bool, seed: int
) -> dict[str, list[dict]]:
    from sklearn.model_selection import train_test_split

    result: dict[str, list[dict]] = {}
    remaining = rows
    total = len(rows)
    for split, ratio in ratios.items():
        n = max(1, round(total * ratio))
        labels = [str(r["label"]) for r in remaining] if stratify else None
        if labels is not None and min(labels.count(v) for v in set(labels)) < 2:
            labels = None  # a class with one row cannot be stratified
        try:
            remaining, result[split] = train_test_split(
                remaining, test_size=n, random_state=seed, stratify=labels
            )
        except ValueError:  # too few rows per class for a stratified split of this size
            remaining, result[split] = train_test_split(remaining, test_size=n, random_state=seed)
    result["train"] = list(remaining)
    if not result["train"]:
        raise ValueError(f"only {total} training rows: nothing left after holding out validation/test rows")
    return result


def write_splits(loaded: LoadedData, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in loaded.splits.items():
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(out_dir / "quarantine.jsonl", "w", encoding="utf-8") as handle:
        for bad in loaded.quarantined:
            row = {"file": bad.source, "line": bad.line, "reason": bad.reason, "raw": bad.raw}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_written_splits(out_dir: Path) -> LoadedData:
    """The splits `write_splits` left in a run folder (search workers read them instead of splitting again)."""
    splits = {}
    for split in SPLITS:
        path = out_dir / f"{split}.jsonl"
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                splits[split] = [json.loads(line) for line in handle if line.strip()]
    return LoadedData(splits=splits, rows_in=sum(len(rows) for rows in splits.values()))
