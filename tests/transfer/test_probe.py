"""The linear probe and its features: separable features probe perfectly, padding never changes a text's
features, and the majority floor is what always answering the commonest label scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from open_autoglm.transfer.probe import linear_probe, majority_accuracy, mean_pooled_features


def test_separable_features_probe_perfectly_and_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    y = ["a", "b"] * 50
    signal = np.array([[1.0] if label == "a" else [-1.0] for label in y])
    features = np.hstack([signal, rng.normal(size=(100, 7))])
    assert linear_probe(features[:60], y[:60], features[60:], y[60:]).accuracy == 1.0
    noise = rng.normal(size=(100, 8))
    score = linear_probe(noise[:60], y[:60], noise[60:], y[60:])
    assert score.accuracy < 0.8
    assert (score.train_rows, score.test_rows) == (60, 40)


def test_majority_accuracy() -> None:
    assert majority_accuracy(["x", "x", "y"], ["x", "y", "y", "y"]) == 0.25


def test_features_ignore_padding(tiny_encoder: Path) -> None:
    model = AutoModel.from_pretrained(tiny_encoder)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    short, long = "the team won the match", "the team won the match in the city after a long season"
    alone = mean_pooled_features(model, tokenizer, [short], max_length=32)
    batched = mean_pooled_features(model, tokenizer, [short, long], max_length=32)
    assert batched.shape == (2, model.config.hidden_size)
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)
    assert not np.allclose(batched[0], batched[1])


def test_features_of_a_model_with_a_head_are_its_backbones(tiny_encoder: Path) -> None:
    from transformers import AutoModelForMaskedLM

    texts = ["the team won the match"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    bare = mean_pooled_features(AutoModel.from_pretrained(tiny_encoder), tokenizer, texts, 32)
    headed = mean_pooled_features(AutoModelForMaskedLM.from_pretrained(tiny_encoder), tokenizer, texts, 32)
    assert bare == pytest.approx(headed, abs=1e-5)
