"""Linear probes: how much of a task a frozen backbone's features still tell, whatever fine-tuning did to it.

A logistic regression on mean-pooled last-layer features, fitted on the task's train rows and scored on its
test rows. Run on the original, the domain-adapted and the fine-tuned backbone, it shows what the adaptation
kept or lost of a second task the model never trained on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.predict import device_of
from open_autoglm.models.pooling import mean_pool


@dataclass
class ProbeScore:
    """One backbone's probe on one task."""

    accuracy: float
    train_rows: int
    test_rows: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


@torch.inference_mode()
def mean_pooled_features(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 32,
) -> np.ndarray:
    """Last hidden layer averaged over each text's real tokens: (N, hidden).

    Works for a bare backbone, a model with any head and a peft model alike, since all return hidden states.
    """
    model.eval()
    device, chunks = device_of(model), []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]  # (B, T, H)
        chunks.append(mean_pool(hidden, enc["attention_mask"]).float().cpu().numpy())
    return np.concatenate(chunks)


def linear_probe(
    train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray, test_y: Sequence[str], seed: int = 0
) -> ProbeScore:
    """Accuracy of a (standardised) logistic regression fitted on the train features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(train_x, list(train_y))
    accuracy = float(np.mean(probe.predict(test_x) == np.asarray(test_y)))
    return ProbeScore(accuracy=accuracy, train_rows=len(train_y), test_rows=len(test_y))


def majority_accuracy(train_y: Sequence[str], test_y: Sequence[str]) -> float:
    """Accuracy of always answering the most frequent train label: the floor a probe must beat."""
    majority = Counter(train_y).most_common(1)[0][0]
    return sum(y == majority for y in test_y) / max(len(test_y), 1)
