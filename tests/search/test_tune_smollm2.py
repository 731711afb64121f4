"""`tune` on a real chat model (SmolLM2-135M-Instruct): one epoch, four reports in it, and a hopeless trial stopped
before its epoch ends, with the reason recorded."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import SHARED_DATA
from optuna.trial import TrialState

from open_autoglm.config import validate_config
from open_autoglm.run_folder import RunFolder
from open_autoglm.search.job import run_tune

pytestmark = pytest.mark.slow


def test_a_hopeless_trial_is_stopped_inside_its_only_epoch(smollm2: Path, tmp_path: Path) -> None:
    config = validate_config(
        {
            "name": "tune",
            "output_dir": str(tmp_path),
            "task": "sft",
            "model": {"name": "smollm2", "precision": "fp32"},
            "data": {
                "train": str(SHARED_DATA / "alpaca_en_demo" / "alpaca_en_demo.json"),
                "max_rows": 24,
                "val_ratio": 0.25,
                "test_ratio": 0.0,
                "max_length": 64,
            },
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": 1, "lr": 4e-3, "batch_size": 3, "seed": 0},
            "search": {
                "n_trials": 4,
                "space": {"train.lr": [1e-6, 2e-3, 4e-3, 6e-3]},
                # the config as written (4e-3) runs first, then these; the last barely moves its weights
                "seeds": [{"train.lr": 6e-3}, {"train.lr": 2e-3}, {"train.lr": 1e-6}],
            },
            "quiet": True,
        }
    )
    summary = run_tune(config)
    storage = f"sqlite:///{RunFolder(config.run_dir).study_db}"
    trials = optuna.load_study(study_name="tune", storage=storage).trials
    assert [t.state for t in trials[:3]] == [TrialState.COMPLETE] * 3
    rows = max(trials[0].intermediate_values)  # one epoch: its last report is at the training rows
    assert sorted(trials[0].intermediate_values) == [round(k * rows / 4) for k in range(1, 5)]

    hopeless = trials[3]
    assert hopeless.params["train.lr"] == 1e-6
    assert hopeless.state == TrialState.PRUNED
    assert max(hopeless.intermediate_values) < rows  # stopped inside its only epoch
    assert hopeless.user_attrs["prune_reason"].startswith("learning curve: predicted final")
    assert summary["best"]["trial"] in {0, 1, 2}
