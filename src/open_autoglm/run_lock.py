"""One job at a time in a run folder.

Two `autoglm tune` (or a `tune` and a `train`) on one run folder would prepare its data, write its config and
run its study at the same time and break each other's files. The job that starts second is refused at once,
with a message saying who holds the folder; more workers for a running study are added with search.workers
or a shared search.storage, not with a second `tune` on the same folder.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from open_autoglm.run_folder import RunFolder


class RunFolderBusy(RuntimeError):
    """Another job holds the run folder."""


@contextmanager
def hold_run_folder(run_dir: Path, job: str) -> Iterator[None]:
    """Hold `run_dir` for `job` (tune, train) while the block runs; refuse if another job holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = RunFolder(run_dir).lock
    holder = f"autoglm {job}, process {os.getpid()} on {socket.gethostname()}\n".encode()
    lock = FileLock(path, on_acquired=lambda fd: _write_holder(fd, holder))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise RunFolderBusy(
            f"run folder {run_dir} is in use by {_read_holder(path)} (lock {path}); wait for it to finish, "
            f"or use another --out or name. To add workers to its study, set search.workers, or run "
            f"`autoglm tune` in another run folder on the same search.storage"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _write_holder(fd: int, holder: bytes) -> None:
    # Who holds the lock, for the message of the job that is refused.
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder, 0)


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another autoglm job"
    except OSError:  # released (and removed) a moment ago
        return "another autoglm job"
