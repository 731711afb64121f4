"""`autoglm eval` end to end on tiny local models: metrics agree with training's, baselines, the gate, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SFT_PAIRS, write_jsonl

from open_autoglm.cli import main
from open_autoglm.config import validate_config
from open_autoglm.evaluate.job import EvalOptions, run_eval
from open_autoglm.monitor import read_resources
from open_autoglm.train.job import run_train


def _config(tmp_path: Path, model: Path, data: Path, task: str = "classification", **data_keys) -> object:
    return validate_config(
        {
            "name": "run",
            "task": task,
            "output_dir": str(tmp_path),
            "model": {"name": str(model)},
            "data": {"train": str(data), "max_length": 24, "val_ratio": 0.2, "test_ratio": 0.25, **data_keys},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 2, "lr": 5e-3, "batch_size": 16, "seed": 3},
            "quiet": True,
        },
        "test",
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> tuple[object, dict]:
    from open_autoglm.data.synthetic import make_topic_rows

    tmp = tmp_path_factory.mktemp("eval")
    data = write_jsonl(tmp / "topics.jsonl", make_topic_rows(240, seed=5))
    config = _config(tmp, tiny_encoder, data)
    return config, run_train(config)


def test_classification_eval_matches_training_and_reports_everything(trained) -> None:
    config, summary = trained
    result = run_eval(config, EvalOptions(model=config.run_dir / "model"))
    written = json.loads((config.run_dir / "eval.json").read_text(encoding="utf-8"))
    assert written["metrics"] == result["metrics"]
    test_rows = summary["data"]["rows_kept"]["test"]
    assert result["rows"] == test_rows
    # The eval path (its own tokenising and batching) agrees with the Trainer's test evaluation.
    assert result["metrics"]["accuracy"] == pytest.approx(summary["best"]["test"]["accuracy"], abs=1e-9)
    assert result["metrics"]["f1_macro"] == pytest.approx(summary["best"]["test"]["f1_macro"], abs=1e-9)
    matrix = result["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == test_rows
    assert sum(matrix[i][i] for i in range(len(matrix))) / test_rows == pytest.approx(
        result["metrics"]["accuracy"]
    )
    assert set(result["per_class"]) == set(result["confusion_matrix"]["labels"])
    low, high = result["confidence"]["accuracy"]
    accuracy = result["metrics"]["accuracy"]
    assert low <= accuracy <= high
    # an interval with width, unless every row is right (or wrong): then every resample scores the same
    assert (high - low > 0) == (0 < accuracy < 1)
    speed = result["speed"]
    assert 0 < speed["latency_ms_p50"] <= speed["latency_ms_p95"]
    assert speed["throughput_per_s"] > 0 and speed["peak_memory_mb"] > 0
    (pretrained,) = result["baselines"]
    assert pretrained["name"] == "pretrained"
    compared = pretrained["comparison"]["accuracy"]
    assert compared["delta"] == pytest.approx(compared["value"] - compared["baseline"])
    assert compared["ci_low"] <= compared["delta"] <= compared["ci_high"]
    samples = read_resources(config.run_dir / "resources-eval.jsonl")
    assert samples and samples[-1]["elapsed_s"] > 0


def test_gate_passes_against_itself_and_fails_against_a_better_run(trained, tmp_path: Path) -> None:
    config, summary = trained
    model = str(config.run_dir / "model")
    same = tmp_path / "same.json"
    same.write_text(json.dumps(summary))
    args = ["eval", "-c", str(config.run_dir / "config.yaml"), "--model", model, "--no-pretrained", "-q"]
    assert main([*args, "--baseline", str(same), "--fail-on-regression"]) == 0
    result = json.loads((config.run_dir / "eval.json").read_text())
    assert result["passed"] and result["baselines"][0]["comparison"]["accuracy"]["delta"] == pytest.approx(0)

    better = json.loads(json.dumps(summary))
    better["best"]["test"]["accuracy"] = summary["best"]["test"]["accuracy"] + 0.2
    better_file = tmp_path / "better.json"
    better_file.write_text(json.dumps(better))
    assert main([*args, "--baseline", str(better_file), "--fail-on-regression"]) == 3
    result = json.loads((config.run_dir / "eval.json").read_text())
    (regression,) = result["regressions"]
    assert regression["metric"] == "accuracy" and regression["baseline"] == "previous"
    assert result["baselines"][0]["comparison"]["accuracy"]["significant"]
    # Without --fail-on-regression the same finding is reported but does not fail the command.
    assert main([*args, "--baseline", str(better_file)]) == 0
    # A drop within the tolerance passes.
    assert main([*args, "--baseline", str(better_file), "--tolerance", "0.25", "--fail-on-regression"]) == 0


def test_eval_on_a_file_quarantines_bad_lines(trained, tmp_path: Path) -> None:
    config, _ = trained
    from open_autoglm.data.synthetic import make_topic_rows

    rows = make_topic_rows(60, seed=11)
    lines = [json.dumps(r) for r in rows]
    lines.insert(7, "{not json")
    path = tmp_path / "extra.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_eval(
        config.model_copy(update={"data": config.data.model_copy(update={"max_bad_ratio": 0.05})}),
        EvalOptions(model=config.run_dir / "model", data=path, pretrained=False, out=tmp_path),
    )
    assert result["rows"] == 60 and result["data"] == str(path)
    assert [(q["source"], q["line"]) for q in result["quarantined"]] == [(str(path), 8)]
    assert (tmp_path / "eval.json").exists()


def test_unknown_labels_are_named(trained, tmp_path: Path) -> None:
    config, _ = trained
    path = write_jsonl(tmp_path / "odd.jsonl", [{"text": "a b c", "label": "weather"}] * 3)
    with pytest.raises(ValueError, match="weather"):
        run_eval(config, EvalOptions(model=config.run_dir / "model", data=path, pretrained=False))


def test_sft_eval_generates_and_scores(tmp_path: Path, tiny_decoder: Path) -> None:
    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 6])
    config = _config(tmp_path, tiny_decoder, data, task="sft", dedup={"exact": False, "near": False})
    config = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 8, "lr": 2e-2})})
    summary = run_train(config)
    result = run_eval(config, EvalOptions(model=config.run_dir / "model", max_new_tokens=8))
    metrics = result["metrics"]
    assert set(metrics) >= {"exact_match", "rouge_l", "bleu", "perplexity"}
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["rouge_l"] <= 1 and 0 <= metrics["bleu"] <= 100
    # Fine-tuned on these very pairs, the model's perplexity on them is far below the untuned model's.
    (pretrained,) = result["baselines"]
    assert metrics["perplexity"] < pretrained["metrics"]["perplexity"]
    assert pretrained["comparison"]["perplexity"]["significant"]
    # Our token-pooled perplexity agrees with the Trainer's test loss (one batch: the same average).
    assert metrics["perplexity"] == pytest.approx(summary["best"]["test"]["perplexity"], rel=1e-3)
    assert result["samples"] and {"reference", "reply"} <= set(result["samples"][0])


def test_pretrain_eval_gives_perplexity(tmp_path: Path, tiny_decoder: Path, text_file: Path) -> None:
    config = _config(tmp_path, tiny_decoder, text_file, task="pretrain")
    run_train(config)
    result = run_eval(config, EvalOptions(model=config.run_dir / "model", pretrained=False))
    assert list(result["metrics"]) == ["perplexity"] and result["metrics"]["perplexity"] > 1
    assert result["metric"] == "perplexity" and not result["greater_is_better"]
