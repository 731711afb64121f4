"""The process `tune --workers W` starts W times: `python -m open_autoglm.search.worker_process RUN_DIR --index I`.

It reads the run's config and prepared data from the run folder the parent wrote, loads the study with this
worker's sampler (search/study.py) and runs the worker loop (search/worker.py); kept apart from the loop so that
the loop never imports what starts it.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

import optuna

from open_autoglm.config import Config, load_config
from open_autoglm.data.splits import read_written_splits
from open_autoglm.run_folder import RunFolder
from open_autoglm.search.space import build_space
from open_autoglm.search.storage import StudyLock, open_storage
from open_autoglm.search.study import make_context
from open_autoglm.search.trial import SearchContext, describe_trial
from open_autoglm.search.worker import stop_rules, work
from open_autoglm.tasks import TASKS

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process started by `tune --workers W`."""
    parser = argparse.ArgumentParser(prog="open_autoglm.search.worker_process")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=None)
    args = parser.parse_args(argv)

    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()  # a log file, not a terminal
    threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    config, build = context_for_worker(args.run_dir, args.index)
    logging.basicConfig(level=logging.INFO, format=f"[worker {args.index}] %(message)s")

    def log_trial(study: optuna.Study, number: int) -> None:
        logger.info(describe_trial(study.trials[number]))

    work(
        build,
        config.search.n_trials,
        args.deadline,
        *stop_rules(config),
        StudyLock(config.search.storage, args.run_dir, config.name),
        log_trial,
    )
    return 0


def context_for_worker(run_dir: Path, index: int) -> tuple[Config, Callable[[], SearchContext]]:
    """A worker process rebuilds its context from the run folder the parent prepared."""
    folder = RunFolder(run_dir)
    config = load_config(folder.config)
    loaded = read_written_splits(folder.data)
    task = TASKS.get(config.task)()

    def build() -> SearchContext:
        search = config.search
        storage = open_storage(search.storage, config.run_dir, search.heartbeat_seconds, search.grace_seconds)
        return make_context(config, task, loaded, build_space(config), storage, index)

    return config, build


if __name__ == "__main__":
    raise SystemExit(main())
