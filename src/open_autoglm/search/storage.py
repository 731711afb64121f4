"""Where a study lives, and how a killed worker's trial is found and run again.

SQLite in the run folder by default; `journal` for a journal file there (several local processes without
SQLite's locking); any SQLAlchemy URL for a shared RDB. Heartbeats (RDB and journal) let any worker fail a trial
whose worker died; on this host a dead worker is also recognised at once by its process id.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import optuna
import psutil
import sqlalchemy.exc
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 90
MAX_RETRIES = 2
INIT_ATTEMPTS = 5


def open_storage(storage: str | None, run_dir: Path) -> BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    if storage in (None, "sqlite"):
        url = f"sqlite:///{(run_dir / 'study.db').resolve()}"
        # several local workers wait for SQLite's lock rather than fail
        return _rdb_storage(url, retry, engine_kwargs={"connect_args": {"timeout": 120}})
    if storage == "journal":
        return JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    return _rdb_storage(storage, retry)


def _rdb_storage(url: str, retry: RetryHeartbeatStaleTrialCallback, **kwargs: Any) -> RDBStorage:
    """Open an RDB study store, riding out a race on a fresh database.

    Two processes opening a new database at once (a worker and a dashboard, two `tune`s) both create Optuna's
    tables and stamp its schema version; the loser gets an IntegrityError. Opening again then finds the tables.
    """

    def connect() -> RDBStorage:
        return RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=retry,
            **kwargs,
        )

    for attempt in range(INIT_ATTEMPTS - 1):
        try:
            return connect()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            time.sleep(0.2 * (attempt + 1))
    return connect()


def worker_id() -> str:
    """host:pid:start-time — a pid alone can be reused by a later process."""
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{int(me.create_time())}"


def worker_alive(worker: str) -> bool | None:
    """True/False for a worker on this host; None when it ran elsewhere (heartbeats decide there)."""
    host, pid, started = worker.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(started)
    except (psutil.NoSuchProcess, ValueError):
        return False


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail the running trials of dead workers on this host and queue each again with the same parameters."""
    recovered = []
    for trial in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):  # snapshots
        worker = trial.user_attrs.get("worker")
        if worker is None or worker_alive(worker) is not False:
            continue
        try:  # the reason first: a finished trial takes no more attributes
            study._storage.set_trial_user_attr(
                trial._trial_id, "fail_reason", f"interrupted: worker {worker} died"
            )
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        requeue(study, trial)  # from the snapshot taken before the reason was set
        recovered.append(trial.number)
    return recovered


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """The same parameters and attributes as a waiting trial (Optuna's own retry callback)."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, trial)


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were queued again (they do not count as finished)."""
    retried: set[int] = set()
    for trial in trials:
        retried.update(trial.system_attrs.get("retry_history", []))
    return retried


def count_trials(study: optuna.Study) -> dict[str, Any]:
    """complete / pruned / failed (interruptions that were retried not counted) / running / finished."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    counts = {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and t.number not in retried for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
    }
    counts["finished"] = counts["complete"] + counts["pruned"] + counts["failed"]
    return counts


def this_process_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
