"""Every method × every task it supports, on tiny local models: the loss goes down, and the saved
model/adapter reloads and gives the same predictions."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from transformers import BertModel

from open_autoglm.config import validate_config
from open_autoglm.methods import METHODS
from open_autoglm.models import load_finetuned
from open_autoglm.train.job import fit, save_fitted

# Learning rates that move a tiny random model in a few dozen steps.
LR = {"full": 3e-3, "freeze": 3e-3, "prefix": 3e-2, "prompt": 3e-2, "ptuning": 3e-2, "ia3": 3e-2}
# peft's prefix tuning needs a model whose forward takes past_key_values; BERT stopped taking it in
# transformers 5.24, and there the method must refuse with a clear error instead of training.
BERT_TAKES_CACHE = "past_key_values" in inspect.signature(BertModel.forward).parameters
NOT_APPLICABLE: set[tuple[str, str]] = set() if BERT_TAKES_CACHE else {("prefix", "classification")}


def _config(tmp_path: Path, task: str, model: Path, train_file: Path, method: str) -> dict:
    return {
        "name": f"{task}-{method}",
        "output_dir": str(tmp_path),
        "task": task,
        # fp32: the reload is compared exactly, with no bf16 autocast (chosen on CPUs with AVX512-BF16)
        "model": {"name": str(model), "precision": "fp32"},
        "data": {
            "train": str(train_file),
            "max_length": 32,
            "val_ratio": 0.2,
            "test_ratio": 0.0,
            "dedup": {"exact": False, "near": False},
        },
        "method": {"name": method},
        "train": {
            "epochs": 3,
            "lr": LR.get(method, 1e-2),
            "batch_size": 8,
            "logging_steps": 5,
            "save_every": "epoch",
        },
        "quiet": True,
    }


def _cases() -> list:
    cases = []
    for method in METHODS.names():
        for task in ("classification", "sft", "pretrain"):
            if task in METHODS.get(method).tasks:
                cases.append(pytest.param(method, task, id=f"{method}-{task}"))
    # A decoder classifier takes past_key_values whatever BERT does: prefix classification always trains somewhere.
    cases.append(pytest.param("prefix", "decoder-classification", id="prefix-decoder-classification"))
    return cases


@pytest.mark.parametrize(("method", "task"), _cases())
def test_method_trains_and_reloads(
    method: str,
    task: str,
    tmp_path: Path,
    tiny_encoder: Path,
    tiny_decoder: Path,
    topic_file: Path,
    sft_file: Path,
    text_file: Path,
) -> None:
    model, data = {
        "classification": (tiny_encoder, topic_file),
        "sft": (tiny_decoder, sft_file),
        "pretrain": (tiny_decoder, text_file),
        "decoder-classification": (tiny_decoder, topic_file),
    }[task]
    task = task.removeprefix("decoder-")
    config = validate_config(_config(tmp_path, task, model, data, method))
    if (method, task) in NOT_APPLICABLE:
        from open_autoglm.methods import MethodNotApplicable

        with pytest.raises(MethodNotApplicable, match=f"method '{method}' cannot"):
            fit(config, config.run_dir / "trials" / "0")
        return
    result = fit(config, config.run_dir / "trials" / "0")
    assert result.metrics["validation"]["loss"] < result.baseline["loss"]

    model_dir = config.run_dir / "model"
    save_fitted(result, model_dir, config)
    assert list(model_dir.glob("*.safetensors")), "weights must be saved as safetensors"
    reloaded, _, meta = load_finetuned(model_dir)
    assert meta["method"] == method
    batch = result.prepared.collator(
        [
            {k: v for k, v in row.items() if k != "length"}
            for row in result.prepared.datasets["validation"].select(range(4))
        ]
    )
    batch.pop("labels", None)
    trained = result.trainer.model.eval()
    with torch.no_grad():
        expected = trained(**batch).logits
        got = reloaded(**batch).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
