"""Real pretrained encoders on real data: LoRA must learn well beyond the majority class."""

from __future__ import annotations

import json

import pytest

from open_autoglm.evaluate.job import EvalOptions, run_eval
from open_autoglm.models import load_finetuned

pytestmark = pytest.mark.slow


def test_minilm_lora_on_sst2(trained_minilm) -> None:
    """The shared MiniLM + LoRA run (conftest: 1,000 SST-2 rows, 450 of them held out as the test split)."""
    config = trained_minilm
    run_dir = config.run_dir
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    test = summary["best"]["test"]
    assert test["accuracy"] >= 0.75, test
    # The untuned model (random head) is near chance; the held-out majority class is about 0.5.
    assert summary["baseline"]["metrics"]["majority_accuracy"] < 0.6
    model, tokenizer, meta = load_finetuned(run_dir / "model")
    assert meta["labels"] == ["0", "1"]
    enc = tokenizer(
        ["a gorgeous , witty , seductive movie .", "a dull , lifeless and boring mess ."],
        return_tensors="pt",
        padding=True,
    )
    assert model(**enc).logits.argmax(-1).tolist() == [1, 0]

    # autoglm eval on the same test split: the same accuracy, far beyond the untuned model, no regression.
    result = run_eval(config, EvalOptions(model=run_dir / "model", baseline_summary=run_dir / "summary.json"))
    assert result["metrics"]["accuracy"] == pytest.approx(test["accuracy"], abs=1e-9)
    pretrained, previous = result["baselines"]
    assert pretrained["comparison"]["accuracy"]["significant"], pretrained
    assert pretrained["comparison"]["accuracy"]["ci_low"] > 0.1
    assert previous["comparison"]["accuracy"]["delta"] == pytest.approx(0, abs=1e-9)
    assert result["passed"] and result["speed"]["throughput_per_s"] > 0


def test_chinese_e5_lora_on_chnsenticorp(chinese_e5_run) -> None:
    _, summary = chinese_e5_run
    majority = summary["baseline"]["metrics"]["majority_accuracy"]
    accuracy = summary["best"]["test"]["accuracy"]
    assert accuracy >= max(0.69, majority) + 0.08, (accuracy, majority)
