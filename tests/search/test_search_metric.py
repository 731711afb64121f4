"""`search.metric` for sft: a generation metric of greedy replies is what the trials report and the study
maximises; a metric the task does not report is refused, naming the key."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.search.job import run_tune
from open_autoglm.train.callbacks import read_metrics

SPACE = {"train.lr": {"type": "categorical", "choices": [1e-4, 3e-2]}}


def sft_tune_config(tmp_path: Path, model: Path, data: Path, **search) -> object:
    return validate_config(
        {
            "name": "sft-metric",
            "task": "sft",
            "output_dir": str(tmp_path),
            "model": {"name": str(model), "device": "cpu", "precision": "fp32"},
            "data": {
                "train": str(data),
                "max_length": 32,
                "val_ratio": 0.2,
                "dedup": {"exact": False, "near": False},
            },
            "method": {"name": "full"},
            "train": {"epochs": 1, "batch_size": 4, "eval_every": 3, "logging_steps": 5},
            "search": {
                "n_trials": 3,
                "space": SPACE,
                "pruner": ["median"],
                "startup_trials": 10,
                "generation_rows": 4,
                **search,
            },
            "quiet": True,
        },
        "test",
    )


def test_sft_search_on_rouge_l_reports_it_at_every_evaluation_and_maximises_it(
    tmp_path: Path, tiny_chat_decoder: Path, sft_file: Path
) -> None:
    config = sft_tune_config(tmp_path, tiny_chat_decoder, sft_file, metric="rouge_l")
    summary = run_tune(config)

    study = optuna.load_study(study_name="sft-metric", storage=f"sqlite:///{config.run_dir / 'study.db'}")
    assert study.direction == StudyDirection.MAXIMIZE
    assert summary["metric"] == "rouge_l" and summary["greater_is_better"] is True
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    for trial in complete:
        rows = read_metrics(config.run_dir / "trials" / str(trial.number) / "metrics.jsonl")
        validation = [r for r in rows if r["split"] == "validation"]
        evaluated = {r["step"] for r in validation if r["name"] == "loss"}
        scored = {r["step"]: r["value"] for r in validation if r["name"] == "rouge_l"}
        assert len(evaluated) >= 2 and set(scored) == evaluated  # every evaluation scored the replies
        reported = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
        assert reported == [
            scored[step] for step in sorted(scored)
        ]  # the pruners judged ROUGE-L, not the loss
        validation_metrics = trial.user_attrs["metrics"]["validation"]
        assert {"rouge_l", "bleu", "exact_match"} <= set(validation_metrics)
        assert trial.value == validation_metrics["rouge_l"]
    assert study.best_trial.value == max(t.value for t in complete)
    assert summary["best"]["trial"] == study.best_trial.number


def test_an_unknown_search_metric_is_refused_naming_the_key_and_the_choices(
    tmp_path: Path, tiny_chat_decoder: Path, sft_file: Path
) -> None:
    from open_autoglm.cli.registered import require_registered

    config = sft_tune_config(tmp_path, tiny_chat_decoder, sft_file, metric="accuracy")
    with pytest.raises(ConfigError, match=r"search\.metric: 'accuracy' .*rouge_l, bleu, exact_match"):
        require_registered(config)
    with pytest.raises(ValueError, match=r"search\.metric"):
        run_tune(config)
    assert not (config.run_dir / "data").exists()  # refused before any data is read

    classification = validate_config({"search": {"metric": "rouge_l"}, "train": {"metrics": []}})
    with pytest.raises(ConfigError, match=r"search\.metric: 'rouge_l' .*accuracy, f1_macro"):
        require_registered(classification)
    require_registered(validate_config({"search": {"metric": "f1_macro"}}))


def test_sft_offers_the_generation_metrics_eval_computes() -> None:
    from open_autoglm.evaluate.metrics import GENERATION_METRICS
    from open_autoglm.tasks import TASKS

    offered = TASKS.get("sft")().search_metrics(validate_config({"task": "sft"}).train)
    assert {name for name, greater in offered.items() if greater} == set(GENERATION_METRICS)
    assert {name for name, greater in offered.items() if not greater} == {"loss", "perplexity"}
