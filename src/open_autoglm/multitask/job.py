"""`recipe: multitask`: several labelled classification tasks sharing one backbone, top to bottom.

config → each task's data → tokenizer, backbone, method, heads and loss weighting → the shared Trainer with
a task-mixed step (resuming from the last complete checkpoint) → evaluate every task on validation and test →
save → summary.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainingArguments, set_seed

from open_autoglm.config import Config, dump_config
from open_autoglm.distributed import is_main_process, main_process_first, sharded_training
from open_autoglm.models import Placement, choose_placement, load_tokenizer, resolve_model_path
from open_autoglm.multitask.data import TaskData, collate, joined_rows, load_task
from open_autoglm.multitask.evaluation import flatten, unflatten
from open_autoglm.multitask.model import (
    MultitaskModel,
    apply_method,
    last_shared_layer,
    load_backbone,
    save_multitask,
)
from open_autoglm.multitask.sampling import task_probabilities
from open_autoglm.multitask.trainer import MultitaskTrainer
from open_autoglm.multitask.weighting import WEIGHTINGS
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import RunFolder, RunSummary, TrialFolder, write_summary
from open_autoglm.train.arguments import build_training_args, optimizer_cls_and_kwargs
from open_autoglm.train.job import (
    class_weights,
    evaluate,
    examples_per_step,
    has_progress,
    head_warmup,
    run_callbacks,
    show_progress,
    start_or_resume,
    total_optimizer_steps,
    train_resuming,
)
from open_autoglm.train.layerwise import freeze_bottom_layers
from open_autoglm.train.method_setup import count_parameters
from open_autoglm.versions import versions

HEADS = ("heads", "weighting")  # what trains from the first step, under train.head_warmup_ratio too


def run_multitask(config: Config, resume: bool = True) -> dict[str, Any]:
    """Train one backbone on every task of `config.multitask`; write the run folder; return the summary."""
    if config.recipe != "multitask":
        raise ValueError(f"run_multitask needs recipe: multitask, got {config.recipe!r}")
    if sharded_training():
        raise ValueError("recipe: multitask runs on one process or under DDP, not FSDP / DeepSpeed")
    started = time.perf_counter()
    run_dir = config.run_dir
    folder = RunFolder(run_dir)
    trial_dir = folder.trial(0).path  # its one training run, laid out as a train run's
    if resume and has_progress(run_dir):
        check_resume_compatible(run_dir, config)  # a changed config must not continue this run's steps
    if is_main_process():  # under accelerate launch / torchrun rank 0 writes the run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, folder.config)
    checkpoint = start_or_resume(trial_dir, resume)
    set_seed(config.train.seed)
    placement = choose_placement(config.model.device, config.model.precision)

    # 1. Tokenizer, then each task's data (prepared into <run>/data/<task>/, reused while unchanged).
    model_path = resolve_model_path(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model)
    with main_process_first():  # rank 0 prepares the data, the others reuse it
        tasks = [
            load_task(config, spec, folder.data / spec.name, tokenizer) for spec in config.multitask.tasks
        ]

    # 2. Shared backbone with the method applied, a head per task, and the loss weighting beside them.
    mt = config.multitask
    backbone = apply_method(load_backbone(model_path, config.model), config.method)
    weighting = WEIGHTINGS.get(mt.loss_weighting).build(
        [t.name for t in tasks],
        [t.weight for t in tasks],
        shared=last_shared_layer(backbone),
        alpha=mt.gradnorm_alpha,
        seed=config.train.seed,
    )
    model = MultitaskModel(backbone, {t.name: t.labels for t in tasks}, weighting=weighting)
    freeze_bottom_layers(model, config.train.freeze_layers)
    rows_per_task = math.ceil(sum(t.rows("train") for t in tasks) / len(tasks))
    steps = total_optimizer_steps(rows_per_task, config.train)
    warmup = head_warmup(config.train.head_warmup_ratio, model, HEADS, ("heads",), steps)

    # 3. The shared Trainer, with a step of one sub-batch per drawn task and the weighting's backward.
    probabilities = task_probabilities([t.rows("train") for t in tasks], mt.sampling, mt.temperature)
    trainer = MultitaskTrainer(
        model=model,
        args=training_args(config, placement, trial_dir, len(tasks)),
        train_dataset=joined_rows(tasks, "train"),
        eval_dataset=joined_rows(tasks, "validation"),
        data_collator=lambda rows: collate(tokenizer, rows),
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(config.train),
        callbacks=run_callbacks(
            config,
            trial_dir,
            language_model=False,
            evals_per_epoch=config.train.evals_per_epoch if config.train.eval_every == "epoch" else None,
        )
        + warmup,
        tasks=tasks,
        probabilities=probabilities,
        task_class_weights=[
            class_weights(
                config.train.loss.class_weights,
                {"labels": [e["labels"] for e in t.encoded["train"]]},
                t.labels,
            )
            for t in tasks
        ],
        loss_name=config.train.loss.name,
        focal_gamma=config.train.loss.focal_gamma,
        step_schedule=(config.train.scheduler.step_size, config.train.scheduler.gamma)
        if config.train.scheduler.name == "step"
        else None,
        layer_lr_decay=config.train.layer_lr_decay,
    )
    show_progress(trainer, config.quiet)

    # 4. Train (resuming from the last complete checkpoint), then evaluate every task on validation and test.
    train_seconds = train_resuming(trainer, checkpoint)
    metrics = {"validation": unflatten(evaluate(trainer, trainer.eval_dataset), tasks)}
    if all(t.rows("test") for t in tasks):
        metrics["test"] = unflatten(evaluate(trainer, joined_rows(tasks, "test"), prefix="test"), tasks)

    # 5. The model (backbone with the method merged, the heads) and the summary.
    trainable, total = count_parameters(model)  # before saving merges any LoRA weights into the backbone
    if is_main_process():
        save_multitask(model, tokenizer, folder.model, model_meta(config, model_path, tasks))
    summary = build_summary(config, tasks, probabilities, metrics, trainer, time.perf_counter() - started)
    summary.compute["train_seconds"] = round(train_seconds, 2)
    summary.sections["resumed_from"] = str(checkpoint) if checkpoint else None
    summary.placement = {"device": placement.device, "precision": placement.precision}
    summary.parameters = {"trainable": trainable, "total": total}
    if is_main_process():
        write_summary(folder.summary, summary)
    return summary.to_json()


def training_args(config: Config, placement: Placement, trial_dir: Path, n_tasks: int) -> TrainingArguments:
    """The run's TrainingArguments, with a step of one `train.batch_size` sub-batch per task and the task
    position as a second label, so evaluation hands each row's task to the metrics."""
    checkpoints = TrialFolder(trial_dir).checkpoints
    args = build_training_args(config.train, placement, checkpoints, lm_task=False, run_name=config.name)
    args.per_device_train_batch_size = config.train.batch_size * n_tasks
    args.label_names = ["labels", "task"]
    return args


def model_meta(config: Config, model_path: str, tasks: list[TaskData]) -> dict[str, Any]:
    """multitask.json: what reloading needs (tasks, labels, heads) and how inputs were encoded."""
    return {
        "task": "multitask",
        "base_model": model_path,
        "method": config.method.name,
        "trust_remote_code": config.model.trust_remote_code,
        "tasks": [
            {
                "name": t.name,
                "labels": t.labels,
                "head": f"heads.{t.name}",
                "text_prefix": spec.data.text_prefix,
                "max_length": spec.data.max_length,
            }
            for t, spec in zip(tasks, config.multitask.tasks, strict=True)
        ],
    }


def build_summary(
    config: Config,
    tasks: list[TaskData],
    probabilities: list[float],
    metrics: dict[str, dict[str, dict[str, float]]],
    trainer: MultitaskTrainer,
    seconds: float,
) -> RunSummary:
    """summary.json; `metric` is the mean accuracy over tasks, per-task entries beside it."""
    validation, test = flatten(metrics["validation"]), flatten(metrics["test"]) if "test" in metrics else None
    baseline_split = "test" if test is not None else "validation"
    majority = {t.name: t.majority_accuracy(baseline_split) for t in tasks}
    baseline = {"majority_accuracy": sum(majority.values()) / len(majority)}
    baseline |= {f"{task}/majority_accuracy": value for task, value in majority.items()}
    mt = config.multitask
    return RunSummary(
        task="multitask",
        metric="accuracy",
        greater_is_better=True,
        method=config.method.name,
        model=config.model.name,
        best={
            "params": {
                "method.name": config.method.name,
                "train.lr": config.train.lr,
                "train.batch_size": config.train.batch_size,
                "train.epochs": config.train.epochs,
                "multitask.sampling": mt.sampling,
                "multitask.loss_weighting": mt.loss_weighting,
            },
            "metrics": test if test is not None else validation,
            "validation": validation,
            "test": test,
        },
        baseline={"metrics": baseline, "split": baseline_split},
        trials={"complete": 1, "pruned": 0, "failed": 0},
        compute={
            "train_steps": trainer.state.global_step,
            "train_examples": trainer.state.global_step * examples_per_step(trainer.args),
            "seconds": round(seconds, 2),
        },
        versions=versions(),
        sections={
            "tasks": {
                t.name: {
                    "labels": t.labels,
                    "rows": {split: t.rows(split) for split in t.encoded},
                    "sampling_probability": p,
                    "validation": metrics["validation"][t.name],
                    "test": metrics.get("test", {}).get(t.name),
                    "majority_accuracy": majority[t.name],
                }
                for t, p in zip(tasks, probabilities, strict=True)
            },
        },
    )
