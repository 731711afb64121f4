"""The comparison of a causal LM's exported variants (merged safetensors, GGUF files): size, generation speed and
validation perplexity, each measured the same way on the same rows for every variant."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from transformers import GenerationConfig, PreTrainedTokenizerBase

from open_autoglm.evaluate.predict import (
    conversation_examples,
    document_examples,
    example_losses,
    perplexity_statistic,
    prompt_and_reference,
)

GREEDY_PROMPTS = 3  # prompts whose greedy continuations an exported file must reproduce
GREEDY_TOKENS = 16
# A step where the reference's top two tokens are closer than this is a tie that any rounding may break: q8_0 moves
# SmolLM2's logits by up to 0.3-0.8 a position, and it broke two ties of 0.015 and 0.16 in 48 steps. A wrong file
# disagrees where the reference is sure (gaps of several logits).
TIE_MARGIN = 0.5
SPEED_TOKENS = 32  # generated for the tokens/s figure, never fewer (EOS does not end the timed run)
SPEED_RUNS = 3  # timed after one warm-up run; the median counts
PROMPT_WORDS = 8  # a plain-text row's prompt: its first words


@dataclass
class LmBench:
    """The fixed inputs every variant of one causal LM is checked and measured on."""

    tokenizer: PreTrainedTokenizerBase  # the merged model's: every variant gets the same token ids
    texts: list[str]  # logits are compared on these
    prompts: list[str]  # greedy continuations are compared from these; the first one times generation
    examples: list[dict[str, list[int]]]  # validation perplexity, tokenised as in training
    stop_ids: list[int]  # where generation stops: the merged model's, for every variant (a GGUF file has one)
    pad_id: int


def lm_bench(
    rows: Sequence[dict[str, Any]],
    texts: list[str],
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> LmBench:
    """SFT rows give their chat prompts and conversations; plain-text rows their first words and documents."""
    if rows and "text" not in rows[0]:
        prompts = [prompt_and_reference(r, tokenizer)[0] for r in rows]
        examples = conversation_examples(rows, tokenizer, max_length)
    else:
        prompts = [" ".join(str(r["text"]).split()[:PROMPT_WORDS]) for r in rows]
        examples = document_examples(texts, tokenizer, max_length, masked=False)
    stop: Any = cast(Any, model).generation_config.eos_token_id
    stop_ids = [int(i) for i in (stop if isinstance(stop, list) else [stop]) if i is not None]
    pad: Any = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return LmBench(tokenizer, texts, prompts[:GREEDY_PROMPTS], examples, stop_ids, int(pad or 0))


@torch.inference_mode()
def greedy(
    model: nn.Module, bench: LmBench, prompt: str, new_tokens: int, *, exact: bool = False
) -> list[int]:
    """The greedy continuation's token ids (exactly `new_tokens` of them with `exact`)."""
    encoded = bench.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    settings = GenerationConfig(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens if exact else 0,
        do_sample=False,
        eos_token_id=bench.stop_ids or None,
        pad_token_id=bench.pad_id,
    )
    out = model.generate(**encoded, generation_config=settings)  # type: ignore[operator]
    return out[0, encoded["input_ids"].shape[1] :].tolist()


@dataclass
class Continuation:
    """A prompt and the reference model's greedy continuation of it, with the reference's logits for each step."""

    ids: torch.Tensor  # (1, P + N): the prompt's tokens, then the continuation's
    start: int  # P: where the continuation begins
    logits: torch.Tensor  # (N, vocab): the reference's logits that chose each continuation token


@torch.inference_mode()
def continuations(model: nn.Module, bench: LmBench) -> list[Continuation]:
    out = []
    for prompt in bench.prompts:
        prompt_ids = bench.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        new = torch.tensor([greedy(model, bench, prompt, GREEDY_TOKENS)], dtype=torch.long)
        ids, start = torch.cat([prompt_ids, new], dim=1), prompt_ids.shape[1]
        out.append(Continuation(ids, start, model(ids).logits[0, start - 1 : -1].float()))
    return out


@torch.inference_mode()
def greedy_disagreements(model: nn.Module, expected: Continuation) -> tuple[int, list[float]]:
    """Fed the reference's continuation (teacher forcing, so one early tie does not derail the rest): the steps
    where `model` would pick another token, as the reference's preference for its own token over that one."""
    picked = model(expected.ids).logits[0, expected.start - 1 : -1].argmax(-1)  # (N,)
    wanted = expected.ids[0, expected.start :]
    steps = (picked != wanted).nonzero().flatten().tolist()
    gaps = [float(expected.logits[i, wanted[i]] - expected.logits[i, picked[i]]) for i in steps]
    return len(wanted), gaps


@torch.inference_mode()
def max_logit_diff(model: nn.Module, reference: nn.Module, bench: LmBench) -> float:
    """Largest absolute logit difference over every token of the bench's texts (one at a time: no padding)."""
    largest = 0.0
    for text in bench.texts:
        encoded = bench.tokenizer(text, return_tensors="pt")
        diff = model(**encoded).logits.float() - reference(**encoded).logits.float()  # (1, T, vocab)
        largest = max(largest, float(diff.abs().max()))
    return largest


def measure_lm(
    name: str, fmt: str, path: Path, size_mb: float, model: nn.Module, bench: LmBench
) -> dict[str, Any]:
    """One row of the table: size, greedy generation tokens/s from the first prompt, validation perplexity."""
    prompt = bench.prompts[0]
    greedy(model, bench, prompt, SPEED_TOKENS, exact=True)  # warm-up: first-call allocations are not timed
    seconds = []
    for _ in range(SPEED_RUNS):
        started = time.perf_counter()
        greedy(model, bench, prompt, SPEED_TOKENS, exact=True)
        seconds.append(time.perf_counter() - started)
    losses = example_losses(model, bench.examples, bench.pad_id, batch_size=8, causal=True)
    perplexity = perplexity_statistic(losses.nll, losses.tokens)(np.arange(len(bench.examples)))
    return {
        "name": name,
        "format": fmt,
        "path": str(path),
        "size_mb": round(size_mb, 3),
        "generation_tokens_per_s": round(SPEED_TOKENS / statistics.median(seconds), 2),
        "perplexity": round(perplexity, 4),
        "validation_rows": len(bench.examples),
    }
