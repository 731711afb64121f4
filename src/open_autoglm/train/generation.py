"""Generation metrics while training: greedy replies to a fixed validation sample, scored at every evaluation.

A search whose quality is ROUGE-L, BLEU or exact match (`search.metric`) needs that number wherever the loss is
reported: at each periodic evaluation, where the pruners judge, and in the final validation metrics. The trainer
adds it to an evaluation's metrics before they are logged. Replies and scores come from `autoglm eval`'s own code
(evaluate/predict.py, evaluate/metrics.py), so a trial's ROUGE-L is the one eval reports on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.metrics import generation_metrics
from open_autoglm.evaluate.predict import generate_replies, prompt_and_reference

# Evaluations of the validation split, whose first rows the sample is (train/job.py names them so); the test
# split's evaluation scores other rows and gets none.
SCORED_PREFIXES = ("eval", "baseline")
REPLY_SLACK = 16  # tokens a reply may run past the longest reference before it is cut


@dataclass(frozen=True)
class GenerationSample:
    """The validation rows answered greedily at each evaluation, and the settings of the generation."""

    tokenizer: PreTrainedTokenizerBase
    prompts: list[str]
    references: list[str]
    batch_size: int
    max_length: int  # prompt tokens kept
    max_new_tokens: int


def generation_sample(
    rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, batch_size: int, max_length: int
) -> GenerationSample:
    """SFT rows as prompts (rendered as in training) and the replies to match. A reply may run a little past the
    longest reference, never past `max_length` (no trained reply was longer)."""
    pairs = [prompt_and_reference(row, tokenizer) for row in rows]
    references = [reference for _, reference in pairs]
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references)
    return GenerationSample(
        tokenizer=tokenizer,
        prompts=[prompt for prompt, _ in pairs],
        references=references,
        batch_size=batch_size,
        max_length=max_length,
        max_new_tokens=min(longest + REPLY_SLACK, max_length),
    )


def score_sample(model: nn.Module, sample: GenerationSample) -> dict[str, float]:
    """Exact match, ROUGE-L and BLEU of the model's greedy replies, each stopping at the end-of-turn token the
    model's generation config carries (tasks/sft.py puts it there)."""
    replies = generate_replies(
        model, sample.tokenizer, sample.prompts, sample.batch_size, sample.max_length, sample.max_new_tokens
    ).replies
    return generation_metrics(replies, sample.references)
