"""`autoglm tune`: search the method and its hyperparameters, top to bottom.

prepare data → build and check the space → open (or resume) the study → seed it → run trials (W workers)
→ pick the best → its model into model/ (refit on train+validation if asked) → summary.json.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.atomic import staged_path
from open_autoglm.config import Config, dump_config, load_config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.splits import LoadedData, read_written_splits
from open_autoglm.distributed import (
    from_main,
    is_distributed,
    is_main_process,
    main_process_first,
    sharded_training,
)
from open_autoglm.models import load_model, load_tokenizer, resolve_model_path
from open_autoglm.monitor import ResourceMonitor
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import ERROR, RunFolder, RunSummary, write_summary
from open_autoglm.run_lock import hold_run_folder
from open_autoglm.search.measure import latency_ms
from open_autoglm.search.memory import plan_batch
from open_autoglm.search.objectives import (
    Direction,
    objective_named,
    pareto_front,
    resolve_weights,
    study_directions,
)
from open_autoglm.search.pruners import build_pruner
from open_autoglm.search.samplers import build_sampler
from open_autoglm.search.space import SearchSpace, build_space
from open_autoglm.search.storage import (
    StudyLock,
    count_trials,
    is_server_storage,
    open_storage,
    recover_interrupted,
    this_process_threads,
    worker_alive,
    worker_id,
)
from open_autoglm.search.trial import SearchContext, TrialOrder, follow_trials
from open_autoglm.search.worker import split_threads, work
from open_autoglm.tasks import TASKS
from open_autoglm.train.job import fit, save_fitted
from open_autoglm.versions import versions

logger = logging.getLogger(__name__)


def run_tune(
    config: Config, on_trial: Callable[[optuna.Study, int], None] | None = None, fresh: bool = False
) -> dict[str, Any]:
    """Search as the config says (re-running continues the study, `fresh` starts it over); write everything
    to the run folder, which no other job may use meanwhile."""
    started = time.perf_counter()
    run_dir = config.run_dir
    folder = RunFolder(run_dir)
    if not is_main_process():  # under torchrun: rank 0 writes the run folder, this rank trains its trials
        _search(config, on_trial, started)
        return {}
    with hold_run_folder(run_dir, "tune"):
        if fresh:
            folder.remove_study()
        else:  # finished trials stay valid only under the settings they ran with
            check_resume_compatible(run_dir, config, restart_flag="--fresh")
        dump_config(config, folder.config)
        with ResourceMonitor(folder.resources) as monitor:  # the study, worker processes included
            summary = _search(config, on_trial, started)
        assert summary is not None  # rank 0 runs the study
        summary.resources = monitor.summary()
        write_summary(folder.summary, summary)
    return summary.to_json()


def _search(
    config: Config, on_trial: Callable[[optuna.Study, int], None] | None, started: float
) -> RunSummary | None:
    """Steps 1 to 6 of the module docstring; returns the summary (None on a rank that follows rank 0)."""
    # 1. Data, prepared once for all trials (reused when unchanged; under torchrun by rank 0 first);
    # 2. the space, checked against the config before any trial runs.
    with main_process_first():
        loaded = load_data(config)
    space = build_space(config)
    if is_distributed():
        check_launch(config)
        if config.search.workers > 1:
            raise ValueError(
                "search.workers > 1 under torchrun / accelerate launch: every trial already trains on all "
                "the launched processes; use workers: 1 (or more machines sharing search.storage)"
            )
        if not is_main_process():  # rank 0 runs the study; this process trains each of its trials with it
            follow_trials(config, loaded)
            return None
        try:
            return _study(config, on_trial, started, loaded, space)
        finally:
            from_main(None)  # the other ranks stop following
    return _study(config, on_trial, started, loaded, space)


def check_launch(config: Config) -> None:
    """Refuse under FSDP / DeepSpeed the objectives rank 0 measures by running the model alone: a sharded model
    runs only on every rank together."""
    alone = [n for n in config.search.objectives if n == "latency" or objective_named(n).measure is not None]
    if sharded_training() and alone:
        raise ValueError(
            f"search.objectives {alone} run the trained model on rank 0 alone, which FSDP / DeepSpeed cannot; "
            "search them on one process or under DDP"
        )


def _study(
    config: Config,
    on_trial: Callable[[optuna.Study, int], None] | None,
    started: float,
    loaded: LoadedData,
    space: SearchSpace,
) -> RunSummary:
    """Steps 3 to 6 of the module docstring."""
    run_dir = config.run_dir

    # 3. The study: created, or loaded and its interrupted trials queued again.
    #    Under the study's lock: several `tune`s on several machines may start on one shared storage at once.
    task = TASKS.get(config.task)()
    lock = StudyLock(config.search.storage, run_dir, config.name)
    with lock:
        study = _open_study(config, task.greater_is_better)
        recovered = recover_interrupted(study)
        if recovered:
            logger.info("re-queued interrupted trials %s with their parameters", recovered)
        if not study.get_trials(deepcopy=False):
            _seed(study, space, config)
    if _needs_references(config) and "references" not in study.user_attrs:
        study.set_user_attr("references", measure_references(config, loaded))

    # 4. Trials.
    deadline = time.time() + config.search.timeout if config.search.timeout else None
    if config.search.workers == 1:
        work(
            lambda: make_context(config, loaded, space, 0),
            config.search.n_trials,
            deadline,
            *stop_rules(config),
            lock,
            on_trial,
        )
    else:
        _run_worker_processes(config, study, deadline)

    # 5. The best trial's model; 6. the summary.
    best, front = pick_best(study, config)
    installed = _install_best_model(run_dir, best)
    refit = _refit(config, best, loaded) if config.search.refit else None
    if installed is None and refit is None:
        logger.warning(
            "the best trial %d ran on another machine (worker %s): its model is in %s there; "
            "copy it, or set search.refit: true to train it here",
            best.number,
            best.user_attrs.get("worker"),
            best.user_attrs.get("model_dir"),
        )
    summary = build_tune_summary(
        config, study, best, front, refit, time.perf_counter() - started, task.metric
    )
    summary.best["model"] = str(RunFolder(run_dir).model) if installed or refit else None
    return summary


def make_context(config: Config, loaded: LoadedData, space: SearchSpace, worker_index: int) -> SearchContext:
    """A worker's view of the study: its own sampler (own seed) and pruners on the shared storage."""
    task = TASKS.get(config.task)()
    search = config.search
    directions = study_directions(search.objectives, search.mode, _direction(task.greater_is_better))
    storage = open_storage(search.storage, config.run_dir, search.heartbeat_seconds, search.grace_seconds)
    asked = storage.get_n_trials(storage.get_study_id_from_name(config.name))
    sampler = build_sampler(
        search.sampler,
        len(directions),
        search.startup_trials,
        sampler_seed(config, worker_index, asked),
        search.workers,
    )
    pruner = None
    if search.pruner != ["none"]:
        pruner = build_pruner(search.pruner, task.metric, config.train.epochs, search.startup_trials)
    single = search.objectives == ["quality"]
    study = optuna.load_study(
        study_name=config.name, storage=storage, sampler=sampler, pruner=pruner if single else None
    )
    prune_study = None
    if pruner is not None:
        prune_study = (
            study
            if single
            else optuna.load_study(study_name=_twin_name(config), storage=storage, pruner=pruner)
        )
    return SearchContext(
        config=config,
        space=space,
        loaded=loaded,
        metric=task.metric,
        greater_is_better=task.greater_is_better,
        objectives=list(search.objectives),
        mode=search.mode,
        weights=resolve_weights(search),
        references=study.user_attrs.get("references", {}),
        study=study,
        prune_study=prune_study,
    )


def sampler_seed(config: Config, worker_index: int, asked: int) -> int:
    """Each worker samples with its own seed, or they would all propose the same parameters.

    The seed mixes search.seed with the worker's index and the number of trials the study held when the worker
    started: a re-run after a kill draws new parameters instead of repeating those of the first run, and the
    same run (same config, same study) still reproduces. Workers on several machines share a database server,
    and each machine's index 0 is told apart by its worker id.
    """
    entropy = [config.search.seed % 2**32, worker_index, asked]
    if is_server_storage(config.search.storage):
        entropy.append(int.from_bytes(hashlib.sha256(worker_id().encode()).digest()[:4], "big"))
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def context_for_worker(run_dir: Path, index: int) -> tuple[Config, Callable[[], SearchContext]]:
    """A worker process rebuilds its context from the run folder the parent prepared."""
    folder = RunFolder(run_dir)
    config = load_config(folder.config)
    loaded = read_written_splits(folder.data)
    return config, lambda: make_context(config, loaded, build_space(config), index)


def stop_rules(config: Config) -> tuple[int | None, bool]:
    return config.search.patience, config.search.terminator


def pick_best(study: optuna.Study, config: Config) -> tuple[FrozenTrial, list[FrozenTrial]]:
    """The best trial (for a Pareto front: the front's best quality) and the front (empty for one value)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        counts = count_trials(study)
        raise RuntimeError(
            f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); "
            f"see {RunFolder(config.run_dir).trials}/*/{ERROR} and the fail_reason of each trial"
        )
    if len(study.directions) == 1:
        return study.best_trial, []
    directions = [d.name.lower() for d in study.directions]
    front = [complete[i] for i in pareto_front([list(t.values) for t in complete], directions)]
    quality_index = config.search.objectives.index("quality")
    sign = 1 if directions[quality_index] == "maximize" else -1
    return max(front, key=lambda t: sign * t.values[quality_index]), front


def measure_references(config: Config, loaded: LoadedData) -> dict[str, float]:
    """Cost objectives of the untuned model with full fine-tuning, the yardstick of the weighted score."""
    model_path = resolve_model_path(config.model.name)
    task = TASKS.get(config.task)()
    objective = task.objective(model_path, config.model)
    tokenizer = load_tokenizer(model_path, config.model)
    sample = loaded.splits["validation"][:32]
    prepared = task.prepare({"train": sample, "validation": sample}, tokenizer, config, objective)
    model, _ = load_model(model_path, config.model, objective, prepared.labels, tokenizer.pad_token_id)
    total = sum(p.numel() for p in model.parameters())
    full = config.model_copy(update={"method": config.method.model_validate({"name": "full"})})
    return {
        "latency": latency_ms(model, prepared.datasets["validation"]["input_ids"], "cpu"),
        "memory": plan_batch(full, model_path).estimated_bytes / 2**20,
        "params": float(total),
        "size": total * 4 / 2**20,
    }


def build_tune_summary(
    config: Config,
    study: optuna.Study,
    best: FrozenTrial,
    front: list[FrozenTrial],
    refit: dict[str, Any] | None,
    seconds: float,
    metric: str,
) -> RunSummary:
    """summary.json after a search."""
    trials = study.get_trials(deepcopy=False)
    default = next(
        (t for t in trials if t.user_attrs.get("role") == "default" and t.state == TrialState.COMPLETE), None
    )
    return RunSummary(
        task=config.task,
        metric=metric,
        greater_is_better=TASKS.get(config.task).greater_is_better,
        model=config.model.name,
        best={
            "trial": best.number,
            "params": best.params,
            "config": best.user_attrs.get("overrides", {}),
            "metrics": _test_or_validation(best),
            "validation": best.user_attrs.get("metrics", {}).get("validation"),
            "test": best.user_attrs.get("metrics", {}).get("test"),
            "objectives": best.user_attrs.get("objectives"),
            "values": best.values,
        },
        baseline={"metrics": default.user_attrs.get("baseline", {}) if default else {}},
        trials={k: v for k, v in count_trials(study).items() if k != "running"},
        compute={
            "train_steps": sum(t.user_attrs.get("train_steps", 0) for t in trials),
            "train_examples": sum(t.user_attrs.get("train_examples", 0) for t in trials),
            "epochs": round(sum(t.user_attrs.get("epochs_trained", 0) for t in trials), 2),
            "seconds": round(seconds, 2),
        },
        versions=versions(),
        sections={
            "objectives": config.search.objectives,
            "mode": config.search.mode,
            "default": {
                "trial": default.number if default else None,
                "config": default.user_attrs.get("overrides", {}) if default else None,
                "metrics": _test_or_validation(default) if default else {},
                "validation": default.user_attrs.get("metrics", {}).get("validation") if default else None,
            },
            "pareto": [{"trial": t.number, "values": t.values, "params": t.params} for t in front],
            "refit": refit,
            "pruned": {
                t.number: t.user_attrs.get("prune_reason") for t in trials if t.state == TrialState.PRUNED
            },
            "failed": {
                t.number: t.user_attrs.get("fail_reason", "failed")
                for t in trials
                if t.state == TrialState.FAIL
            },
        },
    )


def _open_study(config: Config, greater_is_better: bool) -> optuna.Study:
    """Create the study (and the twin that pruning needs for several objectives) or load them."""
    search = config.search
    directions = study_directions(search.objectives, search.mode, _direction(greater_is_better))
    storage = open_storage(search.storage, config.run_dir, search.heartbeat_seconds, search.grace_seconds)
    study = optuna.create_study(
        study_name=config.name, storage=storage, directions=directions, load_if_exists=True
    )
    stored = study.user_attrs.get("objectives")
    if stored is not None and stored != search.objectives:
        raise ValueError(
            f"the study in {config.run_dir} optimises {stored}, the config asks for {search.objectives}; "
            "use another name or --out, or delete the run folder"
        )
    study.set_user_attr("objectives", list(search.objectives))
    if search.objectives != ["quality"]:
        optuna.create_study(
            study_name=_twin_name(config),
            storage=storage,
            direction=_direction(greater_is_better),
            load_if_exists=True,
        )
    return study


def _direction(greater_is_better: bool) -> Direction:
    return "maximize" if greater_is_better else "minimize"


def _twin_name(config: Config) -> str:
    return f"{config.name}:primary"


def _seed(study: optuna.Study, space: SearchSpace, config: Config) -> None:
    """The config as written first (the default to beat, never pruned), then the known-good seeds."""
    if config.search.seed_default:
        params = space.params_of(config) or {}
        study.enqueue_trial(params, user_attrs={"role": "default", "never_prune": True})
    for seed in space.seeds:
        study.enqueue_trial(dict(seed), user_attrs={"role": "seed"}, skip_if_exists=True)


def _needs_references(config: Config) -> bool:
    return config.search.objectives != ["quality"] and config.search.mode == "weighted"


def _run_worker_processes(config: Config, study: optuna.Study, deadline: float | None) -> None:
    """W worker processes, threads split between them, one GPU each when there are GPUs.

    A worker that dies is an error only if the study did not finish without it (the others re-run its trial).
    """
    workers = config.search.workers
    threads = split_threads(workers, this_process_threads())
    gpus = torch.cuda.device_count()
    processes = []
    for index in range(workers):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        command = [
            sys.executable,
            "-m",
            "open_autoglm.search.worker_process",
            str(config.run_dir),
            "--index",
            str(index),
        ]
        if deadline is not None:
            command += ["--deadline", str(deadline)]
        log = open(RunFolder(config.run_dir).worker_log(index), "ab")  # noqa: SIM115 — closed after the wait
        processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    failed = []
    for index, (process, log) in enumerate(processes):
        if process.wait() != 0:
            failed.append(index)
        log.close()
    if failed and count_trials(study)["finished"] >= config.search.n_trials:
        logger.warning("search workers %s died; the others finished the study", failed)
    elif failed:
        logs = RunFolder(config.run_dir).worker_log("*")
        raise RuntimeError(f"search workers {failed} exited with an error; see {logs}")


def _install_best_model(run_dir: Path, best: FrozenTrial) -> Path | None:
    """Copy the best trial's model to model/ and drop the other trials' saved models.

    With workers on several machines the best trial may have run elsewhere: its model is taken from where
    that worker saved it when this machine can see it (a shared file system), else None.
    """
    folder = RunFolder(run_dir)
    source = folder.trial(best.number).model
    if not source.exists():
        elsewhere = Path(best.user_attrs.get("model_dir") or source)
        if elsewhere.exists():
            source = elsewhere
        elif worker_alive(best.user_attrs.get("worker", "?:0:0")) is None:
            return None
        else:
            raise RuntimeError(f"the best trial's model is missing: {source}")
    target = folder.model
    with staged_path(
        target
    ) as partial:  # a kill half-way leaves the earlier model/ or none, never half of one
        shutil.copytree(source, partial, copy_function=_link_or_copy)  # hard links: no second copy on disk
    for other in folder.trial_files("model"):
        if other != source:
            shutil.rmtree(other, ignore_errors=True)
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _refit(config: Config, best: FrozenTrial, loaded: LoadedData) -> dict[str, Any]:
    """Retrain the best configuration on train+validation, evaluate on test, and make it the model."""
    from open_autoglm.search.space import apply_overrides

    best_config = apply_overrides(config, best.user_attrs.get("overrides", {}), source="refit")
    merged = LoadedData(
        splits={
            "train": loaded.splits["train"] + loaded.splits["validation"],
            "validation": loaded.splits["validation"],  # trained on: its score here is not a fair estimate
            **({"test": loaded.splits["test"]} if "test" in loaded.splits else {}),
        }
    )
    folder = RunFolder(config.run_dir)
    from_main(TrialOrder(best_config, folder.refit, baseline=False, loaded=merged))
    result = fit(best_config, folder.refit, resume=False, loaded=merged, checkpoints=False, baseline=False)
    save_fitted(result, folder.model, best_config)  # staged: whole or not at all
    return {"metrics": result.metrics.get("test", {}), "train_rows": len(merged.splits["train"])}


def _test_or_validation(trial: FrozenTrial) -> dict[str, float]:
    metrics = trial.user_attrs.get("metrics", {})
    return metrics.get("test") or metrics.get("validation") or {}
