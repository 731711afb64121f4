"""Score one model on the evaluation rows, per task: the metrics, and for each metric a statistic over example
indices (so the bootstrap can resample the rows) — plus the batched pass and a batch-size-1 pass for speed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.metrics import (
    classification_metrics,
    classification_statistic,
    generation_metrics,
    generation_statistic,
)
from open_autoglm.evaluate.predict import (
    Pass,
    conversation_examples,
    document_examples,
    example_losses,
    generate_replies,
    perplexity_statistic,
    predict_labels,
    prompt_and_reference,
)
from open_autoglm.tasks.classification import plugin_metrics

Statistic = Callable[[np.ndarray], float]
CLASSIFICATION_INTERVALS = ("accuracy", "f1_macro")  # metrics that get a bootstrap interval
GENERATION_INTERVALS = ("exact_match", "rouge_l", "bleu")
SAMPLES_KEPT = 5  # generated replies shown in eval.json next to their references


@dataclass
class ScoringOptions:
    batch_size: int
    max_length: int
    text_prefix: str = ""
    max_new_tokens: int = 64
    latency_examples: int = 32  # rows timed one at a time for the per-example latency
    labels: list[str] | None = None  # classification: the model's label names, id order
    objective: str = "seq_cls"
    extra_metrics: tuple[str, ...] = ()  # classification: plugin metrics (train.metrics)


@dataclass
class Scored:
    metrics: dict[str, float]
    statistics: dict[str, Statistic]
    batched: Pass
    single: Pass
    details: dict[str, Any] = field(default_factory=dict)  # per_class, confusion_matrix, samples


def score(
    task: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    options: ScoringOptions,
) -> Scored:
    if task == "classification":
        return _classification(model, tokenizer, rows, options)
    if task == "sft":
        return _generation(model, tokenizer, rows, options)
    if task == "pretrain":
        return _language_model(model, tokenizer, rows, options)
    raise ValueError(f"autoglm eval does not know task {task!r}; it knows classification, sft, pretrain")


def _classification(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], o: ScoringOptions
) -> Scored:
    labels = o.labels or []
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({str(r["label"]) for r in rows} - set(index))
    if unknown:
        raise ValueError(
            f"the evaluation rows have labels the model was not trained on: {', '.join(unknown)} "
            f"(the model knows: {', '.join(labels)})"
        )
    texts = [o.text_prefix + str(r["text"]) for r in rows]
    truth = [index[str(r["label"])] for r in rows]
    batched = predict_labels(model, tokenizer, texts, o.batch_size, o.max_length)
    single = predict_labels(model, tokenizer, texts[: o.latency_examples + 1], 1, o.max_length)
    report = classification_metrics(truth, batched.predicted, labels)
    report["metrics"] |= plugin_metrics(o.extra_metrics, batched.predicted, truth)
    statistics = {
        name: classification_statistic(name, truth, batched.predicted, labels)
        for name in CLASSIFICATION_INTERVALS
    }
    details = {"per_class": report["per_class"], "confusion_matrix": report["confusion_matrix"]}
    return Scored(report["metrics"], statistics, batched, single, details)


def _generation(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], o: ScoringOptions
) -> Scored:
    pairs = [prompt_and_reference(r, tokenizer) for r in rows]
    prompts, references = [p for p, _ in pairs], [r for _, r in pairs]
    batched = generate_replies(model, tokenizer, prompts, o.batch_size, o.max_length, o.max_new_tokens)
    single = generate_replies(
        model, tokenizer, prompts[: o.latency_examples + 1], 1, o.max_length, o.max_new_tokens
    )
    metrics = generation_metrics(batched.replies, references)
    statistics = {
        name: generation_statistic(name, batched.replies, references) for name in GENERATION_INTERVALS
    }
    losses = example_losses(
        model,
        conversation_examples(rows, tokenizer, o.max_length),
        tokenizer.pad_token_id,
        o.batch_size,
        causal=True,
    )
    statistics["perplexity"] = perplexity_statistic(losses.nll, losses.tokens)
    metrics["perplexity"] = statistics["perplexity"](np.arange(len(rows)))
    samples = [
        {"prompt": r.get("prompt", ""), "reference": ref, "reply": reply}
        for r, ref, reply in zip(rows[:SAMPLES_KEPT], references, batched.replies, strict=False)
    ]
    return Scored(metrics, statistics, batched, single, {"samples": samples})


def _language_model(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], o: ScoringOptions
) -> Scored:
    masked = o.objective == "masked_lm"
    texts = [o.text_prefix + str(r["text"]) for r in rows]
    examples = document_examples(texts, tokenizer, o.max_length, masked=masked)
    pad = tokenizer.pad_token_id
    batched = example_losses(model, examples, pad, o.batch_size, causal=not masked)
    single = example_losses(model, examples[: o.latency_examples + 1], pad, 1, causal=not masked)
    statistic = perplexity_statistic(batched.nll, batched.tokens)
    return Scored({"perplexity": statistic(np.arange(len(rows)))}, {"perplexity": statistic}, batched, single)
