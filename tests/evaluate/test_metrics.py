"""Metrics against values worked out by hand: classification, Chinese BLEU and ROUGE-L, exact match,
metric directions, and the per-index statistics the bootstrap resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sacrebleu

from open_autoglm.evaluate.metrics import (
    CjkCharacterTokenizer,
    classification_metrics,
    classification_statistic,
    generation_metrics,
    generation_statistic,
    metric_is_higher_better,
)

LABELS = ["neg", "neu", "pos", "other"]  # "other" is never true and never predicted
# Confusion matrix (rows true, columns predicted) over neg/neu/pos:
#   neg: 3 0 0     precision: neg 3/5, neu 1/2, pos 2/2     recall: neg 3/3, neu 1/2, pos 2/4
#   neu: 1 1 0     F1: neg 2*.6*1/1.6 = 3/4, neu 1/2, pos 2*1*.5/1.5 = 2/3
#   pos: 1 1 2     accuracy 6/9; macro P (.6+.5+1)/3 = .7, macro R (1+.5+.5)/3 = 2/3
#                  macro F1 (3/4+1/2+2/3)/3 = 23/36; weighted F1 (3*3/4 + 2*1/2 + 4*2/3)/9 = 71/108
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 0, 0, 1, 2, 2, 1, 0]


def test_classification_metrics_by_hand() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero_division=0: the never-seen label warns about nothing
        report = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert report["metrics"] == pytest.approx(
        {
            "accuracy": 6 / 9,
            "precision_macro": 0.7,
            "recall_macro": 2 / 3,
            "f1_macro": 23 / 36,  # over the labels that occur, as the training-time f1_macro
            "f1_weighted": 71 / 108,
        }
    )
    assert report["per_class"]["neg"] == pytest.approx(
        {"precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 3}
    )
    assert report["per_class"]["pos"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 4}
    )
    assert report["per_class"]["other"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["confusion_matrix"] == {
        "labels": LABELS,
        "matrix": [[3, 0, 0, 0], [1, 1, 0, 0], [1, 1, 2, 0], [0, 0, 0, 0]],
    }


def test_classification_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match=r"label ids \[4\]"):
        classification_metrics([0, 4], [0, 1], LABELS)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        classification_metrics([0, 1], [0], LABELS)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        classification_statistic("auc", Y_TRUE, Y_PRED, LABELS)


def test_classification_statistic_on_a_subset() -> None:
    everything = classification_statistic("f1_macro", Y_TRUE, Y_PRED, LABELS)
    assert everything(np.arange(9)) == pytest.approx(23 / 36)
    # rows 0-4 are neg, neg, neg, neu, neu with predictions neg, neg, neg, neg, neu: 4 of 5 right
    assert classification_statistic("accuracy", Y_TRUE, Y_PRED, LABELS)(np.arange(5)) == pytest.approx(0.8)
    # a resample repeats rows: row 7 (pos predicted neu) twice and row 0 once -> 1 of 3 right
    assert classification_statistic("accuracy", Y_TRUE, Y_PRED, LABELS)(np.array([7, 7, 0])) == pytest.approx(
        1 / 3
    )


def test_chinese_bleu_counts_characters() -> None:
    reference, hypothesis = "今天天气很好", "今天天气不错"
    # No whitespace-separated word is shared, so word-level BLEU is 0 ...
    assert sacrebleu.corpus_bleu([hypothesis], [[reference]], tokenize="13a").score == 0.0
    # ... but characters are: 1-grams 4/6, 2-grams 3/5 (今天 天天 天气), 3-grams 2/4, 4-grams 1/3, same length.
    by_hand = 100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert generation_metrics([hypothesis], [reference])["bleu"] == pytest.approx(by_hand)
    assert generation_metrics([reference], [reference])["bleu"] == pytest.approx(100.0)


def test_bleu_statistic_matches_sacrebleu_corpus_score() -> None:
    rng = np.random.default_rng(0)
    words = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "slow", "big", "red"]
    references = [" ".join(rng.choice(words, 12)) for _ in range(50)]
    predictions = [" ".join(rng.choice(words, 10)) for _ in range(50)]
    statistic = generation_statistic("bleu", predictions, references)
    assert statistic(np.arange(50)) == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    subset = np.array([3, 3, 17, 40])
    expected = sacrebleu.corpus_bleu(
        [predictions[i] for i in subset], [[references[i] for i in subset]]
    ).score
    assert statistic(subset) == pytest.approx(expected)


def test_chinese_rouge_l_by_hand() -> None:
    # reference 我喜欢吃苹果, prediction 我不喜欢苹果: LCS 我喜欢苹果 = 5 of 6 characters each way -> F = 5/6
    assert generation_metrics(["我不喜欢苹果"], ["我喜欢吃苹果"])["rouge_l"] == pytest.approx(5 / 6)
    # English keeps words: "the cat" against "The cat sat": LCS 2, P 2/2, R 2/3 -> F 0.8
    assert generation_metrics(["the cat"], ["The cat sat"])["rouge_l"] == pytest.approx(0.8)
    # the corpus value is the mean over examples
    both = generation_metrics(["我不喜欢苹果", "the cat"], ["我喜欢吃苹果", "The cat sat"])
    assert both["rouge_l"] == pytest.approx((5 / 6 + 0.8) / 2)


def test_cjk_tokenizer_splits_characters_and_keeps_words() -> None:
    assert CjkCharacterTokenizer().tokenize("GPU显存 8GB, ok!") == ["gpu", "显", "存", "8gb", "ok"]


def test_exact_match_ignores_surrounding_whitespace_only() -> None:
    scores = generation_metrics([" Paris\n", "New  York", "42"], ["Paris", "New York", "42"])
    assert scores["exact_match"] == pytest.approx(2 / 3)  # inner whitespace still counts


def test_generation_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        generation_metrics(["a", "b"], ["a"])


@pytest.mark.parametrize(
    ("name", "higher"),
    [
        ("accuracy", True),
        ("precision_macro", True),
        ("f1_weighted", True),
        ("rouge_l", True),
        ("bleu", True),
        ("throughput_per_s", True),
        ("loss", False),
        ("perplexity", False),
        ("latency_ms_p95", False),
        ("peak_memory_mb", False),
        ("size", False),
    ],
)
def test_metric_direction(name: str, higher: bool) -> None:
    assert metric_is_higher_better(name) is higher


def test_unknown_metric_direction_is_an_error() -> None:
    with pytest.raises(ValueError, match="'wer'"):
        metric_is_higher_better("wer")
