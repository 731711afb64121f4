"""Opening a study store while another process creates it; failing the trials of workers that died."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from open_autoglm.search.storage import fail_silent_trials, open_storage
from open_autoglm.search.trial import _Heartbeat


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


def test_a_trial_whose_heartbeats_stop_is_failed_with_a_reason_and_queued_again(tmp_path: Path) -> None:
    storage = open_storage(None, tmp_path, heartbeat_seconds=1, grace_seconds=2)
    study = optuna.create_study(study_name="study", storage=storage)
    study = optuna.load_study(study_name="study", storage=storage)  # as workers see it (a cached storage)
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        trial.suggest_int("x", 0, 9)
        trial.set_user_attr("worker", f"host:{trial.number}:0")
    living = _Heartbeat(study, alive)
    _Heartbeat(study, dead).stop()  # one beat, then silence: its worker died
    try:
        time.sleep(3.5)
        assert fail_silent_trials(study) == [dead.number]
    finally:
        living.stop()
    trials = study.get_trials()
    assert trials[alive.number].state == TrialState.RUNNING
    assert trials[dead.number].state == TrialState.FAIL
    assert "host:1:0 stopped sending heartbeats" in trials[dead.number].user_attrs["fail_reason"]
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(queued) == 1 and queued[0].params == trials[dead.number].params
    assert fail_silent_trials(study) == []  # failed once, queued once
