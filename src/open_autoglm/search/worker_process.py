"""The process `tune --workers W` starts W times: `python -m open_autoglm.search.worker_process RUN_DIR --index I`.

It reads the run's config from the run folder, rebuilds the search context there (search/job.py) and runs the
worker loop (search/worker.py); kept apart from both so that the loop never imports the job that starts it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import optuna

from open_autoglm.search.job import context_for_worker, stop_rules
from open_autoglm.search.storage import StudyLock
from open_autoglm.search.trial import describe_trial
from open_autoglm.search.worker import work

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


if __name__ == "__main__":
    raise SystemExit(main())
