"""SFT: the loss is on response tokens only, chat templates are used where the tokenizer has one."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from open_autoglm.tasks.sft import IGNORE_INDEX, encode_conversation, to_messages


def _labelled_text(tokenizer, example: dict) -> str:
    ids = [
        t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX
    ]
    return tokenizer.decode(ids)


def test_plain_layout_masks_the_prompt(tiny_decoder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder)
    example = encode_conversation(
        to_messages({"prompt": "what do cats say", "response": "cats say meow"}), tokenizer, 64
    )
    assert _labelled_text(tokenizer, example) == "cats say meow </s>"
    prompt_part = [
        t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label == IGNORE_INDEX
    ]
    assert "what do cats say" in tokenizer.decode(prompt_part)
    assert example["input_ids"][0] == tokenizer.bos_token_id
    assert len(example["input_ids"]) == len(example["labels"]) == len(example["attention_mask"])


def test_chat_template_is_used_and_only_replies_are_labelled(tiny_chat_decoder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    assert tokenizer.chat_template
    messages = [
        {"role": "system", "content": "name a red fruit"},
        {"role": "user", "content": "what do cats say"},
        {"role": "assistant", "content": "cats say meow"},
        {"role": "user", "content": "what do dogs say"},
        {"role": "assistant", "content": "dogs say woof"},
    ]
    example = encode_conversation(messages, tokenizer, 128)
    full = tokenizer.decode(example["input_ids"])
    assert "<|user|>" in full and "<|assistant|>" in full and "<|system|>" in full
    assert _labelled_text(tokenizer, example) == "cats say meow </s> dogs say woof </s>"


def test_truncation_keeps_ids_and_labels_aligned(tiny_decoder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder)
    example = encode_conversation(
        to_messages({"prompt": "what colour is the sky " * 5, "response": "blue"}), tokenizer, 8
    )
    assert len(example["input_ids"]) == len(example["labels"]) == 8
    assert all(label == IGNORE_INDEX for label in example["labels"])  # the reply was cut off entirely


def test_rows_whose_reply_is_truncated_away_are_counted(tmp_path: Path, tiny_decoder: Path) -> None:
    from open_autoglm.config import validate_config
    from open_autoglm.tasks import TASKS

    config = validate_config({"task": "sft", "data": {"max_length": 10}})
    rows = [
        {"prompt": "what colour is the sky " * 5, "response": "blue"},
        {"prompt": "hi", "response": "grass is green"},
    ]
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder)
    prepared = TASKS.get("sft")().prepare({"train": rows}, tokenizer, config.data, config.train, "causal_lm")
    assert len(prepared.datasets["train"]) == 1
    assert sum(prepared.dropped.values()) == 1


def _train_stories260k(tmp_path: Path, task: str, data: Path, **data_options) -> dict:
    """Full fine-tuning of the real tiny pretrained Llama in ../shared/models/stories260k."""
    from conftest import SHARED_MODELS

    from open_autoglm.config import validate_config
    from open_autoglm.train.job import run_train

    config = validate_config(
        {
            "name": task,
            "output_dir": str(tmp_path),
            "task": task,
            "model": {"name": str(SHARED_MODELS / "stories260k")},
            "data": {"train": str(data), "val_ratio": 0.15, "test_ratio": 0.0, **data_options},
            "method": {"name": "full"},
            "train": {"epochs": 2, "lr": 3e-3, "batch_size": 8, "scheduler": "cosine"},
            "quiet": True,
        }
    )
    return run_train(config)


@pytest.mark.slow
def test_stories260k_sft_on_alpaca_lowers_validation_loss(tmp_path: Path) -> None:
    from conftest import SHARED_DATA

    alpaca = SHARED_DATA / "alpaca_en_demo" / "alpaca_en_demo.json"
    summary = _train_stories260k(tmp_path, "sft", alpaca, max_rows=300, max_length=256)
    before = summary["baseline"]["metrics"]["loss"]
    after = summary["best"]["validation"]["loss"]
    assert after < 0.85 * before, (before, after)
    assert (tmp_path / "sft" / "model" / "model.safetensors").exists()


@pytest.mark.slow
def test_stories260k_continued_pretraining_on_c4_lowers_perplexity(tmp_path: Path) -> None:
    from conftest import SHARED_DATA

    summary = _train_stories260k(
        tmp_path, "pretrain", SHARED_DATA / "c4_demo" / "c4_demo.jsonl", max_length=128, max_rows=60
    )
    assert summary["best"]["validation"]["perplexity"] < 0.8 * summary["baseline"]["metrics"]["perplexity"]
