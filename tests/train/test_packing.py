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
    packed = sft_collator(tokenizer, packing=True, max_length=64)(examples)
    padded = sft_collator(tokenizer, packing=False, max_length=64)(examples)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))  # one row, no padding
    assert "attention_mask" not in packed
    with torch.no_grad():
        assert float(model(**packed).loss) == pytest.approx(float(model(**padded).loss), rel=1e-5)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_no_packed_example_attends_to_another(tiny_chat_decoder: Path, attention: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_decoder, attn_implementation=attention).eval()
    examples = _examples(tokenizer)[:2]
    collate = sft_collator(tokenizer, packing=True, max_length=64)
    batch = collate(examples)
    assert batch["input_ids"].shape[0] == 1  # both in one row
    with torch.no_grad():
        packed = model(**batch).logits[0]  # (L, V)
        starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [packed.shape[0]]
        for start, end in zip(starts, starts[1:], strict=False):
            ids = batch["input_ids"][0, start:end].tolist()
            example = next(e for e in examples if e["input_ids"] == ids)
            alone = model(**collate([example])).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=1e-5)


def test_rows_hold_at_most_a_block_and_padding_is_its_own_segment(tiny_chat_decoder: Path) -> None:
    """First-fit-decreasing into rows of `max_length`: an example never splits, the padding after a shorter row
    gets positions of its own (so nothing attends to it) and no labels."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_decoder)
    tokenizer.pad_token = tokenizer.eos_token
    examples = _examples(tokenizer)
    lengths = sorted((len(e["input_ids"]) for e in examples), reverse=True)
    block = lengths[0] + lengths[1] - 1  # the two longest do not fit together; the shortest joins one of them
    batch = sft_collator(tokenizer, packing=True, max_length=block)(examples)
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"].shape[1] <= block
    assert int((batch["labels"] != -100).sum()) == sum(
        sum(label != -100 for label in e["labels"]) for e in examples
    )
    starts = (batch["position_ids"] == 0).sum(dim=1).tolist()
    assert sum(starts) in (len(examples), len(examples) + 1)  # each example starts at 0, padding once more
