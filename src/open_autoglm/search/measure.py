"""What a trial costs besides its quality (inference latency, measured the same way for all), and a plugin's
objective measured on the trained model.

A causal LM is served by generating, so its latency is generation speed: greedy replies of a fixed length to the
first validation prompts, in milliseconds per generated token. One forward pass would time the prompt only, and
would miss what a method adds to every decoding step (an adapter's extra matmuls, a prefix's longer cache).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from open_autoglm.search.objectives import TrialOutcome
from open_autoglm.tasks.sft import IGNORE_INDEX

LATENCY_EXAMPLES = 32
GENERATED_TOKENS = 32  # every trial generates exactly this many tokens a prompt, so all time the same work
LATENCY_PROMPTS = 3  # validation prompts timed (after one warm-up); the median is kept
PROMPT_TOKENS = 16  # the prompt of a row without one (pretrain text): its first tokens


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """The model in eval mode and without autograd for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def latency_ms(model: Any, examples: Sequence[Sequence[int]], device: torch.device | str) -> float:
    """Median milliseconds per example at batch size 1 (one warm-up pass first), as a server would see it."""
    timings = []
    with evaluating(model):
        for i, ids in enumerate([examples[0], *examples[:LATENCY_EXAMPLES]]):
            input_ids = torch.tensor([list(ids)], device=device)
            started = time.perf_counter()
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
            if i:  # the first pass warms kernels up
                timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return timings[len(timings) // 2]


def latency_objectives(
    model: Any, validation: Any, objective: str, device: torch.device | str
) -> dict[str, float]:
    """`latency` (ms, minimised) of the model on its validation rows (a tokenised Dataset): per generated token for
    a causal LM, with its `tokens_per_second` beside it; per example (one forward pass) for any other."""
    if objective != "causal_lm":
        return {"latency": latency_ms(model, validation["input_ids"], device)}
    rows = validation.select(range(min(LATENCY_PROMPTS, len(validation))))
    prompts = [prompt_ids(row["input_ids"], row.get("labels")) for row in rows]
    ms_per_token = generation_ms_per_token(model, prompts, device)
    return {"latency": ms_per_token, "tokens_per_second": 1000 / ms_per_token}


def prompt_ids(input_ids: Sequence[int], labels: Sequence[int] | None) -> list[int]:
    """A tokenised SFT row's prompt: its tokens before the first labelled one (the reply); for a block of plain
    text (pretrain, no labels), its first PROMPT_TOKENS."""
    first = next((i for i, label in enumerate(labels or ()) if label != IGNORE_INDEX), 0)
    return list(input_ids[:first] or input_ids[:PROMPT_TOKENS])


def generation_ms_per_token(
    model: Any,
    prompts: Sequence[Sequence[int]],
    device: torch.device | str,
    new_tokens: int = GENERATED_TOKENS,
) -> float:
    """Median milliseconds per generated token of greedy replies of exactly `new_tokens` tokens (end of turn
    suppressed until then) at batch size 1, each prompt alone, after one warm-up reply; the prompt's own pass is
    part of the time, as a user waiting for the whole reply sees it."""
    timings = []
    with evaluating(model):
        for i, ids in enumerate([prompts[0], *prompts]):
            input_ids = torch.tensor([list(ids)], device=device)
            started = time.perf_counter()
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                use_cache=True,  # as served, whatever gradient checkpointing set during training
                pad_token_id=getattr(model.config, "pad_token_id", None),  # fit sets the tokenizer's
            )
            generated = output.shape[1] - input_ids.shape[1]
            if generated != new_tokens:
                raise RuntimeError(f"generation stopped after {generated} of {new_tokens} tokens")
            if i:  # the first reply warms kernels up
                timings.append((time.perf_counter() - started) * 1000 / new_tokens)
    timings.sort()
    return timings[len(timings) // 2]


def measure_plugin(name: str, measure: Callable[[TrialOutcome], float], outcome: TrialOutcome) -> float:
    """A plugin objective's value on the trained model, put in eval mode for it; anything but a finite number is
    refused with the objective's name (the trial fails with that reason)."""
    with evaluating(outcome.model):
        value = measure(outcome)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"objective {name!r} (a plugin) returned {value!r}; an objective must be a finite number"
        )
    return float(value)
