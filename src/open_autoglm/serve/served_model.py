"""The model behind the server: what it is called, which routes its task serves, and its classification pass."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.predict import device_of, prompt_and_reference


@dataclass
class ServedModel:
    name: str
    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    meta: dict[str, Any]
    # One forward pass at a time: generate() and the batcher's worker run in threads on one shared model.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generates(self) -> bool:
        return self.meta.get("objective") == "causal_lm"

    @property
    def classifies(self) -> bool:
        return self.meta.get("objective") == "seq_cls"

    @property
    def labels(self) -> list[str]:
        return list(self.meta.get("labels") or [])

    @property
    def context_length(self) -> int | None:
        """Positions the model has (prompt plus reply must fit), when its config says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    @torch.inference_mode()
    def classify(self, texts: list[str]) -> list[dict[str, float]]:
        """Label probabilities for each text, in one forward pass."""
        max_length = self.context_length or self.tokenizer.model_max_length
        encoded = self.tokenizer(
            texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device_of(self.model))
        with self.lock:
            probabilities = self.model(**encoded).logits.float().softmax(-1)  # (B, labels)
        return [dict(zip(self.labels, row, strict=True)) for row in probabilities.tolist()]

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The conversation rendered exactly as training rendered it, up to where the assistant's reply starts."""
        placeholder = {"role": "assistant", "content": "…"}  # prompt_and_reference wants a reply to cut off
        prompt, _ = prompt_and_reference({"messages": [*messages, placeholder]}, self.tokenizer)
        return prompt


def served_name(model_dir: Path) -> str:
    """The run's name for a `<run>/model` folder (what train writes), else the folder's own name."""
    model_dir = model_dir.resolve()
    return model_dir.parent.name if model_dir.name == "model" else model_dir.name
