"""`autoglm tune`: search the method and its hyperparameters, top to bottom.

prepare data → build and check the space → open (or resume) the study → seed it → run trials (W workers)
→ pick the best → its model into model/ (refit on train+validation if asked) → summary.json.

Each step is a call into a component: the study (search/study.py), the worker loop and its processes
(search/worker.py), the best trial (search/best.py), the summary (search/summary.py); under torchrun the other
ranks follow rank 0 (search/ranks.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import optuna

from open_autoglm.config import Config, dump_config
from open_autoglm.distributed import is_main_process
from open_autoglm.monitor import ResourceMonitor
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import RunFolder, RunSummary, write_summary
from open_autoglm.run_lock import hold_run_folder
from open_autoglm.search.best import install_best_model, pick_best, refit_best
from open_autoglm.search.ranks import check_ranks, follow_rank_zero, lead_ranks, prepare_data
from open_autoglm.search.space import build_space
from open_autoglm.search.storage import StudyLock, open_storage
from open_autoglm.search.study import (
    make_context,
    open_study,
    record_references,
    requeue_interrupted,
    seed_study,
)
from open_autoglm.search.summary import build_tune_summary
from open_autoglm.search.worker import run_worker_processes, stop_rules, work
from open_autoglm.tasks import TASKS, BaseTask

logger = logging.getLogger(__name__)


def run_tune(
    config: Config, on_trial: Callable[[optuna.Study, int], None] | None = None, fresh: bool = False
) -> dict[str, Any]:
    """Search as the config says (re-running continues the study, `fresh` starts it over); write everything
    to the run folder, which no other job may use meanwhile."""
    started = time.perf_counter()
    task = TASKS.get(config.task)()  # once: every step below asks it the metric and its direction
    if not is_main_process():  # under torchrun: rank 0 writes the run folder, this rank trains its trials
        follow_rank_zero(config, task)
        return {}
    folder = RunFolder(config.run_dir)
    with hold_run_folder(config.run_dir, "tune"):
        if fresh:
            folder.remove_study()
        else:  # finished trials stay valid only under the settings they ran with
            check_resume_compatible(config.run_dir, config, restart_flag="--fresh")
        dump_config(config, folder.config)
        with ResourceMonitor(folder.resources) as monitor:  # the study, worker processes included
            summary = _search(config, task, on_trial, started)
        summary.resources = monitor.summary()
        write_summary(folder.summary, summary)
    return summary.to_json()


def _search(
    config: Config, task: BaseTask, on_trial: Callable[[optuna.Study, int], None] | None, started: float
) -> RunSummary:
    """The search itself, on rank 0 (or the only process)."""
    search = config.search
    _, greater_is_better = task.search_metric(search.metric, config.train)  # refused before any data is read

    # 1. Data, prepared once for all trials (reused when unchanged); 2. the space, checked before any trial.
    loaded = prepare_data(config)
    space = build_space(config)
    check_ranks(config)

    with lead_ranks():  # under torchrun the other ranks train each trial with this one until the block ends
        # 3. The study: created, or loaded and its interrupted trials queued again; 4. seeded when new.
        #    Under the study's lock: several `tune`s on several machines may start on one shared storage at once.
        lock = StudyLock(search.storage, config.run_dir, config.name)
        with lock:
            storage = open_storage(
                search.storage, config.run_dir, search.heartbeat_seconds, search.grace_seconds
            )
            study = open_study(config, storage, greater_is_better)
            requeue_interrupted(study)
            seed_study(study, space, config)
        record_references(study, config, loaded, task)

        # 5. Trials: in this process, or W worker processes sharing the study through its storage.
        deadline = time.time() + search.timeout if search.timeout else None
        if search.workers == 1:
            context = partial(make_context, config, task, loaded, space, storage, 0)
            work(context, search.n_trials, deadline, *stop_rules(config), lock, on_trial)
        else:
            run_worker_processes(config, study, deadline)

        # 6. The best trial; 7. its model into model/ (or retrained on train+validation).
        best, front = pick_best(study, config)
        installed = install_best_model(config.run_dir, best)
        refit = refit_best(config, best, loaded) if search.refit else None
        if installed is None and refit is None:
            logger.warning(
                "the best trial %d ran on another machine (worker %s): its model is in %s there; "
                "copy it, or set search.refit: true to train it here",
                best.number,
                best.user_attrs.get("worker"),
                best.user_attrs.get("model_dir"),
            )

    # 8. The summary.
    summary = build_tune_summary(config, task, study, best, front, refit, time.perf_counter() - started)
    summary.best["model"] = str(RunFolder(config.run_dir).model) if installed or refit else None
    return summary
