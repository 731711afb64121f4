"""`recipe: multitask`: several labelled classification tasks sharing one backbone, top to bottom.

config → each task's data → tokenizer, backbone, method, heads → sampling and loss weighting → train
(resuming from the last finished epoch) → evaluate every task on validation and test → save → summary.
"""

from __future__ import annotations

import time
from typing import Any

from accelerate import Accelerator
from accelerate.utils import set_seed

from open_autoglm.config import Config, dump_config
from open_autoglm.distributed import is_main_process, main_process_first, sharded_training
from open_autoglm.models import choose_placement, load_tokenizer, resolve_model_path
from open_autoglm.multitask.data import TaskData, load_task
from open_autoglm.multitask.evaluation import evaluate_tasks, flatten
from open_autoglm.multitask.loop import SCHEDULERS, LoopResult, LoopSettings, train_loop
from open_autoglm.multitask.model import (
    MultitaskModel,
    apply_method,
    last_shared_layer,
    load_backbone,
    save_multitask,
)
from open_autoglm.multitask.sampling import task_probabilities
from open_autoglm.multitask.weighting import WEIGHTINGS
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import RunFolder, RunSummary, write_summary
from open_autoglm.train.method_setup import count_parameters
from open_autoglm.versions import versions


def run_multitask(config: Config, resume: bool = True) -> dict[str, Any]:
    """Train one backbone on every task of `config.multitask`; write the run folder; return the summary."""
    if config.recipe != "multitask":
        raise ValueError(f"run_multitask needs recipe: multitask, got {config.recipe!r}")
    check_supported(config)
    started = time.perf_counter()
    run_dir = config.run_dir
    folder = RunFolder(run_dir)
    if resume and (folder.summary.exists() or folder.checkpoints.exists()):
        check_resume_compatible(run_dir, config)  # a changed config must not continue this run's epochs
    if is_main_process():  # under accelerate launch / torchrun rank 0 writes the run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, folder.config)
    set_seed(config.train.seed)
    placement = choose_placement(config.model.device, config.model.precision)
    mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[placement.precision]
    accelerator = Accelerator(cpu=placement.device == "cpu", mixed_precision=mixed)

    # 1. Tokenizer, then each task's data (prepared into <run>/data/<task>/, reused while unchanged).
    model_path = resolve_model_path(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model)
    with main_process_first():  # rank 0 prepares the data, the others reuse it
        tasks = [
            load_task(config, spec, folder.data / spec.name, tokenizer) for spec in config.multitask.tasks
        ]

    # 2. Shared backbone with the method applied, one head per task.
    backbone = apply_method(load_backbone(model_path, config.model), config.method)
    model = MultitaskModel(backbone, {t.name: t.labels for t in tasks}).to(accelerator.device)

    # 3. Task sampling and loss weighting.
    mt = config.multitask
    probabilities = task_probabilities([t.rows("train") for t in tasks], mt.sampling, mt.temperature)
    weighting = (
        WEIGHTINGS.get(mt.loss_weighting)
        .build(
            [t.name for t in tasks],
            [t.weight for t in tasks],
            shared=last_shared_layer(backbone),
            alpha=mt.gradnorm_alpha,
            seed=config.train.seed,
        )
        .to(accelerator.device)
    )

    # 4. Train, evaluating on validation after every epoch.
    settings = loop_settings(config)

    def evaluate(split: str) -> dict[str, dict[str, float]]:
        return evaluate_tasks(model, tasks, split, tokenizer, settings.eval_batch_size, accelerator.device)

    result = train_loop(
        model,
        tasks,
        probabilities,
        weighting,
        tokenizer,
        accelerator,
        settings,
        (folder.metrics, folder.checkpoints),
        lambda: flatten(evaluate("validation")),
        resume,
    )

    # 5. Final evaluation on validation and test, then the model and the summary.
    metrics = {"validation": evaluate("validation")}
    if all(t.rows("test") for t in tasks):
        metrics["test"] = evaluate("test")
    trainable, total = count_parameters(model)  # before saving merges any LoRA weights into the backbone
    if accelerator.is_main_process:
        save_multitask(model, tokenizer, folder.model, model_meta(config, model_path, tasks))
    summary = build_summary(config, tasks, probabilities, metrics, result, time.perf_counter() - started)
    summary.placement = {"device": placement.device, "precision": placement.precision}
    summary.parameters = {"trainable": trainable, "total": total}
    if accelerator.is_main_process:
        write_summary(folder.summary, summary)
    return summary.to_json()


def check_supported(config: Config) -> None:
    """Refuse training settings this loop does not implement, instead of silently ignoring them."""
    train = config.train
    unsupported = {
        "train.optimizer.name (adamw only)": train.optimizer.name != "adamw",
        f"train.scheduler.name ({', '.join(SCHEDULERS)})": train.scheduler.name not in SCHEDULERS,
        "train.grad_accum (1 only)": train.grad_accum != 1,
        "train.loss (ce without class weights only)": train.loss.name != "ce"
        or train.loss.class_weights != "none",
        "train.layer_lr_decay (1 only)": train.layer_lr_decay != 1.0,
        "train.freeze_layers (0 only)": train.freeze_layers != 0,
        "train.head_warmup_ratio (0 only)": train.head_warmup_ratio != 0,
        "train.report_to (none)": bool(train.report_to),
        "FSDP / DeepSpeed (one process or DDP only)": sharded_training(),
    }
    bad = [key for key, is_bad in unsupported.items() if is_bad]
    if bad:
        raise ValueError(f"recipe: multitask does not support: {'; '.join(bad)}")


def loop_settings(config: Config) -> LoopSettings:
    train = config.train
    return LoopSettings(
        epochs=train.epochs,
        max_steps=train.max_steps,
        lr=train.lr,
        batch_size=train.batch_size,
        eval_batch_size=train.eval_batch_size or 2 * train.batch_size,
        max_grad_norm=train.max_grad_norm,
        weight_decay=train.optimizer.weight_decay,
        betas=train.optimizer.betas,
        scheduler=train.scheduler.name,
        warmup_ratio=train.scheduler.warmup_ratio,
        logging_steps=train.logging_steps,
        seed=train.seed,
        show_progress=not config.quiet,
    )


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
    result: LoopResult,
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
            "train_steps": result.steps,
            "train_examples": result.examples,
            "seconds": round(seconds, 2),
            "train_seconds": round(result.seconds, 2),
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
            "resumed_from_epoch": result.resumed_from_epoch,
        },
    )
