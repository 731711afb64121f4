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


def print_trial(study: Any, number: int) -> None:
    """One line per finished trial, coloured by how it ended."""
    from open_autoglm.search.trial import describe_trial

    trial = study.trials[number]
    colour = {"COMPLETE": "green", "PRUNED": "yellow"}.get(trial.state.name, "red")
    console.print(f"[{colour}]{describe_trial(trial)}[/]", highlight=False)


def print_tune_summary(summary: dict[str, Any]) -> None:
    metric = summary["metric"]
    table = Table(title=f"tune · {summary['task']} · {summary['model']} · {metric}")
    table.add_column("")
    table.add_column("configuration")
    table.add_column(f"{metric} (validation)", justify="right")
    table.add_column(f"{metric} (test)", justify="right")
    best, default = summary["best"], summary["default"]
    untuned = summary["baseline"]["metrics"]
    table.add_row("untuned", "", _fmt(untuned.get(metric)), "")
    if default["trial"] is not None:
        table.add_row(
            "default config",
            _config_text(default["config"]),
            _fmt((default["validation"] or {}).get(metric)),
            _fmt((default["metrics"] or {}).get(metric)),
        )
    table.add_row(
        f"best (trial {best['trial']})",
        _config_text(best["config"]),
        _fmt((best["validation"] or {}).get(metric)),
        _fmt((best["test"] or {}).get(metric)),
    )
    console.print(table)
    trials, compute = summary["trials"], summary["compute"]
    console.print(
        f"{trials['finished']} trials: {trials['complete']} complete, {trials['pruned']} pruned, "
        f"{trials['failed']} failed · {compute['epochs']} epochs of training in {compute['seconds']} s"
    )


def _config_text(overrides: dict[str, Any] | None) -> str:
    from open_autoglm.search.trial import format_value

    return "\n".join(f"{k}={format_value(v)}" for k, v in (overrides or {}).items()) or "as written"
