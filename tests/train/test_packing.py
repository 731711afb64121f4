"""SFT packing: a batch's examples in one row with positions restarting per example. The loss equals the padded
batch's, and no example attends to another (eager and SDPA attention build the block mask from the positions)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_autoglm.tasks.sft import encode_conversation, sft_collator, to_messages

ROWS = [
    {"prompt": "what do cats say", "response": "cats say meow"},
    {"prompt": "what colour is the sky", "response": "the sky is blue"},
    {"prompt": "name a red fruit", "response": "a red apple"},
]


def _examples(tokenizer) -> list[dict]:
    return [encode_conversation(to_messages(row), tokenizer, 64) for row in ROWS]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_packed_and_padded_batches_have_the_same_loss(tiny_chat_decoder: Path, attention: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    tokenizer.pad_token = tokenizer.eos_token  # as load_tokenizer does for a decoder without one
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_decoder, attn_implementation=attention).eval()
    examples = _examples(tokenizer)
    packed = sft_collator(tokenizer, packing=True)(examples)
    padded = sft_collator(tokenizer, packing=False)(examples)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))  # no padding at all
    assert "attention_mask" not in packed
    with torch.no_grad():
        assert float(model(**packed).loss) == pytest.approx(float(model(**padded).loss), rel=1e-5)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_no_packed_example_attends_to_another(tiny_chat_decoder: Path, attention: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_decoder, attn_implementation=attention).eval()
    first, second, _ = _examples(tokenizer)
    collate = sft_collator(tokenizer, packing=True)
    with torch.no_grad():
        alone = model(**collate([second])).logits[0]  # (L, V)
        packed = model(**collate([first, second])).logits[0, len(first["input_ids"]) :]
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)
