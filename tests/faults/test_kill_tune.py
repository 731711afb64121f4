"""Kill anywhere: `autoglm tune` (1 and 2 workers) SIGKILLed at points read from its trial counters, run again,
and compared with an uninterrupted run: no finished trial redone, the study reaches n_trials, no parameters
repeated, summary.json and the best model complete."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.config import validate_config
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.models import load_finetuned
from open_autoglm.search.job import run_tune
from open_autoglm.search.storage import open_storage

pytestmark = pytest.mark.slow

N_TRIALS = 3
WAIT_SECONDS = 240  # the most any one kill point may take to come on a loaded machine


def raw_config(out: Path, model: Path, data: Path) -> dict[str, Any]:
    return {
        "name": "study",
        "output_dir": str(out),
        "model": {"name": str(model)},
        "data": {"train": str(data), "max_rows": 60, "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16},
        "search": {
            "n_trials": N_TRIALS,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "method.r": [2, 4, 8],
                "train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            },
        },
        "quiet": True,
    }


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "topics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(160, seed=3)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path, data_file: Path) -> Path:
    """The uninterrupted run (in this process, one thread as the killed runs' workers use)."""
    out = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_tune(validate_config(raw_config(out, tiny_encoder, data_file), "reference"))
    finally:
        torch.set_num_threads(threads)
    return out / "study"


def launch(config: Path, workers: int) -> subprocess.Popen:
    """`autoglm tune` in its own process group, so that a kill takes its worker processes too."""
    log = open(config.parent / "tune.log", "ab")  # noqa: SIM115 — the child holds it; closed with the test
    return subprocess.Popen(
        [sys.executable, "-m", "open_autoglm", "tune", "-c", str(config), "-q", "--workers", str(workers)],
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Study:
    """The study of a run folder as another process sees it, read through one storage handle."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._storage: optuna.storages.BaseStorage | None = None

    def trials(self) -> list[FrozenTrial]:
        if self._storage is None:
            if not (self.run_dir / "study.db").exists():  # tune creates it once the data is ready
                return []
            self._storage = open_storage(None, self.run_dir)
        try:
            return optuna.load_study(study_name="study", storage=self._storage).get_trials()
        except KeyError:  # the database is there, the study not yet
            return []

    def count(self, state: TrialState) -> int:
        return sum(t.state == state for t in self.trials())

    def training(self) -> list[int]:
        """Running trials past sampling: their folder trials/<number>/ is there."""
        running = (t.number for t in self.trials() if t.state == TrialState.RUNNING)
        return [n for n in running if (self.run_dir / "trials" / str(n)).is_dir()]


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], log: Path) -> None:
    """SIGKILL the whole job as soon as `ready()` holds; a job that ended first is left as it ended."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"tune ended (exit {process.returncode}) before the kill point:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"tune did not reach the kill point in {WAIT_SECONDS} s:\n{log.read_text()}")
        time.sleep(0.05)  # polls the study's counters
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=WAIT_SECONDS) == 0, log.read_text()


def snapshot(study: Study) -> tuple[dict[int, FrozenTrial], list[FrozenTrial], dict[int, int]]:
    """After a kill: the complete trials, the ones cut off, and when each complete trial's metrics were written."""
    trials = study.trials()
    done = {t.number: t for t in trials if t.state == TrialState.COMPLETE}
    cut = [t for t in trials if t.state == TrialState.RUNNING]
    stamps = {n: (study.run_dir / "trials" / str(n) / "metrics.jsonl").stat().st_mtime_ns for n in done}
    return done, cut, stamps


def check_resumed(
    study: Study,
    killed: list[tuple[dict[int, FrozenTrial], list[FrozenTrial], dict[int, int]]],
    reference: Path,
) -> list[FrozenTrial]:
    """What every kill point must leave once the job is run again to its end."""
    after = study.trials()
    complete = [t for t in after if t.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS  # the study reached n_trials, no more
    for done, cut, stamps in killed:
        for number, trial in done.items():  # finished trials kept, not redone
            assert after[number].state == TrialState.COMPLETE and after[number].values == trial.values
            metrics = study.run_dir / "trials" / str(number) / "metrics.jsonl"
            assert metrics.stat().st_mtime_ns == stamps[number]
        for trial in cut:  # cut-off trials failed as interrupted and run again once, same parameters
            assert after[trial.number].state == TrialState.FAIL
            assert "interrupted" in after[trial.number].user_attrs["fail_reason"]
            retries = [t for t in after if t.system_attrs.get("failed_trial") == trial.number]
            assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
            assert retries[0].params == trial.params or not trial.params  # cut before it sampled: drawn anew
    drawn = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(drawn)) == len(drawn), drawn  # no parameters repeated across the restarts

    summary = json.loads((study.run_dir / "summary.json").read_text(encoding="utf-8"))
    expected = json.loads((reference / "summary.json").read_text(encoding="utf-8"))
    assert summary.keys() == expected.keys() and summary["best"].keys() == expected["best"].keys()
    assert summary["trials"] == expected["trials"] == {"complete": 3, "pruned": 0, "failed": 0, "finished": 3}
    assert summary["best"]["values"] == [max(t.value for t in complete)]
    model = study.run_dir / "model"
    assert sorted(p.name for p in model.iterdir()) == sorted(p.name for p in (reference / "model").iterdir())
    load_finetuned(model)  # complete enough to load
    return after


def write_config(tmp_path: Path, model: Path, data: Path) -> tuple[Path, Path]:
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path / "runs", model, data)), encoding="utf-8")
    return path, tmp_path / "tune.log"


def test_one_worker_killed_mid_trial_and_after_its_last_trial(
    tmp_path: Path, tiny_encoder: Path, data_file: Path, reference: Path
) -> None:
    config, log = write_config(tmp_path, tiny_encoder, data_file)
    study = Study(tmp_path / "runs" / "study")
    killed = []

    # 1. mid-trial: trial 0 (the config as written) done, trial 1 training
    process = launch(config, workers=1)
    kill_when(process, lambda: any(n >= 1 for n in study.training()), log)
    killed.append(snapshot(study))
    # 2. every trial done, the best model and summary.json perhaps not yet written
    process = launch(config, workers=1)
    kill_when(process, lambda: study.count(TrialState.COMPLETE) >= N_TRIALS, log)
    killed.append(snapshot(study))
    finish(launch(config, workers=1), log)

    after = check_resumed(study, killed, reference)
    expected = Study(reference).trials()
    for number in killed[0][0]:  # what ran before the first kill is what the uninterrupted run did
        assert after[number].params == expected[number].params
        assert after[number].value == pytest.approx(expected[number].value, abs=1e-6)


def test_two_workers_killed_while_training(
    tmp_path: Path, tiny_encoder: Path, data_file: Path, reference: Path
) -> None:
    config, log = write_config(tmp_path, tiny_encoder, data_file)
    study = Study(tmp_path / "runs" / "study")

    process = launch(config, workers=2)
    kill_when(
        process,
        lambda: study.count(TrialState.COMPLETE) >= 1 and bool(study.training()),
        log,
    )
    killed = [snapshot(study)]
    finish(launch(config, workers=2), log)

    after = check_resumed(study, killed, reference)
    # the config as written (trial 0, or its retry when the kill cut it) trains alike in any worker
    (default,) = (
        t for t in after if t.user_attrs.get("role") == "default" and t.state == TrialState.COMPLETE
    )
    assert default.value == pytest.approx(Study(reference).trials()[0].value, abs=1e-6)
    assert len({t.user_attrs["worker"] for t in after}) >= 2  # trials ran in several worker processes
    numbers = {str(t.number) for t in after}
    assert {p.name for p in (study.run_dir / "trials").iterdir()} <= numbers  # one folder per trial number
    assert sorted(p.name for p in study.run_dir.glob("worker-*.log")) == ["worker-0.log", "worker-1.log"]
