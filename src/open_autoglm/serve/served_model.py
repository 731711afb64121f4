"""The model behind the server: what it is called, which routes its task serves, and its classification pass —
through PyTorch, or through an ONNX Runtime session for an exported (e.g. INT8) classifier."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.predict import device_of, prompt_and_reference


@dataclass
class ServedModel:
    name: str
    tokenizer: PreTrainedTokenizerBase
    meta: dict[str, Any]
    context_length: int | None  # positions the model has (prompt plus reply must fit), when its config says
    model: nn.Module | None = None  # PyTorch: every task
    session: Any = None  # an onnxruntime.InferenceSession: classifiers exported by `autoglm export`
    # One forward pass at a time: generate() and the batchers' workers run in threads on one shared model.
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
    def torch_model(self) -> nn.Module:
        """The PyTorch model: generation runs only there."""
        if self.model is None:
            raise ValueError(f"{self.name} runs on ONNX Runtime, which serves classification only")
        return self.model

    @property
    def backend(self) -> str:
        return "onnxruntime" if self.session is not None else "pytorch"

    def classify(self, texts: list[str]) -> list[dict[str, float]]:
        """Label probabilities for each text, in one forward pass."""
        max_length = self.meta.get("max_length") or self.context_length or self.tokenizer.model_max_length
        texts = [self.meta.get("text_prefix", "") + text for text in texts]
        framework = "np" if self.session is not None else "pt"
        encoded = self.tokenizer(
            texts, truncation=True, max_length=max_length, padding=True, return_tensors=framework
        )
        with self.lock:
            logits = self._onnx_logits(encoded) if self.session is not None else self._torch_logits(encoded)
        probabilities = torch.from_numpy(logits).float().softmax(-1)  # (B, labels)
        return [dict(zip(self.labels, row, strict=True)) for row in probabilities.tolist()]

    @torch.inference_mode()
    def _torch_logits(self, encoded: Any) -> np.ndarray:
        assert self.model is not None
        return self.model(**encoded.to(device_of(self.model))).logits.float().cpu().numpy()

    def _onnx_logits(self, encoded: Any) -> np.ndarray:
        names = [i.name for i in self.session.get_inputs()]
        return self.session.run(["logits"], {n: encoded[n].astype(np.int64) for n in names})[0]

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The conversation rendered exactly as training rendered it, up to where the assistant's reply starts."""
        placeholder = {"role": "assistant", "content": "…"}  # prompt_and_reference wants a reply to cut off
        prompt, _ = prompt_and_reference({"messages": [*messages, placeholder]}, self.tokenizer)
        return prompt


def served_name(model_path: Path) -> str:
    """The run's name for a `<run>/model` folder (what train writes) or an export's file, else the folder's name."""
    model_path = model_path.resolve()
    if model_path.suffix == ".onnx":
        export_dir = model_path.parent
        run = export_dir.parent.name if export_dir.name == "export" else export_dir.name
        return f"{run}-{model_path.name.removesuffix('.onnx').replace('.', '-')}"
    return model_path.parent.name if model_path.name == "model" else model_path.name
