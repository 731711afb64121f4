"""SFT on a real chat model (SmolLM2-135M-Instruct, ChatML): the labels are exactly the replies and their end of
turn, a few LoRA steps lower the validation loss, and the saved model stops generating at <|im_end|>."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA
from transformers import AutoTokenizer

from open_autoglm.config import validate_config
from open_autoglm.models import load_finetuned
from open_autoglm.tasks.sft import IGNORE_INDEX, encode_conversation, end_of_turn, stop_at_end_of_turn
from open_autoglm.train.job import run_train

pytestmark = pytest.mark.slow


def _lora_sft(
    tmp_path: Path, name: str, model: str, data: str, *, rows: int, val_ratio: float, max_length: int
) -> dict:
    """One epoch of LoRA SFT (r 8, lr 1e-3, batch 8) on the first `rows` rows of a shared Alpaca-format set."""
    config = validate_config(
        {
            "name": name,
            "output_dir": str(tmp_path),
            "task": "sft",
            "model": {"name": model, "precision": "fp32"},
            "data": {
                "train": str(SHARED_DATA / data / f"{data}.json"),
                "max_rows": rows,
                "val_ratio": val_ratio,
                "test_ratio": 0.0,
                "max_length": max_length,
            },
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": 1, "lr": 1e-3, "batch_size": 8, "seed": 0},
            "quiet": True,
        }
    )
    return run_train(config)


def test_labelled_tokens_are_the_replies_and_their_end_of_turn(smollm2: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert end_of_turn(tokenizer) == ("<|im_end|>", "\n")
    messages = [
        {"role": "user", "content": "Name a red fruit."},
        {"role": "assistant", "content": "A strawberry."},
        {"role": "user", "content": "And a yellow one?"},
        {"role": "assistant", "content": "A banana, 香蕉."},
    ]
    example = encode_conversation(messages, tokenizer, 512)
    labelled = [
        t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(labelled) == "A strawberry.<|im_end|>A banana, 香蕉.<|im_end|>"
    assert tokenizer.decode(example["input_ids"]) == tokenizer.apply_chat_template(messages, tokenize=False)


def test_lora_sft_lowers_the_loss_and_the_model_stops_at_the_end_of_turn(
    smollm2: Path, tmp_path: Path
) -> None:
    summary = _lora_sft(tmp_path, "sft", "smollm2", "alpaca_en_demo", rows=40, val_ratio=0.2, max_length=160)
    before, after = summary["baseline"]["metrics"]["loss"], summary["best"]["validation"]["loss"]
    assert after < before, (before, after)

    model_dir = tmp_path / "sft" / "model"
    model, tokenizer, meta = load_finetuned(model_dir)
    assert meta["licence"] == "Apache-2.0"
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in json.loads((model_dir / "generation_config.json").read_text())["eos_token_id"]
    assert im_end in stop_at_end_of_turn(model, tokenizer)  # already there: nothing to add
    chat = [{"role": "user", "content": "Give one word for happy."}]
    prompt = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=64, do_sample=False)
    new = out[0, prompt["input_ids"].shape[1] :].tolist()
    assert im_end in new and len(new) < 64  # it ended its turn instead of running on


def test_gemma3_loads_from_its_alias_and_lora_lowers_the_loss_on_chinese(
    llm_cache: Path, tmp_path: Path
) -> None:
    """The base model without a chat template: the default template is used and saved; its Chinese is real."""
    summary = _lora_sft(
        tmp_path, "zh", "gemma3-270m", "alpaca_zh_demo", rows=24, val_ratio=0.25, max_length=64
    )
    before, after = summary["baseline"]["metrics"]["loss"], summary["best"]["validation"]["loss"]
    assert after < before, (before, after)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "zh" / "model")
    assert "### Instruction:" in tokenizer.chat_template  # the default template, saved for serving
    assert tokenizer.unk_token_id not in tokenizer("细胞理论")["input_ids"]
