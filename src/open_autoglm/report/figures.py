"""The report's plotly figures, each built from the plain data of a RunInfo; render.py places them on the page.

Kept apart from the page so that a figure is data (a go.Figure, its height in its layout) to build and check
without HTML. plotly.js reads trace names, ticks and hover text as HTML, so every string from the run folder is
escaped here (`esc`) before it goes into a figure; the page's tables use the same `esc` and `plain`.
"""

from __future__ import annotations

import html
import itertools
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

from open_autoglm.report.info import ComparisonRow, Importance, ParamInfo, RunInfo, TrialInfo
from open_autoglm.report.labels import Labels

PALETTE = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4f46e5", "#b45309"]
DASH = {"complete": "solid", "pruned": "dash", "fail": "dot", "running": "dashdot", "waiting": "dot"}
MISSING = "—"
# (figure id, title label, unit, sampled keys, GPU key): one figure each in the resources section
RESOURCE_FIGURES = [
    ("fig-memory", "memory_title", "MB", ("rss_mb", "peak_rss_mb"), "memory_used_mb"),
    ("fig-cpu", "cpu_title", "%", ("cpu_percent", "system_memory_percent"), "utilization_percent"),
    ("fig-io", "io_title", "MB", ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"), None),
]
OBJECTIVE_UNITS = {"latency": "ms", "memory": "MB", "size": "MB"}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def plain(value: Any) -> str:
    """A value as text: numbers to four significant digits, None as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if math.isfinite(value) and abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    return str(value)


def row_label(row: ComparisonRow, labels: Labels) -> str:
    """A comparison row's name: its kind, and the trial or source it comes from."""
    detail = f"{labels['trial']} {row.trial}" if row.trial is not None else row.source
    return f"{labels['row_' + row.kind]} ({detail})" if detail else labels["row_" + row.kind]


def target_label(info: RunInfo, labels: Labels) -> str:
    """The name of what TrialInfo.value holds: the metric, or the weighted score."""
    return labels["score"] if info.study is not None and info.study.target == "score" else info.metric


def comparison_figure(rows: list[ComparisonRow], metric: str, labels: Labels) -> go.Figure | None:
    """The primary metric of each model that has it, as bars; None with fewer than two to compare."""
    shown = [r for r in rows if metric in r.metrics]
    if len(shown) < 2:
        return None
    names = [row_label(r, labels) for r in shown]
    values = [r.metrics[metric] for r in shown]
    bar = go.Bar(x=values, y=[esc(n) for n in names], orientation="h", marker_color=PALETTE[0])
    fig = go.Figure(bar)
    fig.update_layout(xaxis_title=metric, yaxis={"autorange": "reversed"}, height=120 + 40 * len(shown))
    return fig


def history_figure(info: RunInfo, labels: Labels) -> go.Figure | None:
    """Each trial's value and the best so far; None without a study or a trial with a value."""
    study = info.study
    scored = [t for t in info.trials if t.value is not None]
    if study is None or not scored:
        return None
    complete = [t for t in scored if t.state == "complete"]
    pruned = [t for t in scored if t.state == "pruned"]
    fig = go.Figure()
    if complete:
        fig.add_trace(_trial_markers(complete, labels["state_complete"], "circle", PALETTE[0], labels))
        values = [float(t.value) for t in complete if t.value is not None]
        best_so_far = list(itertools.accumulate(values, max if study.maximize else min))
        line = {"shape": "hv", "color": PALETTE[1], "width": 2}
        numbers = [t.number for t in complete]
        fig.add_trace(
            go.Scatter(x=numbers, y=best_so_far, mode="lines", name=labels["best_so_far"], line=line)
        )
    if pruned:
        fig.add_trace(_trial_markers(pruned, labels["state_pruned"], "x", "#9ca3af", labels))
    every = max(1, math.ceil(len(info.trials) / 20))  # whole trial numbers on the axis
    fig.update_layout(xaxis_title=labels["trial"], xaxis_dtick=every, yaxis_title=target_label(info, labels))
    return fig


def _trial_markers(trials: list[TrialInfo], name: str, symbol: str, color: str, labels: Labels) -> go.Scatter:
    return go.Scatter(
        x=[t.number for t in trials],
        y=[t.value for t in trials],
        mode="markers",
        name=name,
        marker={"symbol": symbol, "size": 10, "color": color},
        hovertext=[_hover(t, labels) for t in trials],
        hoverinfo="text",
    )


def importance_figure(found: Importance, labels: Labels) -> go.Figure | None:
    """Each parameter's share as bars, the most important on top; None when there are no shares."""
    if not found.values:
        return None
    names = list(reversed(found.values))  # the most important on top
    bar = go.Bar(
        x=[found.values[n] for n in names],
        y=[esc(n) for n in names],
        orientation="h",
        marker_color=PALETTE[2],
    )
    fig = go.Figure(bar)
    fig.update_layout(
        xaxis_title=f"{labels['importance_share']} ({found.evaluator})", height=160 + 40 * len(names)
    )
    return fig


def curve_figure(
    trials: list[TrialInfo],
    which: str,
    y_title: str,
    best: int | None,
    untuned: float | None,
    labels: Labels,
) -> go.Figure:
    """One line per trial of its validation `curve` or training `loss`; the best trial thicker."""
    fig = go.Figure()
    for i, t in enumerate(trials):
        points = t.curve if which == "curve" else t.loss
        if not points:
            continue
        color = PALETTE[i % len(PALETTE)]
        width = 4 if t.number == best else 2
        symbols = ["circle"] * (len(points) - 1) + ["x" if t.state in ("pruned", "fail") else "circle"]
        sizes = [5] * (len(points) - 1) + [12 if t.state in ("pruned", "fail") else 5]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=f"#{t.number} {labels['state_' + t.state]}",
                line={"color": color, "dash": DASH.get(t.state, "solid"), "width": width},
                marker={"symbol": symbols, "size": sizes, "color": color},
                hovertext=_hover(t, labels),
                hoverinfo="text+x+y",
            )
        )
    if untuned is not None:
        fig.add_hline(
            y=untuned, line_dash="dot", line_color="#6b7280", annotation_text=esc(labels["untuned"])
        )
    title = labels["curves_title"] if which == "curve" else labels["loss_title"]
    fig.update_layout(title=title, xaxis_title=labels["epoch"], yaxis_title=y_title)
    return fig


def pareto_figure(info: RunInfo, labels: Labels) -> go.Figure | None:
    """The complete trials' objectives with the front marked; None with one objective or none complete."""
    study = info.study
    if study is None or len(study.directions) < 2:
        return None
    done = [t for t in info.trials if t.state == "complete" and t.values]
    if not done:
        return None
    names = [_objective_label(o, info.metric, labels) for o in study.objectives]
    values = [list(t.values or []) for t in done]
    colors = [PALETTE[3] if t.number in study.pareto else "#9ca3af" for t in done]
    hover = [_hover(t, labels) for t in done]
    if len(names) == 2:
        quality = study.objectives.index("quality")
        other = 1 - quality
        front = sorted(
            (v for t, v in zip(done, values, strict=True) if t.number in study.pareto), key=lambda v: v[other]
        )
        fig = go.Figure()
        fig.add_trace(
            go.Scatter(
                x=[v[other] for v in values],
                y=[v[quality] for v in values],
                mode="markers",
                name=labels["trials_legend"],
                marker={"size": 11, "color": colors},
                hovertext=hover,
                hoverinfo="text",
            )
        )
        line = {"color": PALETTE[3]}
        x, y = [v[other] for v in front], [v[quality] for v in front]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=labels["pareto_front"], line=line))
        fig.update_layout(xaxis_title=names[other], yaxis_title=names[quality])
    else:
        dims = [{"label": n, "values": [v[i] for v in values]} for i, n in enumerate(names)]
        marker = {"color": colors, "size": 9}
        fig = go.Figure(go.Splom(dimensions=dims, marker=marker, hovertext=hover, hoverinfo="text"))
    fig.update_layout(title=labels["pareto_note"], height=480)
    return fig


def parallel_figure(info: RunInfo, labels: Labels) -> go.Figure | None:
    """Parallel coordinates of the complete trials' parameters and target; None with fewer than two."""
    study = info.study
    done = [t for t in info.trials if t.state == "complete" and t.value is not None]
    if study is None or not study.params or len(done) < 2:
        return None
    dims = [_dimension(p.name, [t.params.get(p.name) for t in done], p) for p in study.params]
    target = [float(t.value) for t in done if t.value is not None]
    dims.append(_dimension(target_label(info, labels), target, None))
    colorscale = "Viridis" if study.maximize else "Viridis_r"
    line = {"color": target, "colorscale": colorscale, "showscale": True}
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(
        margin={"l": 80, "r": 80, "t": 60, "b": 40}, height=460
    )  # room for the axis names on top
    return fig


def _dimension(label: str, values: Sequence[Any], param: ParamInfo | None) -> dict[str, Any]:
    """A parallel-coordinates axis; a trial without the parameter (a conditional one) sits at "—"."""
    present = [v for v in values if v is not None]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if not present or not numeric or (param is not None and param.kind == "categorical"):
        choices = sorted({str(v) for v in present}) + ([MISSING] if len(present) < len(values) else [])
        index = {c: i for i, c in enumerate(choices)}
        return {
            "label": esc(label),
            "values": [index[MISSING if v is None else str(v)] for v in values],
            "tickvals": list(range(len(choices))),
            "ticktext": [esc(c) for c in choices],
        }
    log = param is not None and param.log and min(present) > 0
    scale: Callable[[float], float] = math.log10 if log else float
    low, high = min(scale(v) for v in present), max(scale(v) for v in present)
    span = (high - low) or 1.0
    ticks = [low + span * i / 4 for i in range(5)] if high > low else [low]
    text = [f"{10**v if log else v:.3g}" for v in ticks]
    gap = low - span * 0.2
    if len(present) < len(values):
        ticks, text = [gap, *ticks], [MISSING, *text]
    return {
        "label": esc(label),
        "values": [gap if v is None else scale(v) for v in values],
        "range": [min(ticks), max(ticks)],
        "tickvals": ticks,
        "ticktext": text,
    }


def confusion_figure(matrix: dict[str, Any], labels: Labels) -> go.Figure | None:
    """eval.json's confusion matrix as a heatmap; None when it has none."""
    names, counts = [esc(n) for n in matrix.get("labels") or []], matrix.get("matrix") or []
    if not names or not counts:
        return None
    heat = go.Heatmap(z=counts, x=names, y=names, colorscale="Blues", text=counts, texttemplate="%{text}")
    fig = go.Figure(heat)
    fig.update_layout(
        title=labels["confusion"],
        xaxis_title=labels["predicted"],
        yaxis_title=labels["true"],
        yaxis={"autorange": "reversed"},
        height=200 + 40 * len(names),
    )
    return fig


def rows_figure(report: dict[str, Any], labels: Labels) -> go.Figure:
    """Where the data report's rows went: kept, removed by each cleaning step, quarantined."""
    removed = report.get("removed") or {}
    steps = {labels["rows_kept"]: report.get("rows_kept") or 0, **removed}
    steps[labels["quarantined"]] = report.get("quarantined") or 0
    fig = go.Figure(go.Bar(x=[esc(k) for k in steps], y=list(steps.values()), marker_color=PALETTE[4]))
    fig.update_layout(title=labels["where_rows_went"], yaxis_title=labels["rows"])
    return fig


def split_labels_figure(report: dict[str, Any], labels: Labels) -> go.Figure | None:
    """Rows per label, grouped by split; None when the data report counts no labels."""
    by_split = report.get("labels") or {}
    if not by_split:
        return None
    bars = go.Figure(
        [go.Bar(name=esc(s), x=[esc(k) for k in c], y=list(c.values())) for s, c in by_split.items()]
    )
    bars.update_layout(title=labels["labels_by_split"], yaxis_title=labels["rows"], barmode="group")
    return bars


def resource_figures(samples: list[dict[str, Any]], labels: Labels) -> dict[str, go.Figure]:
    """The resource samples over time, by figure id: those of RESOURCE_FIGURES that have a value to draw."""
    if not samples:
        return {}
    long_run = samples[-1]["elapsed_s"] > 300
    x = [s["elapsed_s"] / (60 if long_run else 1) for s in samples]
    gpus = sorted({g.get("index", 0) for s in samples for g in s.get("gpus") or []})
    figures = {}
    for div_id, title, unit, keys, gpu_key in RESOURCE_FIGURES:
        series = {labels[k]: [s.get(k) for s in samples] for k in keys}
        for i in gpus:
            if gpu_key is not None:
                series[labels[f"gpu_{gpu_key}"].format(i=i)] = [_gpu_value(s, i, gpu_key) for s in samples]
        traces = [
            go.Scatter(x=x, y=ys, mode="lines", name=esc(name))
            for name, ys in series.items()
            if any(y is not None for y in ys)
        ]
        if traces:
            fig = go.Figure(traces)
            fig.update_layout(title=labels[title], xaxis_title=labels["minutes" if long_run else "seconds"])
            fig.update_layout(yaxis_title=unit, height=360)
            figures[div_id] = fig
    return figures


def _gpu_value(sample: dict[str, Any], index: int, key: str) -> Any:
    return next((g.get(key) for g in sample.get("gpus") or [] if g.get("index", 0) == index), None)


def _hover(trial: TrialInfo, labels: Labels) -> str:
    """A trial's hover text: what it tried and, when it stopped early, why (wrapped to stay readable)."""
    lines = [f"{labels['trial']} {trial.number} · {labels['state_' + trial.state]}"]
    lines += [f"{k} = {plain(v)}" for k, v in trial.params.items()]
    if trial.reason:
        lines += textwrap.wrap(f"{labels['reason']}: {trial.reason}", 70)
    return "<br>".join(esc(line) for line in lines)


def _objective_label(name: str, metric: str, labels: Labels) -> str:
    text = metric if name == "quality" else labels.get("objective_" + name, name)
    return f"{text} ({OBJECTIVE_UNITS[name]})" if name in OBJECTIVE_UNITS else text
