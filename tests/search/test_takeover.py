"""A live worker judged dead: another worker fails its trial and runs it again; the first one, on waking, drops
its copy and goes on. And SQLite's wait for its lock stays below the grace period that judges workers dead."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from transformers import TrainerCallback

from open_autoglm.config import validate_config
from open_autoglm.search import trial as trial_module
from open_autoglm.search.job import run_tune
from open_autoglm.search.storage import open_storage, requeue


class TakeOverOnce(TrainerCallback):
    """At the trial's first evaluation (the worker is 'paused' here), do from a second storage handle what
    another worker's `fail_silent_trials` does to a trial whose heartbeats stopped: fail it and queue it again."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.taken: list[int] = []

    def on_evaluate(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.taken:
            return
        other = optuna.load_study(study_name="study", storage=open_storage(None, self.run_dir))
        (running,) = other.get_trials(states=(TrialState.RUNNING,))
        snapshot = copy.deepcopy(running)
        other._storage.set_trial_user_attr(running._trial_id, "fail_reason", "interrupted: no heartbeats")
        other._storage.set_trial_state_values(running._trial_id, state=TrialState.FAIL)
        requeue(other, snapshot)
        self.taken.append(running.number)


@pytest.mark.slow
def test_a_worker_whose_trial_was_taken_over_drops_it_and_goes_on(
    tmp_path: Path,
    tiny_encoder: Path,
    topic_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = validate_config(
        {
            "name": "study",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_encoder)},
            "data": {"train": str(topic_file), "max_rows": 60, "max_length": 16, "val_ratio": 0.2},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16},
            "search": {
                "n_trials": 2,
                "sampler": "random",
                "pruner": "median",  # the trial reports each evaluation: the report is what fails on waking
                "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
                "heartbeat_seconds": 1,
                "grace_seconds": 3,
            },
            "quiet": True,
        },
        "test",
    )
    take_over = TakeOverOnce(config.run_dir)
    real_fit = trial_module.fit

    def fit_paused_once(*args, callbacks=(), **kwargs):  # type: ignore[no-untyped-def]
        return real_fit(*args, callbacks=[take_over, *callbacks], **kwargs)

    monkeypatch.setattr(trial_module, "fit", fit_paused_once)
    with caplog.at_level(logging.INFO, logger="open_autoglm.search.trial"):
        summary = run_tune(config)  # before the fix: UpdateFinishedTrialError out of the trial's `except`

    assert take_over.taken == [0]
    trials = optuna.load_study(study_name="study", storage=open_storage(None, config.run_dir)).trials
    dropped, retry = trials[0], trials[1]
    assert (
        dropped.state == TrialState.FAIL and dropped.user_attrs["fail_reason"] == "interrupted: no heartbeats"
    )
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == dropped.params
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE, TrialState.COMPLETE]  # and went on
    assert summary["trials"] == {"complete": 2, "pruned": 0, "failed": 0, "finished": 2}
    assert not (config.run_dir / "trials" / "0" / "error.txt").exists()  # not this trial's own failure
    lines = [r.getMessage() for r in caplog.records if "taken over" in r.getMessage()]
    assert lines == [
        "trial 0 was taken over by another worker (interrupted: no heartbeats); dropping it and going on"
    ]


def busy_timeout_ms(storage: optuna.storages.RDBStorage) -> int:
    with storage.engine.connect() as connection:
        return connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()


def test_sqlite_waits_for_its_lock_less_than_the_grace_period(tmp_path: Path) -> None:
    # a heartbeat that waits the whole busy timeout must still land within the grace period
    assert busy_timeout_ms(open_storage(None, tmp_path, heartbeat_seconds=1, grace_seconds=3)) == 2000
    assert busy_timeout_ms(open_storage(None, tmp_path)) == (90 - 20) * 1000  # the defaults
    with pytest.raises(ValueError, match=r"grace_seconds \(3\) must exceed search.heartbeat_seconds \(3\)"):
        open_storage(None, tmp_path, heartbeat_seconds=3, grace_seconds=3)
