"""A run folder read into plain data: what the report shows, computed apart from how it is drawn.

Lenient, as artifacts should be: config.yaml is the one file a run folder must have. A train run has no study, a
killed run no summary.json, an older run no resources.jsonl or eval.json; whatever is missing leaves its part
empty (None or []), and the renderer leaves that section out. Whatever is there but cannot be read (torn,
truncated, another version's) is left out the same way and named in `RunInfo.unreadable` (see files.py).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.report.files import (
    CONFIG_SHAPE,
    DATA_SHAPE,
    EVAL_SHAPE,
    EXPORT_SHAPE,
    SUMMARY_SHAPE,
    RunFiles,
)
from open_autoglm.run_folder import METRICS, RESOURCES, RunFolder, RunSummary

MIN_TRIALS_FOR_IMPORTANCE = 3  # PED-ANOVA contrasts the best trials with the rest: it needs a few of each
LOWER_IS_BETTER = {"loss", "perplexity"}


@dataclass
class TrialInfo:
    """One trial (a train run is one trial, number 0) as the report shows it."""

    number: int
    state: str  # complete | pruned | fail | running | waiting
    role: str  # default (the config as written) | seed | sampled | train
    params: dict[str, Any]
    value: float | None  # the study's target (see StudyInfo.target); a pruned trial's last reported value
    values: list[float] | None  # every objective value, for a Pareto front
    reason: str | None  # why it was pruned or failed
    seconds: float | None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epoch, primary validation metric)
    loss: list[tuple[float, float]] = field(default_factory=list)  # (epoch, training loss)


@dataclass
class ParamInfo:
    name: str
    kind: str  # float | int | categorical
    log: bool


@dataclass
class Importance:
    """Share of each parameter in reaching the best trials (sums to 1), or a note saying why there is none."""

    values: dict[str, float]  # largest first
    evaluator: str
    note: str | None = None  # a label (report.labels) to fill with note_args
    note_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyInfo:
    objectives: list[str]  # quality, latency, memory, params, size
    directions: list[str]  # maximize | minimize, one per stored value
    target: str  # what TrialInfo.value holds: the metric, or "score" (several objectives, weighted)
    maximize: bool  # the target's direction
    params: list[ParamInfo]
    importance: Importance
    pareto: list[int]  # trial numbers on the front when the study keeps several values


@dataclass
class ComparisonRow:
    """One model's metrics beside the best configuration's."""

    kind: str  # best_validation | best_test | default | untuned | evaluated | eval_baseline
    metrics: dict[str, float]
    trial: int | None = None  # the search trial it comes from
    source: str = ""  # what eval.json measured: its data, or the baseline's name and source


@dataclass
class RunInfo:
    run_dir: Path
    name: str
    kind: str  # tune | train
    task: str | None
    metric: str
    greater_is_better: bool
    model: str | None
    summary: RunSummary | None  # None: no summary.json yet (a killed run), or an unreadable one
    trials: list[TrialInfo]
    study: StudyInfo | None
    comparison: list[ComparisonRow]
    data: dict[str, Any] | None  # data/data_report.json
    resources: list[dict[str, Any]]  # samples of resources.jsonl, each with elapsed_s from the first
    evaluation: dict[str, Any] | None  # eval.json
    export: list[dict[str, Any]] | None  # export/export_report.json variants
    notes: list[str]  # what could not be read, said in the report instead of failing it
    unreadable: dict[str, str] = field(default_factory=dict)  # file (relative to run_dir) -> what is wrong


def load_run(run_dir: Path) -> RunInfo:
    """Everything the report shows about `run_dir`."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it has no {folder.config.name}")
    files = RunFiles(run_dir)
    config = files.yaml(folder.config, CONFIG_SHAPE)
    written = files.json(folder.summary, SUMMARY_SHAPE)
    summary = RunSummary.from_json(written) if written else None
    found = summary or RunSummary()
    notes: list[str] = []
    study = _load_study(run_dir, config, notes)
    metric = found.metric or _guess_metric(files)
    greater = found.greater_is_better
    if greater is None:
        greater = metric not in LOWER_IS_BETTER
    if study is not None:
        trials, study_info = _study_trials(study, files, config, metric, greater)
    else:
        trials, study_info = _train_trials(files, summary, metric), None
    evaluation = files.json(folder.eval, EVAL_SHAPE)
    export = files.json(folder.export_report, EXPORT_SHAPE)
    return RunInfo(
        run_dir=run_dir,
        name=str(config.get("name") or run_dir.name),
        kind="tune" if study is not None else "train",
        task=found.task or config.get("task"),
        metric=metric,
        greater_is_better=greater,
        model=found.model or (config.get("model") or {}).get("name"),
        summary=summary,
        trials=trials,
        study=study_info,
        comparison=comparison_rows(found, evaluation),
        data=files.json(folder.data_report, DATA_SHAPE),
        resources=read_resources(files),
        evaluation=evaluation,
        export=(export or {}).get("variants") or None,
        notes=notes,
        unreadable=files.unreadable,
    )


def study_storage(run_dir: Path, config: dict[str, Any] | None = None) -> str | BaseStorage | None:
    """The run's study storage as `tune` chose it (see search.storage), or None when there is none.

    Only opens what exists: Optuna would create an empty study.db for a run folder that has none.
    """
    folder = RunFolder(run_dir)
    if config is None:
        config = RunFiles(run_dir).yaml(folder.config, CONFIG_SHAPE)
    storage = (config.get("search") or {}).get("storage")
    if storage in (None, "sqlite"):
        path = folder.study_db
        return f"sqlite:///{path.resolve()}" if path.is_file() else None
    if storage == "journal":
        path = folder.study_journal
        return JournalStorage(JournalFileBackend(str(path))) if path.is_file() else None
    return str(storage)


def _load_study(run_dir: Path, config: dict[str, Any], notes: list[str]) -> optuna.Study | None:
    storage = study_storage(run_dir, config)
    if storage is None:
        return None
    try:
        return optuna.load_study(study_name=str(config.get("name")), storage=storage)
    except KeyError:
        return None  # a storage without this run's study: nothing searched here
    except Exception as err:  # noqa: BLE001 — an unreachable database should not stop the rest of the report
        notes.append(f"the study storage could not be read: {type(err).__name__}: {err}")
        return None


def _study_trials(
    study: optuna.Study, files: RunFiles, config: dict[str, Any], metric: str, greater: bool
) -> tuple[list[TrialInfo], StudyInfo]:
    objectives = list(
        study.user_attrs.get("objectives") or (config.get("search") or {}).get("objectives") or ["quality"]
    )
    directions = [d.name.lower() for d in study.directions]
    several = len(directions) > 1
    quality = objectives.index("quality") if several and "quality" in objectives else 0
    target = "score" if len(objectives) > 1 and not several else metric
    maximize = greater if several else directions[0] == "maximize"
    frozen = study.get_trials(deepcopy=False)
    trials = []
    for trial in frozen:
        curve, loss = read_curves(files, RunFolder(files.run_dir).trial(trial.number).metrics, metric)
        trials.append(
            TrialInfo(
                number=trial.number,
                state=trial.state.name.lower(),
                role=str(trial.user_attrs.get("role", "sampled")),
                params=dict(trial.params),
                value=_target_value(trial, quality, curve, target == metric),
                values=list(trial.values) if trial.values is not None else None,
                reason=trial.user_attrs.get("prune_reason") or trial.user_attrs.get("fail_reason"),
                seconds=trial.duration.total_seconds() if trial.duration else None,
                curve=curve,
                loss=loss,
            )
        )
    complete = [t for t in frozen if t.state == TrialState.COMPLETE]
    info = StudyInfo(
        objectives=objectives,
        directions=directions,
        target=target,
        maximize=maximize,
        params=_params(frozen),
        importance=importance(study),
        pareto=sorted(t.number for t in study.best_trials) if several and complete else [],
    )
    return trials, info


def _target_value(
    trial: FrozenTrial, quality: int, curve: list[tuple[float, float]], on_metric: bool
) -> float | None:
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        return float(trial.values[quality])
    if trial.state == TrialState.PRUNED and on_metric and curve:
        return curve[-1][1]  # where it stood when it was stopped
    return None


def _params(trials: list[FrozenTrial]) -> list[ParamInfo]:
    found: dict[str, ParamInfo] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                found[name] = ParamInfo(name, "categorical", False)
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                found[name] = ParamInfo(
                    name, "float" if isinstance(dist, FloatDistribution) else "int", dist.log
                )
    return sorted(found.values(), key=lambda p: p.name)


def importance(study: optuna.Study) -> Importance:
    """PED-ANOVA importances (it handles conditional parameters and several objectives), or why there are none."""
    evaluator = "PED-ANOVA"
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = sorted({name for t in complete for name in t.params})
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        args = {"n": len(complete), "need": MIN_TRIALS_FOR_IMPORTANCE}
        return Importance({}, evaluator, "importance_too_few", args)
    if len(names) < 2:
        return Importance({}, evaluator, "importance_one_param", {"names": ", ".join(names) or "-"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except (
            ValueError,
            RuntimeError,
        ) as err:  # a study shape the evaluator refuses: say so, draw the rest
            return Importance({}, evaluator, "importance_failed", {"error": f"{type(err).__name__}: {err}"})
    equal = any("importances will be equal" in str(w.message) for w in caught)
    shares = {k: float(v) for k, v in values.items()}
    return Importance(shares, evaluator, "importance_equal" if equal else None)


def _train_trials(files: RunFiles, summary: RunSummary | None, metric: str) -> list[TrialInfo]:
    """A train run as one trial, so its learning curve is drawn as a search's are."""
    path = RunFolder(files.run_dir).trial(0).metrics
    if not path.is_file():
        return []
    curve, loss = read_curves(files, path, metric)
    found = summary or RunSummary()
    value = found.validation.get(metric)
    return [
        TrialInfo(
            number=0,
            state="complete" if summary else "running",
            role="train",
            params=dict(found.best.get("params") or {}),
            value=value if value is not None else (curve[-1][1] if curve else None),
            values=None,
            reason=None,
            seconds=found.compute.get("seconds"),
            curve=curve,
            loss=loss,
        )
    ]


def read_curves(
    files: RunFiles, path: Path, metric: str
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The primary validation metric and the training loss by epoch, from metrics.jsonl.

    One point per step: the final evaluation may repeat the last periodic one.
    """
    curve: dict[int, tuple[float, float]] = {}
    loss: dict[int, tuple[float, float]] = {}
    for number, row in files.jsonl(path):
        if not _is_number(row.get("value")):
            continue  # a diverged loss, or a perplexity of infinity
        epoch, step = row.get("epoch") or 0.0, row.get("step", 0)
        if not (_is_number(epoch) and _is_number(step)):
            files.note(path, f"line {number}: step and epoch must be numbers, not {step!r} and {epoch!r}")
            continue
        point = (float(epoch), float(row["value"]))
        if row.get("split") == "validation" and row.get("name") == metric:
            curve[int(step)] = point
        elif row.get("split") == "train" and row.get("name") == "loss":
            loss[int(step)] = point
    return [curve[s] for s in sorted(curve)], [loss[s] for s in sorted(loss)]


def _guess_metric(files: RunFiles) -> str:
    """The primary metric of a run killed before summary.json: the task metric its trials logged."""
    names: set[str] = {
        str(row.get("name"))
        for path in RunFolder(files.run_dir).trial_files(METRICS)[:1]
        for _, row in files.jsonl(path)
        if row.get("split") == "validation"
    }
    return next((m for m in ("accuracy", "perplexity") if m in names), "loss")


def comparison_rows(summary: RunSummary, evaluation: dict[str, Any] | None) -> list[ComparisonRow]:
    """The best configuration, then what it is measured against: the config as written, the untuned model,
    and the baselines of `autoglm eval`."""
    rows = []
    for split, metrics in (("validation", summary.validation), ("test", summary.test)):
        if metrics:
            rows.append(ComparisonRow(f"best_{split}", metrics, summary.best_trial))
    default = summary.sections.get("default") or {}
    if default.get("validation"):
        rows.append(ComparisonRow("default", default["validation"], default.get("trial")))
    untuned = summary.untuned
    if untuned:
        rows.append(ComparisonRow("untuned", untuned))
    if evaluation:
        data = str(evaluation.get("data") or "")
        rows.append(ComparisonRow("evaluated", evaluation.get("metrics") or {}, source=data))
        for baseline in evaluation.get("baselines") or []:
            source = f"{baseline.get('name', '')}: {baseline.get('source', '')}"
            rows.append(ComparisonRow("eval_baseline", baseline.get("metrics") or {}, source=source))
    return [ComparisonRow(r.kind, _numbers(r.metrics), r.trial, r.source) for r in rows]


def read_resources(files: RunFiles) -> list[dict[str, Any]]:
    """The run's resource samples (else its trials', merged in time order), each with elapsed_s from the first."""
    folder = RunFolder(files.run_dir)
    paths = [folder.resources]
    if not paths[0].is_file():
        paths = folder.trial_files(RESOURCES)
    samples = [row for path in paths for _, row in files.jsonl(path)]
    stamps = [t for t in (_timestamp(s.get("time")) for s in samples) if t is not None]
    if samples and len(stamps) == len(samples):  # one clock for samples from several files
        for sample, stamp in zip(samples, stamps, strict=True):
            sample["elapsed_s"] = stamp - min(stamps)
    timed = [s for s in samples if _is_number(s.get("elapsed_s"))]
    return sorted(timed, key=lambda s: float(s["elapsed_s"]))


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    """A finite int or float (JSON's NaN and Infinity cannot be drawn)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
