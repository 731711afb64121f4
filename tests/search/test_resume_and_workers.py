"""`autoglm tune` as a user runs it: killed with SIGKILL and run again; two worker processes on one study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from open_autoglm.search.storage import open_storage

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, model: Path, data: Path, n_trials: int, epochs: int) -> Path:
    config = {
        "name": "study",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(model)},
        "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": epochs, "lr": 5e-3, "batch_size": 8},
        "search": {
            "n_trials": n_trials,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "method.r": [2, 4, 8],
                "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            },
        },
    }
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def tune(config: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "open_autoglm", "tune", "-c", str(config), "-q", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(None, run_dir)  # the product's own way in, safe beside a process creating it
    try:
        return optuna.load_study(study_name="study", storage=storage).trials
    except KeyError:  # not created yet
        return []


def test_killed_tune_resumes_without_redoing_finished_trials(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    config = write_config(tmp_path, tiny_encoder, topic_file, n_trials=5, epochs=6)
    run_dir = tmp_path / "runs" / "study"
    process = tune(config)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until two trials are done and a third is mid-training
        seen = trials(run_dir) if (run_dir / "study.db").exists() else []
        done = [t for t in seen if t.state == TrialState.COMPLETE]
        running = [t for t in seen if t.state == TrialState.RUNNING]
        if (
            len(done) >= 2
            and running
            and (run_dir / "trials" / str(running[0].number) / "metrics.jsonl").exists()
        ):
            break
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        time.sleep(0.3)
    else:
        pytest.fail("tune did not reach its third trial in time")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    before = {t.number: t for t in trials(run_dir) if t.state == TrialState.COMPLETE}
    killed = [t for t in trials(run_dir) if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    stamps = {n: (run_dir / "trials" / str(n) / "metrics.jsonl").stat().st_mtime_ns for n in before}

    again = tune(config)
    output = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, output

    after = trials(run_dir)
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 5  # what was asked, no more
    for number, trial in before.items():  # finished trials kept, not redone
        assert after[number].state == TrialState.COMPLETE and after[number].value == trial.value
        assert (run_dir / "trials" / str(number) / "metrics.jsonl").stat().st_mtime_ns == stamps[number]
    interrupted = after[killed[0].number]
    assert interrupted.state == TrialState.FAIL and "interrupted" in interrupted.user_attrs["fail_reason"]
    retry = [t for t in after if t.system_attrs.get("failed_trial") == interrupted.number]
    assert len(retry) == 1 and retry[0].params == interrupted.params and retry[0].state == TrialState.COMPLETE
    summary = json.loads((run_dir / "summary.json").read_text())
    best = max((t for t in after if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert summary["best"]["trial"] == best.number
    assert summary["trials"] == {"complete": 5, "pruned": 0, "failed": 0, "finished": 5}


def test_two_workers_share_one_study(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    config = write_config(tmp_path, tiny_encoder, topic_file, n_trials=4, epochs=2)
    run_dir = tmp_path / "runs" / "study"
    process = tune(config, "--workers", "2")
    output = process.communicate(timeout=600)[0].decode()
    assert process.returncode == 0, output

    seen = trials(run_dir)
    assert [t.number for t in seen] == [0, 1, 2, 3]  # exactly the asked trials, numbers unique
    assert all(t.state == TrialState.COMPLETE for t in seen)
    workers = {t.user_attrs["worker"] for t in seen}
    assert len(workers) == 2  # both processes ran trials
    assert sorted(p.name for p in (run_dir / "trials").iterdir()) == ["0", "1", "2", "3"]
    logs = sorted(p.name for p in run_dir.glob("worker-*.log"))
    assert logs == ["worker-0.log", "worker-1.log"]
    assert json.loads((run_dir / "summary.json").read_text())["trials"]["complete"] == 4
