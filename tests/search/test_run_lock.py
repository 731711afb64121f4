"""One job at a time in a run folder: a second `tune` (or a `train`) on the folder a `tune` works in is refused
with a message naming the holder, and touches nothing there."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from open_autoglm.cli import main
from open_autoglm.config import load_config
from open_autoglm.run_lock import RunFolderBusy, hold_run_folder
from open_autoglm.search.job import run_tune


def test_a_second_job_on_a_run_folder_that_a_tune_holds_is_refused(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "study",
                "output_dir": str(tmp_path / "runs"),
                "model": {"name": str(tiny_encoder)},
                "data": {"train": str(topic_file), "max_rows": 60, "max_length": 16, "val_ratio": 0.2},
                "method": {"name": "lora", "r": 4},
                "train": {"epochs": 1, "batch_size": 16},
                "search": {"n_trials": 1, "pruner": "none"},
                "quiet": True,
            }
        )
    )
    config = load_config(path)
    codes: list[int] = []

    def start_others(study: optuna.Study, number: int) -> None:  # while the tune holds the folder
        codes.append(main(["tune", "-c", str(path), "-q", "--n-trials", "5"]))
        codes.append(main(["train", "-c", str(path), "-q"]))

    run_tune(config, on_trial=start_others)

    assert codes == [1, 1]
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert err.count(f"run folder {config.run_dir} is in use by autoglm tune, process") == 2
    assert load_config(config.run_dir / "config.yaml").search.n_trials == 1  # the other tune wrote nothing
    assert not (config.run_dir / "model" / "checkpoint").exists()
    assert sorted(p.name for p in (config.run_dir / "trials").iterdir()) == [
        "0"
    ]  # train's would be trials/0 too


def test_the_run_folder_is_free_again_once_its_job_ends(tmp_path: Path) -> None:
    with hold_run_folder(tmp_path, "tune"), pytest.raises(RunFolderBusy, match="in use by autoglm tune"):
        hold_run_folder(tmp_path, "train").__enter__()
    with hold_run_folder(tmp_path, "train"):  # released: the next job takes it
        assert "autoglm train" in (tmp_path / ".run.lock").read_text()
