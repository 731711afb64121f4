"""`run_tune` end to end on a tiny local encoder: the study, the run folder, failures, several objectives."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from open_autoglm.config import validate_config
from open_autoglm.models import load_finetuned
from open_autoglm.search.job import run_tune
from open_autoglm.search.objectives import pareto_front, weighted_score
from open_autoglm.train.trainer import AutoglmTrainer

SMALL_SPACE = {
    "method.name": ["lora", "full"],
    "method.r": {"type": "categorical", "choices": [2, 4], "if": {"method.name": "lora"}},
    "lr_lora": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-3,
        "high": 1e-2,
        "log": True,
        "if": {"method.name": "lora"},
    },
    "lr_full": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-4,
        "high": 1e-3,
        "log": True,
        "if": {"method.name": "full"},
    },
}


def tune_config(tmp_path: Path, model: Path, data: Path, **search) -> object:
    return validate_config(
        {
            "name": "study",
            "output_dir": str(tmp_path),
            "model": {"name": str(model)},
            "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 2, "lr": 5e-3, "batch_size": 16, "logging_steps": 5},
            "search": {"n_trials": 4, "space": SMALL_SPACE, "startup_trials": 2, **search},
            "quiet": True,
        },
        "test",
    )


def load_study(run_dir: Path, name: str = "study") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir / 'study.db'}")


def test_tune_leaves_study_best_model_and_summary(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from open_autoglm.search import job, worker_process

    opened = []  # the study storage is opened once in a one-worker search (the worker shares the job's)
    for module in (job, worker_process):
        real = module.open_storage
        monkeypatch.setattr(
            module, "open_storage", lambda *a, real=real, **k: opened.append(a) or real(*a, **k)
        )
    config = tune_config(tmp_path, tiny_encoder, topic_file)
    summary = run_tune(config)
    run_dir = config.run_dir
    assert len(opened) == 1

    study = load_study(run_dir)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 4 and summary["trials"]["finished"] == 4
    default = study.trials[0]
    assert default.user_attrs["role"] == "default" and default.params["lr_lora"] == 5e-3  # the config first
    assert default.state == TrialState.COMPLETE  # never pruned
    assert summary["default"]["trial"] == 0 and "accuracy" in summary["default"]["metrics"]
    assert "accuracy" in summary["baseline"]["metrics"]  # the untuned model

    best = study.best_trial
    assert summary["best"]["trial"] == best.number
    assert summary["best"]["validation"]["accuracy"] == pytest.approx(best.value)
    assert summary["best"]["test"] is not None
    assert summary["compute"]["train_steps"] > 0 and summary["compute"]["epochs"] > 0

    # The best model is the one the best trial trained: same validation predictions after reloading.
    model, _, meta = load_finetuned(run_dir / "model")
    assert meta["method"] == best.user_attrs["overrides"].get("method.name", "lora")
    # other trials' models are cleaned up
    assert list((run_dir / "trials").glob("*/model")) == [run_dir / "trials" / str(best.number) / "model"]
    for trial in finished:
        params = json.loads((run_dir / "trials" / str(trial.number) / "params.json").read_text())
        assert params["overrides"] == trial.user_attrs.get("overrides", {})
        rows = [
            json.loads(line) for line in (run_dir / "trials" / str(trial.number) / "metrics.jsonl").open()
        ]
        assert {"validation", "train"} <= {r["split"] for r in rows}


def test_failed_trials_are_recorded_and_the_study_finishes(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AutoglmTrainer.compute_loss

    def nan_at_high_lr(self, model, inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
        loss = original(self, model, inputs, *args, **kwargs)
        if self.args.learning_rate > 8e-3:  # a learning rate that "diverges"
            loss = loss * torch.tensor(float("nan"))
        return loss

    monkeypatch.setattr(AutoglmTrainer, "compute_loss", nan_at_high_lr)
    space = {
        "model.precision": ["fp32", "fp16"],
        "train.lr": {"type": "categorical", "choices": [5e-3, 9e-3]},
    }
    config = tune_config(
        tmp_path,
        tiny_encoder,
        topic_file,
        space=space,
        seed_default=False,
        pruner="none",
        sampler="random",
        n_trials=6,
        seeds=[
            {"model.precision": "fp32", "train.lr": 9e-3},  # NaN
            {"model.precision": "fp16", "train.lr": 5e-3},  # fp16 training needs a GPU: impossible here
            {"model.precision": "fp32", "train.lr": 5e-3},  # fine
        ],
    )
    summary = run_tune(config)
    study = load_study(config.run_dir)
    first = study.trials[:3]
    assert [t.state for t in first] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert "NonFiniteLossError" in first[0].user_attrs["fail_reason"]
    assert "model.precision=fp16 needs a GPU" in first[1].user_attrs["fail_reason"]
    assert (config.run_dir / "trials" / "0" / "error.txt").read_text().startswith("Traceback")
    assert summary["trials"]["finished"] == 6
    assert summary["trials"]["failed"] == sum(t.state == TrialState.FAIL for t in study.trials)
    assert str(first[0].number) in {str(k) for k in summary["failed"]}


def test_pareto_front_of_quality_and_trainable_parameters(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    config = tune_config(
        tmp_path, tiny_encoder, topic_file, objectives=["quality", "params"], mode="pareto", n_trials=4
    )
    summary = run_tune(config)
    study = load_study(config.run_dir)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    front = {p["trial"] for p in summary["pareto"]}
    assert front and front <= {t.number for t in complete}
    expected = {
        complete[i].number for i in pareto_front([t.values for t in complete], ["maximize", "minimize"])
    }
    assert front == expected
    for member in (t for t in complete if t.number in front):  # no front member is dominated
        for other in complete:
            assert not (
                other.values[0] >= member.values[0]
                and other.values[1] <= member.values[1]
                and other.values != member.values
            )
    assert summary["best"]["trial"] in front
    # pruning still runs, on the primary metric, in the single-objective twin study
    twin = load_study(config.run_dir, "study:primary")
    assert len(twin.trials) == len(study.trials)


def test_weighted_score_matches_the_weights(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    weights = {"quality": 0.8, "params": 0.2}
    config = tune_config(
        tmp_path, tiny_encoder, topic_file, objectives=["quality", "params"], weights=weights
    )
    run_tune(config)
    study = load_study(config.run_dir)
    references = study.user_attrs["references"]
    assert references["params"] > 0
    for trial in (t for t in study.trials if t.state == TrialState.COMPLETE):
        measured = trial.user_attrs["objectives"]
        expected = 0.8 * measured["quality"] - 0.2 * measured["params"] / references["params"]
        assert trial.value == pytest.approx(expected)
        assert trial.value == pytest.approx(weighted_score(measured, weights, references, "maximize"))


def test_batch_is_shrunk_to_fit_memory_keeping_the_effective_batch(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from open_autoglm.search import memory

    space = {"train.lr": [5e-3]}
    config = tune_config(tmp_path, tiny_encoder, topic_file, space=space, n_trials=1, pruner="none")
    small = config.model_copy(update={"train": config.train.model_copy(update={"batch_size": 4})})
    budget = memory.plan_batch(small, str(tiny_encoder)).estimated_bytes + 1  # batch 4 fits, 8 does not
    monkeypatch.setattr(memory, "available_bytes", lambda device, safety=0.9: budget)
    summary = run_tune(config)
    trial = load_study(config.run_dir).trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["batch_plan"] == {"batch_size": 4, "grad_accum": 4}
    train_rows = sum(1 for _ in (config.run_dir / "data" / "train.jsonl").open())
    assert summary["compute"]["train_steps"] == 2 * -(-train_rows // 16)  # same optimizer steps as batch 16
    assert summary["compute"]["train_examples"] == summary["compute"]["train_steps"] * 16


def test_refit_on_train_and_validation(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    config = tune_config(tmp_path, tiny_encoder, topic_file, n_trials=2, refit=True, pruner="none")
    summary = run_tune(config)
    rows = {
        s: sum(1 for _ in (config.run_dir / "data" / f"{s}.jsonl").open()) for s in ("train", "validation")
    }
    assert summary["refit"]["train_rows"] == rows["train"] + rows["validation"]
    assert "accuracy" in summary["refit"]["metrics"]  # on test, which the refit never saw
    assert (config.run_dir / "refit" / "metrics.jsonl").exists()
    _, _, meta = load_finetuned(config.run_dir / "model")
    assert meta["labels"]


def test_sft_search_minimises_perplexity_and_reports_it(
    tmp_path: Path, tiny_decoder: Path, sft_file: Path
) -> None:
    config = validate_config(
        {
            "name": "study",
            "output_dir": str(tmp_path),
            "task": "sft",
            "model": {"name": str(tiny_decoder)},
            "data": {
                "train": str(sft_file),
                "max_length": 32,
                "val_ratio": 0.2,
                "test_ratio": 0.0,
                "dedup": {"exact": False, "near": False},
            },
            "train": {"epochs": 2, "lr": 1e-3, "batch_size": 8},
            "search": {"n_trials": 3, "space": {"train.lr": [1e-4, 1e-3, 1e-2]}, "pruner": "median"},
            "quiet": True,
        },
        "test",
    )
    summary = run_tune(config)
    study = load_study(config.run_dir)
    assert summary["metric"] == "perplexity" and study.direction.name == "MINIMIZE"
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    # sft reports 4 times an epoch, each step the training examples seen: 2 epochs of n rows end at 2n
    rows = max(complete[0].intermediate_values) // 2
    grid = [round(k * rows / 4) for k in range(1, 9)]
    assert all(sorted(t.intermediate_values) == grid for t in complete)
    assert all(t.user_attrs["epochs_trained"] == 2 for t in complete)
    assert summary["best"]["trial"] == min(complete, key=lambda t: t.value).number


def test_a_full_disk_stops_the_search_naming_the_file_and_records_the_trial(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trial after a disk error would fail the same way: the search stops with the error instead."""
    import errno

    from open_autoglm.atomic import ArtifactWriteError
    from open_autoglm.search import trial as trial_module

    def disk_full(config, trial_dir, **kwargs):  # type: ignore[no-untyped-def]
        raise ArtifactWriteError(
            errno.ENOSPC, f"could not write {trial_dir / 'metrics.jsonl'}: No space left"
        )

    monkeypatch.setattr(trial_module, "fit", disk_full)
    config = tune_config(tmp_path, tiny_encoder, topic_file, n_trials=3, seed_default=False)
    with pytest.raises(ArtifactWriteError, match=r"trials/0/metrics\.jsonl"):
        run_tune(config)
    (only,) = load_study(config.run_dir).trials  # no second trial was started
    assert only.state == TrialState.FAIL
    assert "No space left" in only.user_attrs["fail_reason"]
