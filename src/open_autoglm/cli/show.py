"""Terminal tables for the verbs' results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from open_autoglm.cli.common import console


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    table = Table(title=f"{summary['task']} · {summary['method']} · {summary['model']}")
    table.add_column("metric")
    table.add_column("untuned (validation)", justify="right")
    table.add_column("tuned (validation)", justify="right")
    table.add_column("tuned (test)", justify="right")
    baseline = summary["baseline"]["metrics"]
    validation = summary["best"]["validation"]
    test = summary["best"].get("test") or {}
    for name in validation:
        table.add_row(name, _fmt(baseline.get(name)), _fmt(validation.get(name)), _fmt(test.get(name)))
    if "majority_accuracy" in baseline:
        table.add_row("majority class accuracy", _fmt(baseline["majority_accuracy"]), "", "")
    console.print(table)
    compute = summary["compute"]
    console.print(
        f"{compute['train_steps']} optimizer steps, {compute['train_seconds']} s training, "
        f"{summary['parameters']['trainable']:,} of {summary['parameters']['total']:,} parameters trained"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
