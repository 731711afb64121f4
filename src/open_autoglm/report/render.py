"""A RunInfo drawn as one self-contained HTML page: inline CSS, plotly.js inlined once, one section per part.

The figures come from figures.py; this module lays out the page around them. Every string that comes from the
run folder is escaped (`esc`) before it reaches the page, in the tables here as in the figures there; plotly.js
renders the entities back to text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from open_autoglm.report.figures import (
    comparison_figure,
    confusion_figure,
    curve_figure,
    esc,
    history_figure,
    importance_figure,
    parallel_figure,
    pareto_figure,
    plain,
    resource_figures,
    row_label,
    rows_figure,
    split_labels_figure,
    target_label,
)
from open_autoglm.report.files import add_problem
from open_autoglm.report.info import RunInfo, TrialInfo
from open_autoglm.report.labels import Labels, labels_for
from open_autoglm.run_folder import METRICS, RunFolder, RunSummary

# trial state -> its name in summary.json's counts
DONE_STATES = {"complete": "complete", "pruned": "pruned", "fail": "failed"}
# eval.json: the facts shown, and the columns of its comparison, regression and per-class tables
EVAL_FACTS = ("task", "model", "data", "rows", "quarantined", "metric")
COMPARISON_KEYS = ("baseline", "value", "delta", "ci_low", "ci_high", "significant")
REGRESSION_KEYS = ("baseline", "metric", "baseline_value", "value", "change", "tolerance")
PER_CLASS_KEYS = ("precision", "recall", "f1", "support")
# the file each section draws on, named when a section cannot be drawn (the rest come from the study)
_RUN = RunFolder(Path())  # paths relative to the run folder
SECTION_FILES = {
    "overview": _RUN.summary.as_posix(),
    "best": _RUN.summary.as_posix(),
    "curves": (_RUN.trials / "*" / METRICS).as_posix(),
    "trials": _RUN.summary.as_posix(),
    "evaluation": _RUN.eval.as_posix(),
    "data": _RUN.data_report.as_posix(),
    "resources": _RUN.resources.as_posix(),
    "export": _RUN.export_report.as_posix(),
}
FONT = 'system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif'
CSS = (
    f"body{{font-family:{FONT};margin:0;color:#1f2937;background:#f8fafc;line-height:1.45}}"
    + """
header{background:#1e3a8a;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #e5e7eb;padding:8px 32px;z-index:10;
display:flex;flex-wrap:wrap;gap:4px 16px}nav a{color:#1e40af;text-decoration:none;font-size:14px}
main{padding:8px 32px 8px;max-width:1280px}footer{padding:0 32px 32px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 20px;margin:18px 0}
h2{font-size:20px;margin:6px 0 10px;color:#1e3a8a}h3{font-size:16px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
td.text{white-space:normal;min-width:240px}.row{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}
th{background:#f1f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pruned td{background:#fffbeb}tr.fail td{background:#fef2f2}tr.best td{background:#ecfdf5}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #e5e7eb;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}.note{color:#6b7280;font-style:italic}
.pass{color:#15803d;font-weight:bold}.fail{color:#b91c1c;font-weight:bold}
"""
)


def render_report(info: RunInfo, lang: str = "en") -> str:
    """The whole page for `info`, in English or Chinese."""
    labels = labels_for(lang)
    builders: list[tuple[str, Callable[[RunInfo, Labels], str]]] = [
        ("overview", _overview),
        ("best", _best),
        ("history", _history),
        ("importance", _importance),
        ("curves", _curves),
        ("pareto", _pareto),
        ("parallel", _parallel),
        ("trials", _trials),
        ("evaluation", _evaluation),
        ("data", _data),
        ("resources", _resources),
        ("export", _export),
        ("notes", _notes),
    ]
    unreadable = dict(info.unreadable)
    sections = [
        (key, body) for key, build in builders if (body := _drawn(key, build, info, labels, unreadable))
    ]
    if unreadable:  # first, so that nobody takes a left-out part for an empty one
        sections.insert(0, ("unreadable", _unreadable(unreadable, labels)))
    nav = "".join(f'<a href="#{key}">{esc(labels[key])}</a>' for key, _ in sections)
    main = "".join(
        f'<section id="{key}"><h2>{esc(labels[key])}</h2>{body}</section>' for key, body in sections
    )
    kind = labels["kind_" + info.kind]
    facts = " · ".join(
        esc(x) for x in (kind, info.task, info.model, f"{labels['metric']}: {info.metric}") if x
    )
    return (
        f'<!DOCTYPE html><html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(labels['title'])}: {esc(info.name)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<header><h1>{esc(labels['title'])}: {esc(info.name)}</h1><p>{facts}</p></header>"
        f"<nav>{nav}</nav><main>{main}</main>"
        f'<footer class="note">{esc(labels["run_folder"])}: {esc(info.run_dir.resolve())}</footer></body></html>'
    )


def _drawn(
    key: str,
    build: Callable[[RunInfo, Labels], str],
    info: RunInfo,
    labels: Labels,
    unreadable: dict[str, str],
) -> str:
    """One section's HTML; a value of a shape files.py does not check leaves the section out, named by its file."""
    try:
        return build(info, labels)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as err:
        problem = labels["section_failed"].format(section=labels[key], error=f"{type(err).__name__}: {err}")
        add_problem(unreadable, SECTION_FILES.get(key, "study"), problem)
        return ""


def _unreadable(unreadable: dict[str, str], labels: Labels) -> str:
    rows = [[name, problem] for name, problem in unreadable.items()]
    intro = f'<p class="fail">{esc(labels["unreadable_intro"])}</p>'
    return intro + table([labels["file"], labels["problem"]], rows)


# Sections: each returns its inner HTML, or "" to be left out.


def _overview(info: RunInfo, labels: Labels) -> str:
    summary = info.summary or RunSummary()
    counts = summary.trials or _count_states(info.trials)
    cards: list[tuple[str, Any]] = [
        (labels["state_" + s], counts.get(name)) for s, name in DONE_STATES.items()
    ]
    cards += [
        (f"{labels['best']} ({info.metric})", summary.validation.get(info.metric)),
        (f"{labels['untuned']} ({info.metric})", summary.untuned.get(info.metric)),
    ]
    compute = summary.compute
    resources = summary.resources or {}
    cards += [
        (labels["train_steps"], compute.get("train_steps")),
        (labels["compute_seconds"], compute.get("seconds")),
        (labels["peak_rss_card"], resources.get("peak_rss_mb")),
        (labels["mean_cpu_card"], resources.get("mean_cpu_percent")),
        (labels["gpu_peak_card"], resources.get("gpu_peak_memory_mb")),
    ]
    shown = "".join(
        f'<div class="card">{esc(name)}<b>{fmt(v)}</b></div>' for name, v in cards if v is not None
    )
    versions = summary.versions
    line = " · ".join(f"{esc(k)} {esc(v)}" for k, v in versions.items())
    return f'<div class="cards">{shown}</div>' + (f'<p class="note">{line}</p>' if line else "")


def _best(info: RunInfo, labels: Labels) -> str:
    best = (info.summary or RunSummary()).best
    config = best.get("config") or best.get("params") or {}
    parts = []
    if config:
        trial = f" ({labels['trial']} {best['trial']})" if best.get("trial") is not None else ""
        parts.append(f"<h3>{esc(labels['config_table'])}{esc(trial)}</h3>")
        parts.append(table([labels["param"], labels["value"]], [[k, v] for k, v in config.items()]))
    if info.comparison:
        names = _metric_names([r.metrics for r in info.comparison], info.metric)
        rows = [[row_label(r, labels), *(r.metrics.get(n) for n in names)] for r in info.comparison]
        parts.append(f"<h3>{esc(labels['against_baselines'])}</h3>")
        parts.append(table([labels["model"], *names], rows))
        parts.append(plot(comparison_figure(info.comparison, info.metric, labels), "fig-comparison"))
    return "".join(parts)


def _history(info: RunInfo, labels: Labels) -> str:
    if info.study is None:
        return ""
    fig = history_figure(info, labels)
    return plot(fig, "fig-history") if fig else f'<p class="note">{esc(labels["no_complete"])}</p>'


def _importance(info: RunInfo, labels: Labels) -> str:
    if info.study is None or not info.study.params:
        return ""
    found = info.study.importance
    note = f'<p class="note">{esc(labels[found.note].format(**found.note_args))}</p>' if found.note else ""
    return note + plot(importance_figure(found, labels), "fig-importance")


def _curves(info: RunInfo, labels: Labels) -> str:
    with_curves = [t for t in info.trials if t.curve or t.loss]
    if not with_curves:
        return ""
    summary = info.summary or RunSummary()
    best, untuned = summary.best_trial, summary.untuned.get(info.metric)
    curves = curve_figure(with_curves, "curve", info.metric, best, untuned, labels)
    losses = curve_figure(with_curves, "loss", labels["train_loss"], best, None, labels)
    parts = [plot(curves, "fig-curves"), plot(losses, "fig-loss")]
    stopped = [t for t in info.trials if t.state in ("pruned", "fail")]
    if stopped:
        rows = [
            [t.number, labels["state_" + t.state], t.curve[-1][0] if t.curve else None, t.reason]
            for t in stopped
        ]
        parts.append(f"<h3>{esc(labels['why_stopped'])}</h3>")
        parts.append(table([labels["trial"], labels["state"], labels["epoch"], labels["reason"]], rows))
    return "".join(parts)


def _pareto(info: RunInfo, labels: Labels) -> str:
    return plot(pareto_figure(info, labels), "fig-pareto")


def _parallel(info: RunInfo, labels: Labels) -> str:
    return plot(parallel_figure(info, labels), "fig-parallel")


def _trials(info: RunInfo, labels: Labels) -> str:
    if info.study is None or not info.trials:
        return ""
    best = info.summary.best_trial if info.summary else None
    headers = [labels["trial"], labels["state"], labels["role"], target_label(info, labels)]
    headers += [labels["params"], labels["duration"], labels["reason"]]
    rows, classes = [], []
    for t in info.trials:
        params = ", ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
        role = labels.get("role_" + t.role, t.role)
        rows.append([t.number, labels["state_" + t.state], role, t.value, params, t.seconds, t.reason])
        classes.append("best" if t.number == best else t.state)
    return table(headers, rows, classes)


def _evaluation(info: RunInfo, labels: Labels) -> str:
    ev = info.evaluation
    if not ev:
        return ""
    parts = []
    if ev.get("passed") is not None:
        verdict, css = ("passed", "pass") if ev["passed"] else ("failed", "fail")
        parts.append(f'<p class="{css}">{esc(labels[verdict])}</p>')
    facts = [[labels["eval_" + k], _count_or_value(ev[k])] for k in EVAL_FACTS if k in ev]
    parts.append(table([labels["field"], labels["value"]], facts))
    confidence = ev.get("confidence") or {}
    rows = [[n, v, *(confidence.get(n) or [None, None])[:2]] for n, v in (ev.get("metrics") or {}).items()]
    parts.append(table([labels["metric"], labels["value"], labels["ci_low"], labels["ci_high"]], rows))
    rows = [
        [b.get("name"), metric, *(c.get(k) for k in COMPARISON_KEYS)]
        for b in ev.get("baselines") or []
        for metric, c in (b.get("comparison") or {}).items()
    ]
    if rows:
        headers = [labels["baseline"], labels["metric"], labels["baseline_value"], labels["value"]]
        headers += [labels[k] for k in COMPARISON_KEYS[2:]]
        parts += [f"<h3>{esc(labels['against_baselines'])}</h3>", table(headers, rows)]
    rows = [[r.get(k) for k in REGRESSION_KEYS] for r in ev.get("regressions") or []]
    if rows:
        parts += [f"<h3>{esc(labels['regressions'])}</h3>", table([labels[k] for k in REGRESSION_KEYS], rows)]
    rows = [
        [label, *(scores.get(k) for k in PER_CLASS_KEYS)]
        for label, scores in (ev.get("per_class") or {}).items()
    ]
    if rows:
        headers = [labels["label"], *(labels[k] for k in PER_CLASS_KEYS)]
        parts += [f"<h3>{esc(labels['per_class'])}</h3>", table(headers, rows)]
    parts.append(plot(confusion_figure(ev.get("confusion_matrix") or {}, labels), "fig-confusion"))
    speed = ev.get("speed") or {}
    if speed:
        rows = [[labels.get(k, k), v] for k, v in speed.items()]
        parts += [f"<h3>{esc(labels['speed'])}</h3>", table([labels["field"], labels["value"]], rows)]
    return "".join(parts)


def _data(info: RunInfo, labels: Labels) -> str:
    report = info.data
    if not report:
        return ""
    dup = report.get("duplicates") or {}
    facts = [
        [labels["rows_in"], report.get("rows_in")],
        [labels["rows_kept"], report.get("rows_kept")],
        [labels["quarantined"], report.get("quarantined")],
        [labels["changed_by_cleaning"], report.get("changed_by_cleaning")],
        *([labels["dup_" + k], v] for k, v in dup.items() if "dup_" + k in labels),
    ]
    tables = [("", table([labels["field"], labels["value"]], [f for f in facts if f[1] is not None]))]
    for key in ("removed", "pii", "splits", "languages"):
        counts = report.get(key) or {}
        if counts:
            tables.append(
                (labels["data_" + key], table([labels["name"], labels["rows"]], list(counts.items())))
            )
    rows, by_split = rows_figure(report, labels), split_labels_figure(report, labels)
    return side_by_side(tables) + plot(rows, "fig-data") + plot(by_split, "fig-labels")


def _resources(info: RunInfo, labels: Labels) -> str:
    return "".join(plot(fig, div_id) for div_id, fig in resource_figures(info.resources, labels).items())


def _export(info: RunInfo, labels: Labels) -> str:
    if not info.export:
        return ""
    columns = list(dict.fromkeys(k for variant in info.export for k in variant))
    return table([labels.get(c, c) for c in columns], [[v.get(c) for c in columns] for v in info.export])


def _notes(info: RunInfo, labels: Labels) -> str:
    return "".join(f'<p class="note">{esc(n)}</p>' for n in info.notes)


# Small parts.


def plot(fig: go.Figure | None, div_id: str) -> str:
    """A figure as a div and the script that draws it (plotly.js is in the page head once); "" for no figure.

    It is as tall as the figure's layout says, else 420 px.
    """
    if fig is None:
        return ""
    height = fig.layout.height or 420
    fig.update_layout(template="plotly_white", height=height, font_family=FONT)
    if fig.layout.margin.t is None:
        fig.update_layout(margin_t=60 if fig.layout.title.text else 30)
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )


def side_by_side(tables: list[tuple[str, str]]) -> str:
    """Small (heading, table) pairs in a row that wraps, rather than a long column of short tables."""
    cells = "".join(f"<div><h3>{esc(heading)}</h3>{body}</div>" for heading, body in tables)
    return f'<div class="row">{cells}</div>'


def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(classes[i])}"' if i < len(classes) else ""
        cells = "".join(_cell(v) for v in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{fmt(value)}</td>'
    text = fmt(value)
    return f'<td class="text">{text}</td>' if len(text) > 40 else f"<td>{text}</td>"  # long text may wrap


def fmt(value: Any) -> str:
    """A value for the page, escaped."""
    return esc(plain(value))


def _count_or_value(value: Any) -> Any:
    """A list (eval.json's quarantined rows) by its length: the rows themselves belong in the eval folder."""
    return len(value) if isinstance(value, list) else value


def _metric_names(metrics: list[dict[str, float]], primary: str) -> list[str]:
    names = list(dict.fromkeys(k for m in metrics for k in m))
    return sorted(names, key=lambda n: n != primary)


def _count_states(trials: list[TrialInfo]) -> dict[str, int]:
    """Trial counts of a run that has no summary.json yet, named as the summary names them."""
    return {name: sum(t.state == s for t in trials) for s, name in DONE_STATES.items()}
