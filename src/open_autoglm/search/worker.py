"""A search worker: ask, run, tell — until the study has its trials, stops improving, or runs out of time.

With `search.workers: 1` the loop runs in the `tune` process itself; `tune --workers W` starts W of these as
processes (`run_worker_processes`: `python -m open_autoglm.search.worker_process RUN_DIR ...`), each with its
share of the CPU threads (and its own GPU on a GPU machine); they share the study through its storage.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import optuna
import torch
from optuna.trial import TrialState

from open_autoglm.config import Config
from open_autoglm.run_folder import RunFolder
from open_autoglm.search.storage import (
    count_trials,
    fail_silent_trials,
    recover_without_heartbeats,
    this_process_threads,
)

logger = logging.getLogger(__name__)
WAIT_SECONDS = 1.0  # how often a worker with nothing to start looks again


def work(
    context_factory: Callable[[], object],
    n_trials: int,
    deadline: float | None,
    patience: int | None,
    terminator: bool,
    lock: AbstractContextManager,
    on_trial: Callable[[optuna.Study, int], None] | None = None,
) -> None:
    """Run trials until `should_stop`.

    The check and the ask are one step under the study's lock, so its workers — processes here or on other
    machines — never start more than the asked number of trials between them. Trials whose worker died are
    failed (no heartbeat) and queued again first; while the last trials run elsewhere this worker waits, so that
    it can take over one whose worker dies.
    """
    from open_autoglm.search.trial import SearchContext, run_trial

    ctx = context_factory()
    assert isinstance(ctx, SearchContext)
    while True:
        with lock:
            if dead := fail_silent_trials(ctx.study) or recover_without_heartbeats(ctx.study):
                logger.info("re-queued trials %s: their workers died", dead)
            reason = should_stop(ctx.study, n_trials, deadline, patience, terminator)
            waiting = reason is None and running_elsewhere(ctx.study, n_trials)
            trial = ctx.study.ask() if reason is None and not waiting else None
        if reason:
            logger.info("worker stops: %s", reason)
            return
        if trial is None:
            time.sleep(WAIT_SECONDS)
            continue
        run_trial(ctx, trial)
        if on_trial is not None:
            on_trial(ctx.study, trial.number)


def stop_rules(config: Config) -> tuple[int | None, bool]:
    """`work`'s patience and terminator, as the config sets them."""
    return config.search.patience, config.search.terminator


def should_stop(
    study: optuna.Study, n_trials: int, deadline: float | None, patience: int | None, terminator: bool
) -> str | None:
    """Why no new trial should start, or None."""
    counts = count_trials(study)
    if counts["finished"] >= n_trials:
        return f"{counts['finished']} trials finished, {n_trials} asked"
    if deadline is not None and time.time() >= deadline:
        return "timeout reached"
    if patience is not None and (since := trials_since_best(study)) is not None and since >= patience:
        return f"no improvement in the last {since} finished trials (patience {patience})"
    if terminator and len(study.directions) == 1 and counts["complete"] >= 5:
        from optuna.terminator import Terminator

        if Terminator().should_terminate(study):
            return "Optuna's terminator: further improvement is unlikely"
    return None


def running_elsewhere(study: optuna.Study, n_trials: int) -> bool:
    """The asked trials are all finished or running, with nothing queued: wait for the running ones.

    Waiting (rather than stopping) lets this worker re-run a trial whose worker dies before it finishes.
    """
    counts = count_trials(study)
    queued = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return counts["finished"] + counts["running"] >= n_trials and not queued


def trials_since_best(study: optuna.Study) -> int | None:
    """Finished trials after the best one (single value), or None before any trial completed."""
    if len(study.directions) != 1:
        return None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial.number
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.number > best for t in study.get_trials(deepcopy=False, states=finished))


def split_threads(workers: int, cores: int) -> int:
    """Threads per worker so that W workers use the cores without oversubscribing them."""
    return max(1, cores // workers)


def run_worker_processes(config: Config, study: optuna.Study, deadline: float | None) -> None:
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
