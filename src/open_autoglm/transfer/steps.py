"""The configs of the transfer run's steps, derived from the one `recipe: transfer` config.

Each step is an ordinary run of its own task (pretrain, classification) in its own folder under
<run>/steps/, so `fit` trains it, checkpoints it and resumes it like any other run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from open_autoglm.config import Config

# Settings of the labelled data that say nothing about plain domain text (labels, columns, split files).
_LABELLED_ONLY = (
    "train",
    "validation",
    "test",
    "format",
    "columns",
    "text_field",
    "label_field",
    "max_rows",
    "augment",
)


def pretrain_config(config: Config, step_dir: Path) -> Config:
    """Step 1: continued pretraining of the whole model on the domain text (masked or causal LM by architecture).

    The domain text is cleaned like the labelled data and gets no test split (its validation split measures
    the domain perplexity). Layer freezing, layer-wise decay and distillation belong to fine-tuning: off here.
    A masked-LM head the checkpoint lacks trains alone first (`transfer.pretrain_head_warmup`).
    """
    transfer = config.transfer
    data = config.data.model_dump(exclude=set(_LABELLED_ONLY))
    data |= {
        "train": transfer.domain_text,
        "text_field": transfer.text_field,
        "max_rows": transfer.max_rows,
        "test_ratio": 0.0,
    }
    train = config.train.model_dump() | {
        "lr": transfer.pretrain_lr,
        "epochs": transfer.pretrain_epochs,
        "max_steps": -1,
        "layer_lr_decay": 1.0,
        "freeze_layers": 0,
        "head_warmup_ratio": transfer.pretrain_head_warmup,
    }
    return _derived(
        config, step_dir, task="pretrain", data=data, method={"name": "full"}, train=train, distill={}
    )


def finetune_config(config: Config, step_dir: Path, model_name: str) -> Config:
    """Step 2: the labelled task with the config's method and training settings, starting from `model_name`
    (the adapted model, or the original one for the control run)."""
    model = config.model.model_dump() | {"name": model_name}
    if model_name != config.model.name:  # a local folder written by step 1 has no hub revision
        model["revision"] = None
    return _derived(config, step_dir, task="classification", model=model)


def second_task_config(config: Config, step_dir: Path) -> Config:
    """Step 3: the second task's labelled rows, read and split like any classification data."""
    second = config.transfer.second_task
    if second is None:
        raise ValueError("transfer.second_task is not set")
    return _derived(config, step_dir, task="classification", data=second.model_dump())


def _derived(config: Config, step_dir: Path, **sections: Any) -> Config:
    """A copy of `config` run in `step_dir`, with whole sections replaced (and validated again)."""
    raw = (
        config.model_dump()
        | {"output_dir": step_dir.parent, "name": step_dir.name, "recipe": "single"}
        | sections
    )
    return Config.model_validate(raw)
