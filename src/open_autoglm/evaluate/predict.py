"""Run a model over evaluation rows: predicted labels, generated replies, per-example losses — and batch timings.

Every pass returns what it produced with the wall time of each batch, so the speed figures come from the same
work the quality figures do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from open_autoglm.tasks.sft import IGNORE_INDEX, encode_conversation, segments, to_messages

MLM_SEED = 0  # masked-LM perplexity masks tokens at random: the same mask for every model compared


@dataclass
class Pass:
    """What one pass over the rows produced, and how long each batch took (seconds)."""

    batch_seconds: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)


@dataclass
class LabelPass(Pass):
    predicted: list[int] = field(default_factory=list)


@dataclass
class GenerationPass(Pass):
    replies: list[str] = field(default_factory=list)


@dataclass
class LossPass(Pass):
    """Per example: summed negative log-likelihood (nats) and the number of tokens it covers."""

    nll: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict_labels(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
) -> LabelPass:
    """Arg-max label ids for each text."""
    device, out = device_of(model), LabelPass()
    for batch in _batches(texts, batch_size):
        encoded = tokenizer(
            list(batch), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device)
        started = time.perf_counter()
        logits = model(**encoded).logits
        _synchronize(device)
        out.batch_seconds.append(time.perf_counter() - started)
        out.batch_sizes.append(len(batch))
        out.predicted += logits.argmax(-1).tolist()
    return out


def prompt_and_reference(row: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> tuple[str, str]:
    """The text the model is given (rendered as in training, up to the last reply) and the reply to match."""
    messages = to_messages(row)
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(f"an SFT row must end with the assistant's reply: {row!r}")
    pieces = segments(messages, tokenizer)
    last_reply = max(i for i, (_, trainable) in enumerate(pieces) if trainable)
    prompt = "".join(text for text, _ in pieces[:last_reply])
    if tokenizer.bos_token and not getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.bos_token + prompt  # as encode_conversation puts it
    return prompt, messages[-1]["content"]


@torch.inference_mode()
def generate_replies(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    batch_size: int,
    max_length: int,
    max_new_tokens: int,
) -> GenerationPass:
    """Greedy replies (deterministic, so two models are compared on their best guess, not on sampling luck)."""
    device, out = device_of(model), GenerationPass()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # a decoder continues from the last real token of each prompt
    try:
        for batch in _batches(prompts, batch_size):
            encoded = tokenizer(
                list(batch),
                add_special_tokens=False,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            started = time.perf_counter()
            generated = model.generate(  # type: ignore[operator]
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            _synchronize(device)
            out.batch_seconds.append(time.perf_counter() - started)
            out.batch_sizes.append(len(batch))
            new_tokens = generated[:, encoded["input_ids"].shape[1] :]
            out.replies += [
                text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            ]
    finally:
        tokenizer.padding_side = side
    return out


def conversation_examples(
    rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> list[dict[str, list[int]]]:
    """SFT rows tokenised as in training: labels on the assistant's tokens only."""
    return [encode_conversation(to_messages(r), tokenizer, max_length) for r in rows]


def document_examples(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int, masked: bool
) -> list[dict[str, list[int]]]:
    """Plain documents, one example each (truncated); a masked LM gets its tokens masked with a fixed seed."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    rows = [{"input_ids": ids} for ids in encoded["input_ids"]]
    if not masked:
        return [{"input_ids": r["input_ids"], "labels": list(r["input_ids"])} for r in rows]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, return_tensors="pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(MLM_SEED)
        batch = collator(rows)  # padding is a special token: never masked
    return [
        {"input_ids": batch["input_ids"][i, :n].tolist(), "labels": batch["labels"][i, :n].tolist()}
        for i, n in enumerate(len(r["input_ids"]) for r in rows)
    ]


@torch.inference_mode()
def example_losses(
    model: nn.Module, examples: Sequence[dict[str, list[int]]], pad_id: int, batch_size: int, causal: bool
) -> LossPass:
    """Summed token NLL per example, so perplexity (and its bootstrap) can pool tokens over any subset."""
    device, out = device_of(model), LossPass()
    for batch in _batches(examples, batch_size):
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = (
                torch.tensor(e["input_ids"]),
                torch.tensor(e["labels"]),
                1,
            )
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        started = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        _synchronize(device)
        out.batch_seconds.append(time.perf_counter() - started)
        out.batch_sizes.append(len(batch))
        if causal:  # token t predicts token t+1
            logits, labels = logits[:, :-1], labels[:, 1:]
        nll = nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
        )
        out.nll += nll.sum(dim=1).tolist()
        out.tokens += (labels != IGNORE_INDEX).sum(dim=1).tolist()
    return out


def perplexity_statistic(nll: Sequence[float], tokens: Sequence[int]) -> Any:
    """Perplexity pooled over a subset of examples (exp of total NLL over total tokens)."""
    nll_array, token_array = np.asarray(nll, dtype=float), np.asarray(tokens, dtype=float)

    def statistic(indices: np.ndarray) -> float:
        count = token_array[indices].sum()
        return float(np.exp(nll_array[indices].sum() / count)) if count else float("nan")

    return statistic
