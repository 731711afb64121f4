"""The study of a `tune` run: opened (or created) with its directions, seeded, and seen by each worker.

A study named after the run holds the trials; for several objectives a single-objective twin
(`<name>:primary`) holds each trial's primary metric, because Optuna's pruners refuse multi-objective studies.
A new study starts with the config as written (the default to beat) and the space's known-good seeds.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import optuna
from optuna.storages import BaseStorage

from open_autoglm.config import Config
from open_autoglm.data.splits import LoadedData
from open_autoglm.models import load_model, load_tokenizer, resolve_model_path
from open_autoglm.search.measure import latency_objectives
from open_autoglm.search.memory import plan_batch
from open_autoglm.search.objectives import Direction, resolve_weights, study_directions
from open_autoglm.search.pruners import build_pruner
from open_autoglm.search.reports import on_grid, report_grid
from open_autoglm.search.samplers import build_sampler
from open_autoglm.search.space import SearchSpace
from open_autoglm.search.storage import is_server_storage, recover_interrupted, worker_id
from open_autoglm.search.trial import SearchContext
from open_autoglm.tasks import BaseTask

logger = logging.getLogger(__name__)


def open_study(config: Config, storage: BaseStorage, greater_is_better: bool) -> optuna.Study:
    """Create the study (and the twin that pruning needs for several objectives) or load them; a study that
    optimises other objectives than the config asks for is refused."""
    search = config.search
    directions = study_directions(search.objectives, search.mode, direction(greater_is_better))
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
            study_name=twin_name(config),
            storage=storage,
            direction=direction(greater_is_better),
            load_if_exists=True,
        )
    return study


def requeue_interrupted(study: optuna.Study) -> None:
    """A resumed study's trials whose worker died (a killed `tune`) run again with their parameters."""
    recovered = recover_interrupted(study)
    if recovered:
        logger.info("re-queued interrupted trials %s with their parameters", recovered)


def seed_study(study: optuna.Study, space: SearchSpace, config: Config) -> None:
    """A new study (no trial yet) first runs the config as written (the default to beat, never pruned), then the
    known-good seeds; a resumed one is left as it is."""
    if study.get_trials(deepcopy=False):
        return
    if config.search.seed_default:
        params = space.params_of(config) or {}
        study.enqueue_trial(params, user_attrs={"role": "default", "never_prune": True})
    for seed in space.seeds:
        study.enqueue_trial(dict(seed), user_attrs={"role": "seed"}, skip_if_exists=True)


def record_references(study: optuna.Study, config: Config, loaded: LoadedData, task: BaseTask) -> None:
    """The weighted score's yardstick, measured once per study (a resumed study keeps its own)."""
    weighted = config.search.objectives != ["quality"] and config.search.mode == "weighted"
    if weighted and "references" not in study.user_attrs:
        study.set_user_attr("references", measure_references(config, loaded, task))


def measure_references(config: Config, loaded: LoadedData, task: BaseTask) -> dict[str, float]:
    """Cost objectives of the untuned model with full fine-tuning, the yardstick of the weighted score."""
    model_path = resolve_model_path(config.model.name)
    objective = task.objective(model_path, config.model)
    tokenizer = load_tokenizer(model_path, config.model)
    sample = loaded.splits["validation"][:32]
    prepared = task.prepare(
        {"train": sample, "validation": sample}, tokenizer, config.data, config.train, objective
    )
    model, _ = load_model(model_path, config.model, objective, prepared.labels, tokenizer.pad_token_id)
    total = sum(p.numel() for p in model.parameters())
    full = config.model_copy(update={"method": config.method.model_validate({"name": "full"})})
    return {
        "latency": latency_objectives(model, prepared.datasets["validation"], objective, "cpu")["latency"],
        "memory": plan_batch(full, model_path).estimated_bytes / 2**20,
        "params": float(total),
        "size": total * 4 / 2**20,
    }


def make_context(
    config: Config,
    task: BaseTask,
    loaded: LoadedData,
    space: SearchSpace,
    storage: BaseStorage,
    worker_index: int,
) -> SearchContext:
    """A worker's view of the study: its own sampler (own seed) and pruners on the shared storage."""
    search = config.search
    metric, greater_is_better = task.search_metric(search.metric, config.train)
    directions = study_directions(search.objectives, search.mode, direction(greater_is_better))
    asked = storage.get_n_trials(storage.get_study_id_from_name(config.name))
    sampler = build_sampler(
        search.sampler,
        len(directions),
        search.startup_trials,
        sampler_seed(config, worker_index, asked),
        search.workers,
    )
    grid = report_grid(config, task, len(loaded.splits["train"]))
    pruner = None
    if search.pruner != ["none"]:
        pruner = build_pruner(search.pruner, metric, grid.rungs(search.startup_trials))
    single = search.objectives == ["quality"]
    study = optuna.load_study(
        study_name=config.name, storage=storage, sampler=sampler, pruner=pruner if single else None
    )
    prune_study = None
    if pruner is not None:
        prune_study = (
            study
            if single
            else optuna.load_study(study_name=twin_name(config), storage=storage, pruner=pruner)
        )
    return SearchContext(
        config=on_grid(config, grid),
        space=space,
        loaded=loaded,
        metric=metric,
        greater_is_better=greater_is_better,
        objectives=list(search.objectives),
        mode=search.mode,
        weights=resolve_weights(search),
        references=study.user_attrs.get("references", {}),
        study=study,
        prune_study=prune_study,
        grid=grid,
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


def direction(greater_is_better: bool) -> Direction:
    return "maximize" if greater_is_better else "minimize"


def twin_name(config: Config) -> str:
    return f"{config.name}:primary"
