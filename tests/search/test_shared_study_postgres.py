"""Two `autoglm tune`s — two machines, each with its own run folder — share one study in a real PostgreSQL
server; one is killed mid-trial, its trial is failed by missed heartbeats and re-run by the other, and the study
ends with exactly the asked trials."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from postgres_server import postgres_bin, running_postgres
from test_resume_and_workers import tune, write_config

from open_autoglm.search.storage import StudyLock, open_storage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = postgres_bin()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bin_dir = None
    if bin_dir is None:
        reason = (
            "PostgreSQL or psycopg is not installed and could not be (`make postgres`; pip install psycopg)"
        )
        print(reason)
        pytest.skip(reason)
    with running_postgres(bin_dir) as url:
        yield url


def test_the_lock_holds_off_a_second_worker_until_released(postgres_url: str, tmp_path: Path) -> None:
    events: list[str] = []

    def hold(name: str, seconds: float) -> None:
        with StudyLock(postgres_url, tmp_path, "locked-study"):
            events.append(f"{name} in")
            time.sleep(seconds)
            events.append(f"{name} out")

    first = threading.Thread(target=hold, args=("a", 0.6))
    first.start()
    time.sleep(0.2)
    second = threading.Thread(target=hold, args=("b", 0.0))
    second.start()
    first.join()
    second.join()
    assert events == ["a in", "a out", "b in", "b out"]  # b waited on another database session's lock


def shared_trials(storage: BaseStorage) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="study", storage=storage).trials
    except KeyError:  # not created yet
        return []


def test_a_killed_machines_trial_is_rerun_by_the_other(
    postgres_url: str, tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    config = write_config(tmp_path, tiny_encoder, topic_file, n_trials=5, epochs=6)
    beats = ["--set", "search.heartbeat_seconds=1", "--set", "search.grace_seconds=3"]
    run_a, run_b = tmp_path / "a" / "study", tmp_path / "b" / "study"  # the study is named after the run
    machine_a = tune(config, "--storage", postgres_url, "--out", str(run_a), *beats)
    machine_b = tune(config, "--storage", postgres_url, "--out", str(run_b), *beats)

    storage = open_storage(postgres_url, tmp_path)  # one connection pool for all the looking
    deadline = time.time() + 300
    victim = None
    while victim is None and time.time() < deadline:  # wait for a trial that machine A is training
        for trial in shared_trials(storage):
            # a trial is RUNNING a moment before its worker is recorded: "" until then
            worker = trial.user_attrs.get("worker", "")
            running_in_a = trial.state == TrialState.RUNNING and worker.split(":")[1:2] == [
                str(machine_a.pid)
            ]
            if running_in_a and (run_a / "trials" / str(trial.number) / "metrics.jsonl").exists():
                victim = trial
        assert machine_a.poll() is None, machine_a.stdout.read().decode() if machine_a.stdout else ""
        time.sleep(0.3)
    assert victim is not None, "machine A never trained a trial"
    os.killpg(machine_a.pid, signal.SIGKILL)
    machine_a.wait()

    output = machine_b.communicate(timeout=600)[0].decode()
    assert machine_b.returncode == 0, output

    seen = shared_trials(storage)
    story = "\n".join(f"{t.number} {t.state.name} {t.params} {t.user_attrs} {t.system_attrs}" for t in seen)
    complete = [t for t in seen if t.state == TrialState.COMPLETE]
    assert len(complete) == 5, story  # exactly the asked trials, none lost to the dead machine, none extra
    killed = seen[victim.number]
    assert killed.state == TrialState.FAIL and "heartbeats" in killed.user_attrs["fail_reason"], story
    retry = [t for t in seen if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1, story
    assert retry[0].state == TrialState.COMPLETE and retry[0].params == victim.params
    assert retry[0].user_attrs["worker"].split(":")[1] == str(machine_b.pid)  # the survivor re-ran it
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 5  # no parameter set ran twice
    seeded = [
        t for t in seen if t.user_attrs.get("role") == "default" and "failed_trial" not in t.system_attrs
    ]
    assert len(seeded) == 1, story  # queued once by the two machines (a retry keeps the role it re-runs)

    summary = json.loads((run_b / "summary.json").read_text())
    assert summary["trials"] == {"complete": 5, "pruned": 0, "failed": 0, "finished": 5}
    best = max(complete, key=lambda t: t.value)
    assert summary["best"]["trial"] == best.number
    assert summary["best"]["model"] and (run_b / "model" / "autoglm.json").exists()
