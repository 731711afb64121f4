"""Terminal tables for the verbs' results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from open_autoglm.cli.common import console
from open_autoglm.run_folder import EVAL, RunSummary


def print_summary(summary: RunSummary) -> None:
    table = Table(title=f"{summary.task} · {summary.method} · {summary.model}")
    table.add_column("metric")
    table.add_column("untuned (validation)", justify="right")
    table.add_column("tuned (validation)", justify="right")
    table.add_column("tuned (test)", justify="right")
    baseline = summary.untuned
    validation = summary.validation
    test = summary.test or {}
    for name in validation:
        table.add_row(name, _fmt(baseline.get(name)), _fmt(validation.get(name)), _fmt(test.get(name)))
    if "majority_accuracy" in baseline:
        table.add_row("majority class accuracy", _fmt(baseline["majority_accuracy"]), "", "")
    console.print(table)
    compute, parameters = summary.compute, summary.parameters or {}
    console.print(
        f"{compute['train_steps']} optimizer steps, {compute['train_seconds']} s training, "
        f"{parameters['trainable']:,} of {parameters['total']:,} parameters trained"
    )


def print_transfer(block: dict[str, Any]) -> None:
    """The three steps of `recipe: transfer` in three lines."""
    perplexity, target = block["domain_perplexity"], block["target"]
    metric = target["metric"]
    console.print(
        f"domain perplexity {perplexity['before']:.2f} → {perplexity['after']:.2f} (continued pretraining)"
    )
    console.print(
        f"target {metric} {target['adapted'][metric]:.4f} adapted, {target['without_adaptation'][metric]:.4f} "
        f"without ({target['gain']:+.4f}); majority class {target['majority_accuracy']:.4f}"
    )
    second = block.get("second_task")
    if second:
        probes = ", ".join(f"{name} {value:.4f}" for name, value in second["accuracy"].items())
        console.print(f"second task, linear probe {second['metric']}: {probes}")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def print_trial(study: Any, number: int) -> None:
    """One line per finished trial, coloured by how it ended."""
    from open_autoglm.search.trial import describe_trial

    trial = study.trials[number]
    colour = {"COMPLETE": "green", "PRUNED": "yellow"}.get(trial.state.name, "red")
    console.print(f"[{colour}]{describe_trial(trial)}[/]", highlight=False)


def print_tune_summary(summary: RunSummary) -> None:
    metric = summary.metric or ""
    table = Table(title=f"tune · {summary.task} · {summary.model} · {metric}")
    table.add_column("")
    table.add_column("configuration")
    table.add_column(f"{metric} (validation)", justify="right")
    table.add_column(f"{metric} (test)", justify="right")
    best, default = summary.best, summary.sections["default"]
    untuned = summary.untuned
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
    trials, compute = summary.trials, summary.compute
    console.print(
        f"{trials['finished']} trials: {trials['complete']} complete, {trials['pruned']} pruned, "
        f"{trials['failed']} failed · {compute['epochs']} epochs of training in {compute['seconds']} s"
    )


def _config_text(overrides: dict[str, Any] | None) -> str:
    from open_autoglm.search.trial import format_value

    return "\n".join(f"{k}={format_value(v)}" for k, v in (overrides or {}).items()) or "as written"


def print_data_report(report: dict[str, Any]) -> None:
    """Where the rows went, and what the kept data looks like."""
    table = Table(title=f"data · {report['task']} · {report['rows_in']:,} rows in")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    total = max(report["rows_in"], 1)

    def row(name: str, count: int) -> None:
        table.add_row(name, f"{count:,}", f"{count / total:.1%}")

    row("[green]kept[/]", report["rows_kept"])
    for reason, count in sorted(report["removed"].items(), key=lambda item: -item[1]):
        row(f"removed: {reason.replace('_', ' ')}", count)
    row("[red]quarantined[/] (malformed)", report["quarantined"])
    console.print(table)
    dup = report["duplicates"]
    lines = [
        "splits: " + ", ".join(f"{split} {n:,}" for split, n in report["splits"].items()),
        f"duplicates: {dup['exact']:,} exact, {dup['near']:,} near, {dup['across_splits']:,} across splits, "
        f"{dup['conflicting_labels']:,} with conflicting labels; rate {dup['rate_before']:.1%} → {dup['rate_after']:.1%}",
        "PII replaced: " + (", ".join(f"{k} {v:,}" for k, v in report["pii"].items()) or "none"),
        "languages: " + ", ".join(f"{k} {v:,}" for k, v in list(report["languages"].items())[:6]),
        "encodings: " + ", ".join(f"{Path(f).name} {e}" for f, e in report["encodings"].items()),
    ]
    for split, counts in report.get("labels", {}).items():
        lines.append(f"labels ({split}): " + ", ".join(f"{k} {v:,}" for k, v in list(counts.items())[:10]))
    if report.get("rows_per_second"):
        lines.append(f"{report['seconds']} s, {report['rows_per_second']:,.0f} rows/s")
    for line in lines:
        console.print(line, highlight=False)


def print_eval(result: dict[str, Any]) -> None:
    """Metrics with their 95% interval, each baseline's value and the difference (marked when beyond noise)."""
    table = Table(title=f"eval · {result['task']} · {result['rows']:,} rows · {result['data']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for baseline in result["baselines"]:
        table.add_column(baseline["name"], justify="right")
        table.add_column("Δ", justify="right")
    for name, value in result["metrics"].items():
        low_high = result["confidence"].get(name)
        cells = [name, _fmt(value), f"{low_high[0]:.4f} – {low_high[1]:.4f}" if low_high else ""]
        for baseline in result["baselines"]:
            compared = baseline["comparison"].get(name)
            cells.append(_fmt(baseline["metrics"].get(name)))
            if compared is None:
                cells.append("")
            else:
                mark = " *" if compared.get("significant") else ""
                cells.append(f"{compared['delta']:+.4f}{mark}")
        table.add_row(*cells)
    console.print(table)
    if result["baselines"]:
        console.print("* the difference is larger than the noise (95% bootstrap interval excludes it)")
    speed = result["speed"]
    console.print(
        f"latency {speed['latency_ms_p50']:.1f} ms p50 / {speed['latency_ms_p95']:.1f} ms p95 per example; "
        f"{speed['batch_latency_ms_p50']:.1f} / {speed['batch_latency_ms_p95']:.1f} ms per batch of "
        f"{speed['batch_size']}; {speed['throughput_per_s']:,.1f} examples/s; peak memory "
        f"{speed['peak_memory_mb']:,.0f} MB",
        highlight=False,
    )
    if result["quarantined"]:
        console.print(
            f"[yellow]{len(result['quarantined'])} malformed rows quarantined (listed in {EVAL})[/]"
        )
    for regression in result["regressions"]:
        console.print(f"[bold red]regression:[/] {regression['message']}", highlight=False)
    if result["passed"]:
        console.print(
            "[green]no regression[/] against "
            + (", ".join(b["name"] for b in result["baselines"]) or "no baseline")
        )
