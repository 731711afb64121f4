"""Opening a study store while another process creates it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna

from open_autoglm.search.storage import open_storage


def _open_and_create(run_dir: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()  # all processes hit the fresh database at the same moment
    storage = open_storage(None, Path(run_dir))
    optuna.create_study(study_name="study", storage=storage, load_if_exists=True)


def test_processes_opening_a_fresh_database_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_open_and_create, args=(str(tmp_path), barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert [s.study_name for s in optuna.get_all_study_summaries(open_storage(None, tmp_path))] == ["study"]
