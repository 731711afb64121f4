"""Our config → Hugging Face `TrainingArguments` and optimizer choice (builders: plain arguments out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from open_autoglm.config.sections import TrainConfig
from open_autoglm.models import Placement

_SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant_with_warmup",
    "plateau": "reduce_lr_on_plateau",
    "step": "constant",  # replaced by AutoglmTrainer.create_scheduler
}


def build_training_args(
    train: TrainConfig,
    placement: Placement,
    output_dir: Path,
    *,
    lm_task: bool,
    run_name: str,
    checkpoints: bool = True,
) -> TrainingArguments:
    """The `train` section as the Trainer's arguments; checkpoints go to `output_dir`, trackers see `run_name`."""
    eval_kwargs = _every("eval", train.eval_every)
    save_kwargs = _every("save", train.save_every) if checkpoints else {"save_strategy": "no"}
    scheduler = train.scheduler
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.eval_batch_size or 2 * train.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.lr,
        weight_decay=train.optimizer.weight_decay,
        max_grad_norm=train.max_grad_norm,
        lr_scheduler_type=_SCHEDULERS[scheduler.name],
        lr_scheduler_kwargs={"factor": scheduler.gamma, "patience": scheduler.patience}
        if scheduler.name == "plateau"
        else {},
        metric_for_best_model="loss" if scheduler.name == "plateau" else None,
        warmup_steps=scheduler.warmup_ratio,  # below 1: a share of the steps
        activation_checkpointing=train.gradient_checkpointing,
        bf16=placement.precision == "bf16",
        fp16=placement.precision == "fp16",
        use_cpu=placement.device == "cpu",
        train_sampling_strategy="group_by_length" if train.group_by_length else "random",
        length_column_name="length",
        remove_unused_columns=False,  # our collator drops the `length` column itself
        label_names=["labels"],
        prediction_loss_only=lm_task,
        # Under DDP the Trainer sums token counts over processes and scales the loss by their number; only
        # language-model losses divide by that count, a classifier's mean loss would come out W times too big.
        average_tokens_across_devices=lm_task,
        save_total_limit=train.save_total_limit,
        logging_steps=train.logging_steps,
        logging_nan_inf_filter=False,  # a NaN must surface, not be averaged away
        seed=train.seed,
        data_seed=train.seed,
        # TensorBoard gets its own writer per trial (see `tracker_callbacks`); the others go through the Trainer
        report_to=[t for t in train.report_to if t != "tensorboard"] or "none",
        run_name=run_name,
        disable_tqdm=True,  # our ProgressBarCallback draws the bar
        dataloader_num_workers=0,
        **eval_kwargs,
        **save_kwargs,
    )


def _every(kind: str, every: str | int) -> dict[str, Any]:
    if every == "epoch":
        return {f"{kind}_strategy": "epoch"}
    return {f"{kind}_strategy": "steps", f"{kind}_steps": every}


def optimizer_cls_and_kwargs(train: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    opt, lr = train.optimizer, train.lr
    if opt.name == "sgd":
        return torch.optim.SGD, {"lr": lr, "momentum": opt.momentum}
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    return cls, {"lr": lr, "betas": tuple(opt.betas)}
