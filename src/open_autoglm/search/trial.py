"""One trial of the search: parameters → config → memory plan → fit (reporting, maybe pruned) → objectives.

Whatever happens inside, the trial ends told to the study — complete, pruned with the reason, or failed with
the reason — and its memory is released before the next one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from transformers import TrainerCallback

from open_autoglm.atomic import ArtifactWriteError, write_json, write_text
from open_autoglm.config import Config
from open_autoglm.data.splits import LoadedData
from open_autoglm.distributed import from_main, world_size
from open_autoglm.methods import METHODS
from open_autoglm.models import resolve_model_path
from open_autoglm.monitor import PeakMemory, ResourceMonitor
from open_autoglm.run_folder import RunFolder, TrialFolder
from open_autoglm.search.measure import latency_objectives, measure_plugin
from open_autoglm.search.memory import plan_batch
from open_autoglm.search.objectives import (
    Direction,
    TrialOutcome,
    objective_named,
    pareto_front,
    weighted_score,
)
from open_autoglm.search.optuna_private import heartbeat_storage, trial_id
from open_autoglm.search.pruners import CompositePruner
from open_autoglm.search.reports import ReportGrid
from open_autoglm.search.space import SearchSpace, apply_overrides
from open_autoglm.search.storage import worker_id
from open_autoglm.train.callbacks import perplexity
from open_autoglm.train.job import FitResult, examples_per_step, fit, save_fitted

logger = logging.getLogger(__name__)


@dataclass
class SearchContext:
    """What every trial of one worker shares."""

    config: Config  # the base config: what a trial does not sample stays as written here
    space: SearchSpace
    loaded: LoadedData
    metric: str
    greater_is_better: bool
    objectives: list[str]
    mode: str  # weighted | pareto
    weights: dict[str, float]
    references: dict[str, float]  # cost objectives of the untuned model, for the weighted score
    study: optuna.Study
    prune_study: optuna.Study | None  # where the primary metric is reported (the study itself, or its twin)
    grid: ReportGrid  # where trials report (config evaluates on it)
    worker: str = field(default_factory=worker_id)

    def trial_folder(self, number: int) -> TrialFolder:
        return RunFolder(self.config.run_dir).trial(number)


class ReportingCallback(TrainerCallback):
    """Reports the primary validation metric at each evaluation, at the examples seen on the grid; stops the
    trial when a pruner says so."""

    def __init__(
        self,
        trial: optuna.Trial | None,
        pruner: CompositePruner | None,
        metric: str,
        grid: ReportGrid | None = None,  # None: a follower rank, which never reports
    ) -> None:
        self.trial, self.pruner, self.metric, self.grid = trial, pruner, metric, grid
        self.steps = self.examples = 0
        self.last_step: int | None = None
        self.training_done = False  # evaluations after training (final, test) are not reports

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.training_done = True

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.steps = state.global_step
        self.examples = state.global_step * examples_per_step(args)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # type: ignore[no-untyped-def]
        value = _validation_value(metrics or {}, self.metric)  # validation only: test_ and baseline_ are not
        if value is None or self.training_done or not state.epoch:
            return
        reason = None
        if self.trial is not None:
            assert self.grid is not None, "a reporting rank needs the report grid"
            self.last_step = self.grid.step_at(state.epoch or 0.0)
            self.trial.report(float(value), self.last_step)
            if (
                state.global_step < state.max_steps and self.trial.should_prune()
            ):  # never cut a finished trial
                reason = self.pruner.last_reason if self.pruner else "pruned"
        reason = from_main(reason)  # under torchrun rank 0 decides and every rank stops with it
        if reason is not None:
            raise optuna.TrialPruned(reason)


def _validation_value(metrics: dict[str, float], metric: str) -> float | None:
    if f"eval_{metric}" in metrics:
        return metrics[f"eval_{metric}"]
    if metric == "perplexity" and "eval_loss" in metrics:  # the Trainer reports the loss only
        return perplexity(metrics["eval_loss"])
    return None


def run_trial(ctx: SearchContext, trial: optuna.Trial) -> TrialState:
    """Run `trial` to its end and tell the study; returns the final state.

    A trial that another worker took over meanwhile (this one was judged dead) is dropped, not told.
    """
    trial.set_user_attr("worker", ctx.worker)
    twin = _twin_trial(ctx, trial)
    heartbeat = _Heartbeat(ctx.study, trial)
    try:
        return _fit_and_tell(ctx, trial, twin)
    except optuna.exceptions.UpdateFinishedTrialError:
        return _drop_taken_over(ctx, trial, twin)
    finally:
        heartbeat.stop()
        release_memory()


def _fit_and_tell(ctx: SearchContext, trial: optuna.Trial, twin: optuna.Trial | None) -> TrialState:
    """The trial's work; whatever happens inside ends told to the study (complete, pruned or failed)."""
    folder = ctx.trial_folder(trial.number)
    trial_dir = folder.path
    reporter = ReportingCallback(twin, _pruner_of(ctx), ctx.metric, ctx.grid)
    try:
        config, params = _trial_config(ctx, trial)
        write_json(folder.params, params)
        config = _fit_memory(config, trial)
        trial.set_user_attr("processes", world_size())
        from_main(TrialOrder(config, trial_dir, baseline=trial.user_attrs.get("role") == "default"))
        with ResourceMonitor(folder.resources), PeakMemory() as peak:
            fit_result = fit(
                config,
                trial_dir,
                resume=False,
                loaded=ctx.loaded,
                callbacks=[reporter],
                checkpoints=False,
                baseline=trial.user_attrs.get("role") == "default",
            )
        measured = _measure(ctx, fit_result, peak.peak_mb, config)
        values = _values(ctx, measured)
        _record_result(trial, fit_result, measured, reporter)
        if _is_best_so_far(ctx, values):
            save_fitted(fit_result, folder.model, config)
            trial.set_user_attr("model_dir", str(folder.model.resolve()))
        return _tell(ctx, trial, twin, TrialState.COMPLETE, values, measured["quality"])
    except optuna.exceptions.UpdateFinishedTrialError:
        raise  # another worker failed this trial while this one was judged dead: not this trial's failure
    except optuna.TrialPruned as pruned:
        reason = str(pruned) or "pruned"
        trial.set_user_attr("prune_reason", reason)
        _record_compute(trial, reporter)
        logger.debug("trial %d pruned: %s", trial.number, reason)
        return _tell(ctx, trial, twin, TrialState.PRUNED)
    except Exception as err:  # noqa: BLE001 — any failure of one trial is recorded; the study goes on
        reason = f"{type(err).__name__}: {err}".strip()
        trial.set_user_attr("fail_reason", reason[:2000])  # raises UpdateFinishedTrialError if taken over
        _record_compute(trial, reporter)
        with contextlib.suppress(ArtifactWriteError):  # a full disk: the study's storage keeps the reason
            write_text(folder.error, traceback.format_exc())
        logger.debug("trial %d failed: %s", trial.number, reason.splitlines()[0])
        state = _tell(ctx, trial, twin, TrialState.FAIL)
        if isinstance(err, ArtifactWriteError):
            raise  # the disk fails every trial after this one too: stop the search, naming the file
        return state


def _drop_taken_over(ctx: SearchContext, trial: optuna.Trial, twin: optuna.Trial | None) -> TrialState:
    """This worker went silent for longer than search.grace_seconds (paused, suspended, stalled), so another
    worker failed its trial and queued the same parameters again: that retry is the trial's run now, and the
    work done here is dropped. Returns the state the other worker gave the trial."""
    if twin is not None and twin is not trial:
        ctx.prune_study.tell(twin, state=TrialState.FAIL, skip_if_finished=True)  # type: ignore[union-attr]
    stored = ctx.study.get_trials(deepcopy=False)[trial.number]
    logger.warning(
        "trial %d was taken over by another worker (%s); dropping it and going on",
        trial.number,
        stored.user_attrs.get("fail_reason", stored.state.name.lower()),
    )
    return stored.state


@dataclass(frozen=True)
class TrialOrder:
    """What rank 0 sends the other processes of a `torchrun` launch: train this config with me (they follow
    in search/ranks.py)."""

    config: Config
    trial_dir: Path
    baseline: bool
    loaded: LoadedData | None = None  # the refit's train+validation; trials use the splits every rank read


def describe_trial(trial: FrozenTrial) -> str:
    """One line: what the trial tried and how it ended."""
    overrides = trial.user_attrs.get("overrides") or {}
    tried = (
        " ".join(f"{k.split('.')[-1]}={format_value(v)}" for k, v in overrides.items())
        or "(config as written)"
    )
    if trial.state == TrialState.COMPLETE:
        ended = f"{(trial.user_attrs.get('objectives') or {}).get('quality', float('nan')):.4f}"
    elif trial.state == TrialState.PRUNED:
        ended = f"pruned: {trial.user_attrs.get('prune_reason', '')}"
    else:
        ended = f"{trial.state.name.lower()}: {trial.user_attrs.get('fail_reason', '')}".splitlines()[0]
    return f"trial {trial.number:>3} {tried} → {ended}"


def format_value(value: Any) -> str:
    """A parameter value for a one-line display."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_config(ctx: SearchContext, trial: optuna.Trial) -> tuple[Config, dict[str, Any]]:
    """The trial's config; the default trial runs the config as written when it lies outside the space."""
    if (
        trial.user_attrs.get("role") == "default"
        and not trial.params
        and ctx.space.params_of(ctx.config) is None
    ):
        return ctx.config, {"role": "default", "params": {}, "overrides": {}}
    sampled = ctx.space.sample(trial)
    overrides = ctx.space.overrides(sampled)
    config = apply_overrides(ctx.config, overrides, source=f"trial {trial.number}")
    trial.set_user_attr("overrides", overrides)
    role = trial.user_attrs.get("role", "sampled")
    return config, {"role": role, "params": sampled, "overrides": overrides}


def _fit_memory(config: Config, trial: optuna.Trial) -> Config:
    """Shrink the batch (raising gradient accumulation) when the estimate says it would not fit."""
    plan = plan_batch(config, resolve_model_path(config.model.name))
    trial.set_user_attr("memory_estimate_mb", round(plan.estimated_bytes / 2**20, 1))
    if not plan.fits:
        raise MemoryError(plan.reason)
    if plan.batch_size == config.train.batch_size:
        return config
    logger.info("trial %d: %s", trial.number, plan.reason)
    trial.set_user_attr("batch_plan", {"batch_size": plan.batch_size, "grad_accum": plan.grad_accum})
    train = config.train.model_copy(update={"batch_size": plan.batch_size, "grad_accum": plan.grad_accum})
    return config.model_copy(update={"train": train})


def _measure(ctx: SearchContext, result: FitResult, peak_mb: float, config: Config) -> dict[str, float]:
    """Every objective this study optimises, measured on the trained model."""
    validation = result.metrics["validation"]
    if ctx.metric not in validation:
        raise ValueError(f"metric {ctx.metric!r} missing from the validation results {sorted(validation)}")
    trainable, total = result.parameters
    bytes_per_weight = 4 if result.placement.precision == "fp32" else 2
    saved = trainable if METHODS.get(config.method.name).uses_peft else total
    measured = {
        "quality": float(validation[ctx.metric]),
        "memory": peak_mb,
        "params": float(trainable),
        "size": saved
        * bytes_per_weight
        / 2**20,  # the adapter (+ new heads) for PEFT methods, else the model
    }
    if "latency" in ctx.objectives:  # a causal LM's also records its tokens_per_second
        validation_set, device = result.prepared.datasets["validation"], result.trainer.args.device
        measured |= latency_objectives(result.trainer.model, validation_set, result.objective, device)
    plugins = {
        name: measure for name in ctx.objectives if (measure := objective_named(name).measure) is not None
    }
    if plugins:
        outcome = TrialOutcome(
            model=result.trainer.model,
            tokenizer=result.tokenizer,
            validation=result.prepared.datasets["validation"],
            metrics=validation,
            config=config,
            device=result.trainer.args.device,
        )
        measured |= {name: measure_plugin(name, measure, outcome) for name, measure in plugins.items()}
    return measured


def _values(ctx: SearchContext, measured: dict[str, float]) -> list[float]:
    if ctx.objectives == ["quality"]:
        return [measured["quality"]]
    if ctx.mode == "pareto":
        return [measured[name] for name in ctx.objectives]
    direction: Direction = "maximize" if ctx.greater_is_better else "minimize"
    return [weighted_score(measured, ctx.weights, ctx.references, direction)]


def _is_best_so_far(ctx: SearchContext, values: list[float]) -> bool:
    """Only a trial that may end up best keeps its model (a full model is hundreds of MB)."""
    done = ctx.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return True
    directions = [d.name.lower() for d in ctx.study.directions]
    points = [list(t.values) for t in done] + [values]
    return len(points) - 1 in pareto_front(points, directions)


def _record_result(
    trial: optuna.Trial, result: FitResult, measured: dict[str, float], reporter: ReportingCallback
) -> None:
    trial.set_user_attr("objectives", measured)
    trial.set_user_attr("metrics", result.metrics)
    if result.baseline:
        trial.set_user_attr("baseline", result.baseline)
    trial.set_user_attr("parameters", {"trainable": result.parameters[0], "total": result.parameters[1]})
    trial.set_user_attr("train_seconds", round(result.train_seconds, 2))
    reporter.steps = result.trainer.state.global_step
    _record_compute(trial, reporter)


def _record_compute(trial: optuna.Trial, reporter: ReportingCallback) -> None:
    trial.set_user_attr("train_steps", reporter.steps)
    trial.set_user_attr("train_examples", reporter.examples)
    if reporter.last_step is not None and reporter.grid is not None:
        trial.set_user_attr("epochs_trained", reporter.grid.epochs_at(reporter.last_step))


def _twin_trial(ctx: SearchContext, trial: optuna.Trial) -> optuna.Trial | None:
    """Where the primary metric is reported: the trial itself, or its twin in the single-objective study that
    pruning needs when the study optimises several values (Optuna's pruners refuse multi-objective studies)."""
    if ctx.prune_study is None:
        return None
    if ctx.prune_study is ctx.study:
        return trial
    twin = ctx.prune_study.ask()
    twin.set_user_attr("trial", trial.number)
    if trial.user_attrs.get("never_prune"):
        twin.set_user_attr("never_prune", True)
    trial.set_user_attr("twin", twin.number)
    return twin


def _pruner_of(ctx: SearchContext) -> CompositePruner | None:
    pruner = ctx.prune_study.pruner if ctx.prune_study is not None else None
    return pruner if isinstance(pruner, CompositePruner) else None


def _tell(
    ctx: SearchContext,
    trial: optuna.Trial,
    twin: optuna.Trial | None,
    state: TrialState,
    values: list[float] | None = None,
    quality: float | None = None,
) -> TrialState:
    if twin is not None and twin is not trial:
        ctx.prune_study.tell(twin, quality if state == TrialState.COMPLETE else None, state=state)  # type: ignore[union-attr]
    told = ctx.study.tell(trial, values, state=state, skip_if_finished=True)
    if told.state != state:  # another worker failed it a moment ago: run_trial drops it
        raise optuna.exceptions.UpdateFinishedTrialError(f"trial {trial.number} is already {told.state.name}")
    return state


def release_memory() -> None:
    """Free what a trial held before the next one starts (its model, optimizer state, cached CUDA blocks)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _Heartbeat:
    """Tells the storage this trial's worker is alive (Optuna only does so inside `study.optimize`)."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial) -> None:
        self._stop = threading.Event()
        storage = heartbeat_storage(study)
        self._thread: threading.Thread | None = None
        if storage is not None:
            self._thread = threading.Thread(target=self._beat, args=(storage, trial_id(trial)), daemon=True)
            self._thread.start()

    def _beat(self, storage: Any, stored_id: int) -> None:
        while True:
            storage.record_heartbeat(stored_id)
            if self._stop.wait(storage.get_heartbeat_interval()):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
