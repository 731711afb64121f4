"""Step 3's second half: what the backbone kept or lost of a task it never trained on.

The second task's rows are prepared like any classification data (into the step's folder); each backbone —
original, domain-adapted, fine-tuned — is loaded in turn (one in memory at a time) and linearly probed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.config.sections import ModelConfig
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.models import choose_placement, load_finetuned, load_tokenizer, resolve_model_path
from open_autoglm.run_folder import RunFolder
from open_autoglm.transfer.probe import linear_probe, majority_accuracy, mean_pooled_features
from open_autoglm.transfer.steps import second_task_config

logger = logging.getLogger(__name__)
Backbone = Callable[[str], tuple[nn.Module, PreTrainedTokenizerBase]]  # device -> (model, tokenizer)


def backbones(config: Config, adapted_dir: Path, model_dir: Path) -> dict[str, Backbone]:
    """The three backbones the probe compares, as loaders (each is loaded only when its turn comes)."""
    local = config.model.model_copy(update={"revision": None})
    return {
        "original": lambda device: _bare(resolve_model_path(config.model.name), config.model, device),
        "adapted": lambda device: _bare(str(adapted_dir), local, device),
        "finetuned": lambda device: load_finetuned(
            model_dir, device, trust_remote_code=config.model.trust_remote_code
        )[:2],
    }


def probe_second_task(config: Config, step_dir: Path, loaders: dict[str, Backbone]) -> dict[str, Any]:
    """Probe accuracy of each backbone on the second task's test split (validation when it has none).

    `loaders` must include "original": the others are reported as changes against it.
    """
    second = second_task_config(config, step_dir)
    splits = load_data(DataRequest.of(second), RunFolder(step_dir).data).splits
    scored = "test" if splits.get("test") else "validation"
    data = second.data

    def texts(split: str) -> list[str]:
        return [data.text_prefix + r["text"] for r in splits[split]]

    train_y = [str(r["label"]) for r in splits["train"]]
    test_y = [str(r["label"]) for r in splits[scored]]
    device = choose_placement(config.model.device, "fp32").device
    accuracy = {}
    for name, load in loaders.items():
        model, tokenizer = load(device)
        train_x = mean_pooled_features(model, tokenizer, texts("train"), data.max_length)
        test_x = mean_pooled_features(model, tokenizer, texts(scored), data.max_length)
        accuracy[name] = linear_probe(train_x, train_y, test_x, test_y, seed=config.train.seed).accuracy
        logger.info("second task: %s backbone probes at %.4f accuracy", name, accuracy[name])
        del model
        gc.collect()
    return {
        "metric": "accuracy",
        "split": scored,
        "rows": {"train": len(train_y), scored: len(test_y)},
        "majority_accuracy": majority_accuracy(train_y, test_y),
        "accuracy": accuracy,
        # the change against the original backbone: negative is what adaptation or fine-tuning lost
        "change": {name: accuracy[name] - accuracy["original"] for name in accuracy if name != "original"},
    }


def _bare(path: str, model_cfg: ModelConfig, device: str) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """The backbone without any head (a saved LM's head is simply not loaded)."""
    kwargs: dict[str, Any] = {"trust_remote_code": model_cfg.trust_remote_code, "dtype": torch.float32}
    if model_cfg.revision:
        kwargs["revision"] = model_cfg.revision
    model = AutoModel.from_pretrained(path, **kwargs)
    return model.to(device), load_tokenizer(path, model_cfg)
