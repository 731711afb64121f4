"""Where a study lives, and how a killed worker's trial is found and run again.

SQLite in the run folder by default; `journal` for a journal file there (several local processes without
SQLite's locking); any SQLAlchemy URL for a shared RDB — PostgreSQL for workers on several machines. Heartbeats
(RDB and journal) let any worker fail a trial whose worker died; on this host a dead worker is also recognised
at once by its process id. `StudyLock` makes "check the count, then ask" one step for every worker of a study:
a file lock on one machine, a database advisory lock across machines.
"""

from __future__ import annotations

import copy
import hashlib
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import optuna
import psutil
import sqlalchemy
import sqlalchemy.exc
from filelock import FileLock
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.run_folder import RunFolder
from open_autoglm.search.optuna_private import heartbeat_storage, stale_trial_ids, storage_of, trial_id

HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 90
MAX_RETRIES = 2
INIT_ATTEMPTS = 5


def open_storage(
    storage: str | None,
    run_dir: Path,
    heartbeat_seconds: int = HEARTBEAT_SECONDS,
    grace_seconds: int = GRACE_SECONDS,
) -> BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    beats = {"heartbeat_interval": heartbeat_seconds, "grace_period": grace_seconds}
    if storage in (None, "sqlite"):
        url = f"sqlite:///{RunFolder(run_dir).study_db.resolve()}"
        # several local workers wait for SQLite's lock rather than fail, but never so long that a live worker
        # waiting for it is judged dead
        timeout = sqlite_busy_seconds(heartbeat_seconds, grace_seconds)
        return _rdb_storage(url, retry, engine_kwargs={"connect_args": {"timeout": timeout}}, **beats)
    if storage == "journal":
        return JournalStorage(JournalFileBackend(str(RunFolder(run_dir).study_journal)))
    return _rdb_storage(storage, retry, **beats)


def sqlite_busy_seconds(heartbeat_seconds: int, grace_seconds: int) -> int:
    """How long a SQLite write waits for the database lock: grace minus heartbeat.

    A heartbeat is written every `heartbeat_seconds` and may itself wait for the lock; if it waited longer than
    `grace_seconds - heartbeat_seconds`, another worker would see no heartbeat for the grace period, fail the
    trial of a live worker and run it again.
    """
    if heartbeat_seconds <= 0 or grace_seconds <= heartbeat_seconds:
        raise ValueError(
            f"search.grace_seconds ({grace_seconds}) must exceed search.heartbeat_seconds "
            f"({heartbeat_seconds}), both positive, or live trials would be failed as dead"
        )
    return grace_seconds - heartbeat_seconds


def _rdb_storage(url: str, retry: RetryHeartbeatStaleTrialCallback, **kwargs: Any) -> RDBStorage:
    """Open an RDB study store, riding out a race on a fresh database.

    Two processes opening a new database at once (a worker and a dashboard, two `tune`s) both create Optuna's
    tables and stamp its schema version; the loser gets an IntegrityError. Opening again then finds the tables.
    """

    def connect() -> RDBStorage:
        return RDBStorage(url, heartbeat_stale_trial_callback=retry, **kwargs)

    for attempt in range(INIT_ATTEMPTS - 1):
        try:
            return connect()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            time.sleep(0.2 * (attempt + 1))
    return connect()


class StudyLock:
    """One worker at a time between "how many trials are there" and "ask for one", for all workers of a study.

    PostgreSQL and MySQL: a session-level advisory lock named after the study, so workers on other machines
    wait too; SQLite and journal files live on one machine: a file lock beside them.
    """

    def __init__(self, storage: str | None, run_dir: Path, study_name: str) -> None:
        self._dialect = server_dialect(storage)
        self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        self._name = f"autoglm:{study_name}"[:64]
        self._file_lock = FileLock(str(RunFolder(run_dir).ask_lock)) if self._dialect is None else None
        self._engine = (
            sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
            if self._dialect is not None and storage is not None
            else None
        )
        self._connection: sqlalchemy.Connection | None = None

    def __enter__(self) -> StudyLock:
        if self._file_lock is not None:
            self._file_lock.acquire()
            return self
        assert self._engine is not None
        self._connection = self._engine.connect()
        if self._dialect == "postgresql":
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
        else:
            self._connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, -1)"), {"name": self._name})
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            return
        assert self._connection is not None
        try:
            if self._dialect == "postgresql":
                self._connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
            else:
                self._connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": self._name})
        finally:
            self._connection.close()  # closing the session frees its locks even if the unlock failed
            self._connection = None


def is_server_storage(storage: str | None) -> bool:
    """A database server that workers on several machines can share (PostgreSQL, MySQL)."""
    return server_dialect(storage) is not None


def server_dialect(storage: str | None) -> str | None:
    """postgresql / mysql for a database server URL; None for the stores that live in the run folder."""
    if storage in (None, "sqlite", "journal"):
        return None
    assert storage is not None
    dialect = sqlalchemy.engine.make_url(storage).get_backend_name()
    return dialect if dialect in ("postgresql", "mysql", "mariadb") else None


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
    storage = storage_of(study)
    recovered = []
    for trial in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):  # snapshots
        worker = trial.user_attrs.get("worker")
        if worker is None or worker_alive(worker) is not False:
            continue
        try:  # the reason first: a finished trial takes no more attributes
            storage.set_trial_user_attr(trial_id(trial), "fail_reason", f"interrupted: worker {worker} died")
            storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        requeue(study, trial)  # from the snapshot taken before the reason was set
        recovered.append(trial.number)
    return recovered


def recover_without_heartbeats(study: optuna.Study) -> list[int]:
    """Where the storage keeps no heartbeats (a journal file), find dead local workers by process id."""
    if heartbeat_storage(study) is not None:
        return []
    return recover_interrupted(study)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """The same parameters and attributes as a waiting trial (Optuna's own retry callback)."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, trial)


def fail_silent_trials(study: optuna.Study) -> list[int]:
    """Fail the trials whose heartbeat stopped (their worker died, on any machine) and queue each again.

    Optuna's `fail_stale_trials` does the same but leaves no reason on the trial; we write the reason first
    (a finished trial takes no more attributes).
    """
    storage = storage_of(study)
    failed = []
    for stale in stale_trial_ids(study):  # none where the storage keeps no heartbeats
        snapshot = copy.deepcopy(storage.get_trial(stale))  # a cached storage hands out its own object
        worker = snapshot.user_attrs.get("worker", "?")
        try:
            storage.set_trial_user_attr(
                stale, "fail_reason", f"interrupted: worker {worker} stopped sending heartbeats"
            )
            if not storage.set_trial_state_values(stale, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        requeue(study, snapshot)
        failed.append(snapshot.number)
    return failed


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
