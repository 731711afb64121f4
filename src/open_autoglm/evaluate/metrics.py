"""Quality metrics of one evaluation, each also as a statistic over example indices so that the bootstrap
can recompute it on resampled rows.

Every score comes from a library: scikit-learn (classification), rouge-score (ROUGE-L), sacrebleu (BLEU).
Hugging Face `evaluate` is deliberately not used: its metrics are scripts fetched from the Hub at run time,
and an evaluation must run offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from functools import partial
from typing import Any, TypeVar

import numpy as np
from rouge_score.rouge_scorer import RougeScorer
from rouge_score.tokenizers import Tokenizer
from sacrebleu.metrics import BLEU
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

T = TypeVar("T")
Statistic = Callable[[np.ndarray], float]  # example indices (one resample) -> the metric on those examples

# Averages run over the labels present in the truth or the predictions (scikit-learn's default), as the
# training-time f1_macro does, so the gate compares like with like and a label missing from the test rows
# does not count as an F1 of 0.
CLASSIFICATION_SCORES: dict[str, Callable[..., float]] = {
    "accuracy": accuracy_score,
    "precision_macro": partial(precision_score, average="macro", zero_division=0),
    "recall_macro": partial(recall_score, average="macro", zero_division=0),
    "f1_macro": partial(f1_score, average="macro", zero_division=0),
    "f1_weighted": partial(f1_score, average="weighted", zero_division=0),
}

# Glob patterns of metric names by direction; the speed names are those of evaluate/speed.py.
HIGHER_IS_BETTER = (
    "accuracy",
    "precision*",
    "recall*",
    "f1*",
    "exact_match",
    "rouge*",
    "bleu",
    "throughput*",
)
LOWER_IS_BETTER = ("loss", "perplexity", "latency*", "batch_latency*", "memory*", "peak_*", "size*", "params")

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # kana and Han ideographs
_HAS_CJK = re.compile(f"[{_CJK}]")
_ROUGE_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")  # one CJK character, or a run of other letters/digits


def metric_is_higher_better(name: str) -> bool:
    """The direction in which a metric improves, for the regression gate."""
    if any(fnmatchcase(name, pattern) for pattern in HIGHER_IS_BETTER):
        return True
    if any(fnmatchcase(name, pattern) for pattern in LOWER_IS_BETTER):
        return False
    raise ValueError(
        f"metric {name!r} has no known direction; higher is better for {', '.join(HIGHER_IS_BETTER)}; "
        f"lower is better for {', '.join(LOWER_IS_BETTER)}"
    )


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """Overall and per-class scores and the confusion matrix (rows: true label, columns: predicted), with
    every label listed even when it is never predicted. `y_true`/`y_pred` are indices into `labels`."""
    truth, predicted = _label_ids(y_true, y_pred, labels)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=ids, zero_division=0
    )
    return {
        "metrics": {name: float(score(truth, predicted)) for name, score in CLASSIFICATION_SCORES.items()},
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": list(labels),
            "matrix": confusion_matrix(truth, predicted, labels=ids).tolist(),
        },
    }


def classification_statistic(
    name: str, y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]
) -> Statistic:
    """Classification metric `name` recomputed on the examples at the given indices."""
    score = _known(name, CLASSIFICATION_SCORES)
    truth, predicted = _label_ids(y_true, y_pred, labels)
    return lambda indices: float(score(truth[indices], predicted[indices]))


class CjkCharacterTokenizer(Tokenizer):
    """rouge-score's default tokenizer keeps only [a-z0-9] runs, so Chinese text has no tokens at all. This
    one makes each CJK character a token (Chinese writes no spaces between words), as sacrebleu's zh
    tokenizer does, and keeps other words whole, lowercased like the default."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall(text.lower())


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Exact match (0..1, surrounding whitespace ignored), mean ROUGE-L F-measure (0..1) and corpus BLEU
    (0..100, character level when the references contain CJK characters)."""
    everything = np.arange(len(predictions))
    return {name: generation_statistic(name, predictions, references)(everything) for name in _GENERATION}


def generation_statistic(name: str, predictions: Sequence[str], references: Sequence[str]) -> Statistic:
    """Generation metric `name` recomputed on the examples at the given indices."""
    build = _known(name, _GENERATION)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    return build(list(predictions), list(references))


def _exact_match(predictions: list[str], references: list[str]) -> Statistic:
    matches = [p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)]
    return _mean_over(np.array(matches, dtype=float))


def _rouge_l(predictions: list[str], references: list[str]) -> Statistic:
    scorer = RougeScorer(["rougeL"], tokenizer=CjkCharacterTokenizer())
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return _mean_over(np.array(scores, dtype=float))


def _bleu(predictions: list[str], references: list[str]) -> Statistic:
    """Corpus BLEU of a subset from its summed per-sentence n-gram counts, as sacrebleu's own paired
    bootstrap does (sacrebleu/significance.py): each sentence is tokenized once, not once per resample.
    The two methods are private in sacrebleu; tests check the result against its public corpus_bleu."""
    bleu = BLEU(tokenize="zh" if any(_HAS_CJK.search(r) for r in references) else "13a")
    stats = np.array(
        bleu._extract_corpus_statistics(predictions, [references])
    )  # (n, 2 + 2 * max_ngram_order)
    return lambda indices: float(bleu._compute_score_from_stats(stats[indices].sum(axis=0)).score)


_GENERATION: dict[str, Callable[[list[str], list[str]], Statistic]] = {
    "exact_match": _exact_match,
    "rouge_l": _rouge_l,
    "bleu": _bleu,
}
GENERATION_METRICS = tuple(_GENERATION)  # the names generation_metrics reports


def _mean_over(values: np.ndarray) -> Statistic:
    return lambda indices: float(values[indices].mean())


def _label_ids(
    y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not len(truth):
        raise ValueError("no predictions to score")
    outside = sorted((set(truth.tolist()) | set(predicted.tolist())) - set(range(len(labels))))
    if outside:
        raise ValueError(f"label ids {outside} are not indices into the {len(labels)} labels {labels}")
    return truth, predicted


def _known(name: str, table: dict[str, T]) -> T:
    if name not in table:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(table)}")
    return table[name]
