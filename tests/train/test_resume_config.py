"""Resuming a run folder: a changed config that would change the result is refused (the data split never changes
under a run), harmless keys may change, `--no-resume` starts over; metrics.jsonl holds each (step, split, name)
once after a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from open_autoglm.cli import main
from open_autoglm.config import ConfigError, dump_config, load_config
from open_autoglm.run_config_check import HARMLESS_KEYS, check_resume_compatible
from open_autoglm.train.callbacks import keep_metrics_through, read_metrics
from open_autoglm.train.checkpoints import COMPLETE_MARKER


def _config_file(tmp_path: Path, data: Path, model: Path, **train: object) -> Path:
    config = {
        "name": "run",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(model)},
        "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora"},
        "train": {"max_steps": 8, "batch_size": 8, "lr": 1e-2, "logging_steps": 1, **train},
        "quiet": True,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _keys(metrics: Path) -> list[tuple]:
    return [(r["step"], r["split"], r["name"]) for r in read_metrics(metrics)]


def test_changed_result_keys_are_listed_and_harmless_keys_pass(tmp_path: Path) -> None:
    saved = load_config(None, ["train.lr=0.01", "train.seed=1", "quiet=false"])
    dump_config(saved, tmp_path / "config.yaml")

    harmless = load_config(None, ["train.lr=0.01", "train.seed=1", "quiet=true", "search.n_trials=99"])
    check_resume_compatible(tmp_path, harmless)  # passes: progress bars and the search's length only
    assert {"quiet", "search.n_trials", "search.timeout", "search.workers"} <= HARMLESS_KEYS

    changed = load_config(None, ["train.lr=0.02", "train.seed=7"])
    with pytest.raises(ConfigError) as refused:
        check_resume_compatible(tmp_path, changed)
    message = str(refused.value)
    assert "train.lr: 0.01 → 0.02" in message and "train.seed: 1 → 7" in message
    assert "--no-resume" in message and "--out" in message
    assert "quiet" not in message.split("result:")[1]

    with pytest.raises(ConfigError, match="--fresh"):
        check_resume_compatible(tmp_path, changed, restart_flag="--fresh")
    check_resume_compatible(tmp_path / "elsewhere", changed)  # no config.yaml: a new run folder


def test_an_unreadable_saved_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("train:\n  lr: [0.01\n")  # torn mid-write by an older version
    with pytest.raises(ConfigError) as refused:
        check_resume_compatible(tmp_path, load_config(None))
    assert str(tmp_path / "config.yaml") in str(refused.value) and "--no-resume" in str(refused.value)


@pytest.mark.slow
def test_a_finished_run_refuses_a_changed_config_and_keeps_its_files(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_file(tmp_path, topic_file, tiny_encoder)
    run = tmp_path / "runs" / "run"
    assert main(["train", "-c", str(config)]) == 0
    kept = {p: p.read_bytes() for p in [run / "config.yaml", run / "summary.json", *run.glob("data/*.jsonl")]}

    changed = ["--set", "train.lr=0.05", "--set", "train.seed=7"]
    assert main(["train", "-c", str(config), *changed]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "train.lr: 0.01 → 0.05" in err and "train.seed: 42 → 7" in err and "--no-resume" in err
    assert {p: p.read_bytes() for p in kept} == kept, "a refused resume must not touch the run folder"

    # the same config with only harmless keys changed resumes (nothing left to train)
    assert (
        main(["train", "-c", str(config), "--set", "train.logging_steps=2", "--set", "data.workers=1"]) == 0
    )
    assert json.loads((run / "summary.json").read_text())["compute"]["train_steps"] == 8

    # the data split never changes under the run: edited input bytes are refused too
    topic_file.write_text("".join(topic_file.read_text().splitlines(keepends=True)[:-1]))
    assert main(["train", "-c", str(config)]) == 2
    assert "input data changed" in capsys.readouterr().err.replace("\n", " ")

    assert main(["train", "-c", str(config), *changed, "--no-resume"]) == 0
    assert load_config(run / "config.yaml").train.seed == 7


def test_metrics_hold_each_step_split_and_name_once_after_a_resume(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    config = _config_file(tmp_path, topic_file, tiny_encoder, save_every=4, eval_every=2)
    run = tmp_path / "runs" / "run"
    metrics = run / "trials" / "0" / "metrics.jsonl"
    assert main(["train", "-c", str(config)]) == 0
    uninterrupted = read_metrics(metrics)
    assert len(set(_keys(metrics))) == len(uninterrupted)

    # As if killed while checkpoint-8 was being written, with the last row of the file cut short: the run
    # resumes from checkpoint-4 and logs steps 5..8 and the final evaluation again.
    (run / "trials" / "0" / "checkpoint" / "checkpoint-8" / COMPLETE_MARKER).unlink()
    (run / "summary.json").unlink()
    with open(metrics, "a") as handle:
        handle.write('{"step": 8, "epoch": 1.0, "spl')
    assert main(["train", "-c", str(config)]) == 0

    resumed = read_metrics(metrics)
    assert json.loads((run / "summary.json").read_text())["resumed_from"].endswith("checkpoint-4")
    assert sorted(_keys(metrics)) == sorted((r["step"], r["split"], r["name"]) for r in uninterrupted)
    assert all(json.loads(line) for line in metrics.read_text().splitlines())  # no torn row is left
    before = {(r["step"], r["split"], r["name"]): r["value"] for r in uninterrupted}
    for row in resumed:
        assert row["value"] == pytest.approx(
            before[(row["step"], row["split"], row["name"])], rel=1e-3, abs=1e-4
        )


def test_keep_metrics_through_drops_later_rows_and_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "split": "train", "name": "loss", "value": 1.0 / s} for s in (1, 2, 3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "sp')
    keep_metrics_through(path, 2)
    assert read_metrics(path) == rows[:2]
    keep_metrics_through(tmp_path / "absent.jsonl", 2)
    assert not (tmp_path / "absent.jsonl").exists()
