"""Where every input row went, and what the kept data looks like: the content of `data_report.json`.

The identity `rows_in == rows_kept + sum(removed) + quarantined` is checked before the report is written, so a
row lost by a bug stops the run instead of disappearing.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from open_autoglm.atomic import write_json

# Character-length histogram edges: powers of two, so short sentences and long documents both get resolution.
LENGTH_EDGES = [0, 1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 2**62]


class AccountingError(RuntimeError):
    """Rows in and rows out disagree: a bug, never a user error."""


@dataclass
class LengthHistogram:
    """Streaming histogram of text lengths in characters (fixed edges, so it never holds the lengths)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_EDGES) - 1, dtype=np.int64))
    total: int = 0
    longest: int = 0

    def add(self, length: int) -> None:
        self.counts[bisect.bisect_right(LENGTH_EDGES, length) - 1] += 1  # per row: bisect beats numpy here
        self.total += length
        self.longest = max(self.longest, length)

    def to_json(self) -> dict[str, Any]:
        n = int(self.counts.sum())
        bins = [
            {
                "from": LENGTH_EDGES[i],
                "to": LENGTH_EDGES[i + 1] if i + 2 < len(LENGTH_EDGES) else None,
                "rows": int(c),
            }
            for i, c in enumerate(self.counts)
            if c
        ]
        return {"rows": n, "mean": round(self.total / n, 1) if n else 0.0, "max": self.longest, "bins": bins}


@dataclass
class DataReport:
    """Counts gathered while the pipeline streams; `to_json` is the `data_report.json` contract."""

    task: str
    rows_in: int = 0
    quarantined: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    pii: Counter[str] = field(default_factory=Counter)
    encodings: dict[str, str] = field(default_factory=dict)  # file -> encoding
    rows_per_file: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    exact_duplicates: int = 0
    near_duplicates: int = 0
    conflicting_labels: int = 0
    cross_split_duplicates: int = 0
    rows_checked_for_duplicates: int = 0
    lengths_in: LengthHistogram = field(default_factory=LengthHistogram)
    lengths_kept: LengthHistogram = field(default_factory=LengthHistogram)
    changed_by_cleaning: int = 0
    splits: dict[str, int] = field(
        default_factory=dict
    )  # split -> rows written (repeats and augments included)
    labels: dict[str, Counter[str]] = field(default_factory=dict)  # split -> label -> rows
    repeated_by_weight: int = 0
    augmented: int = 0
    seconds: float = 0.0
    fingerprint: str = ""  # of the inputs and settings (prepared.py)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> bytes, sha256 as written

    def remove(self, reason: str, n: int = 1) -> None:
        self.removed[reason] += n

    @property
    def rows_kept(self) -> int:
        """Input rows that reached a split (each counted once, whatever weights and augmentation added)."""
        return sum(self.splits.values()) - self.repeated_by_weight - self.augmented

    def check_identity(self) -> None:
        accounted = self.rows_kept + sum(self.removed.values()) + self.quarantined
        if accounted != self.rows_in:
            raise AccountingError(
                f"rows in ({self.rows_in}) != kept ({self.rows_kept}) + removed ({sum(self.removed.values())})"
                f" + quarantined ({self.quarantined})"
            )

    def duplicate_rates(self) -> tuple[float, float]:
        """Share of rows that were duplicates, before and after deduplication."""
        n = self.rows_checked_for_duplicates
        if not n:
            return 0.0, 0.0
        found = self.exact_duplicates + self.near_duplicates
        left = found - self.removed["exact_duplicate"] - self.removed["near_duplicate"]
        return found / n, max(left, 0) / max(n - (found - left), 1)

    def to_json(self) -> dict[str, Any]:
        before, after = self.duplicate_rates()
        return {
            "task": self.task,
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "removed": dict(sorted(self.removed.items())),
            "quarantined": self.quarantined,
            "pii": dict(sorted(self.pii.items())),
            "duplicates": {
                "exact": self.exact_duplicates,
                "near": self.near_duplicates,
                "conflicting_labels": self.conflicting_labels,
                "across_splits": self.cross_split_duplicates,
                "rate_before": round(before, 4),
                "rate_after": round(after, 4),
            },
            "changed_by_cleaning": self.changed_by_cleaning,
            "lengths": {"input": self.lengths_in.to_json(), "kept": self.lengths_kept.to_json()},
            "languages": dict(self.languages.most_common()),
            "labels": {split: dict(sorted(c.items())) for split, c in self.labels.items()},
            "splits": self.splits,
            "repeated_by_weight": self.repeated_by_weight,
            "augmented": self.augmented,
            "encodings": self.encodings,
            "rows_per_file": dict(self.rows_per_file),
            "seconds": round(self.seconds, 2),
            "rows_per_second": round(self.rows_in / self.seconds, 1) if self.seconds else None,
            "fingerprint": self.fingerprint,
            "outputs": self.outputs,
        }

    def write(self, path: Path) -> None:
        self.check_identity()
        write_json(path, self.to_json())
