"""`autoglm train`: one fine-tuning run, top to bottom.

config → data splits → tokenizer and model → method → trainer → (resume) train → evaluate → save → summary.
`fit` does the training part and returns the live objects (the search runs it once per trial);
`run_train` adds saving and the summary.
"""

from __future__ import annotations

import errno
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import prepare_model_for_kbit_training
from safetensors import SafetensorError
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from open_autoglm.atomic import DISK_ERRNOS, WRITE_ERRORS, ArtifactWriteError, staged_path, write_json
from open_autoglm.config import Config, dump_config
from open_autoglm.config.sections import TrainConfig
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData
from open_autoglm.distill.student import with_layer_student
from open_autoglm.distributed import (
    is_distributed,
    is_main_process,
    main_process_first,
    sharded_training,
    world_size,
)
from open_autoglm.evaluate.metrics import GENERATION_METRICS
from open_autoglm.methods import METHODS, MethodContext
from open_autoglm.methods.params import method_params
from open_autoglm.models import (
    Placement,
    choose_placement,
    load_model,
    load_tokenizer,
    resolve_model_path,
)
from open_autoglm.models.aliases import licence_of
from open_autoglm.models.weights import base_weights, upcast_trainable
from open_autoglm.monitor import ResourceMonitor
from open_autoglm.run_config_check import check_resume_compatible
from open_autoglm.run_folder import (
    ModelMeta,
    RunFolder,
    RunSummary,
    TrialFolder,
    read_json_object,
    write_model_meta,
    write_summary,
)
from open_autoglm.tasks import TASKS, BaseTask, PreparedData
from open_autoglm.train.arguments import build_training_args, optimizer_cls_and_kwargs
from open_autoglm.train.callbacks import (
    EvaluateWithinEpochCallback,
    MetricsFileCallback,
    ProgressBarCallback,
    keep_metrics_through,
    perplexity,
    tracker_callbacks,
)
from open_autoglm.train.checkpoints import (
    CheckpointMarkerCallback,
    FinishedRunGuard,
    TrainingAlreadyFinished,
    checkpoint_step,
    complete_checkpoints,
    last_complete_checkpoint,
)
from open_autoglm.train.distillation import DistillationTrainer, distillation_kwargs
from open_autoglm.train.generation import GenerationSample, generation_sample
from open_autoglm.train.head_warmup import HeadWarmupCallback
from open_autoglm.train.layerwise import freeze_bottom_layers
from open_autoglm.train.losses import balanced_class_weights
from open_autoglm.train.method_setup import apply_method, count_parameters
from open_autoglm.train.trainer import AutoglmTrainer
from open_autoglm.versions import versions

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """A finished training run, still in memory."""

    trainer: AutoglmTrainer
    tokenizer: Any
    task: BaseTask
    prepared: PreparedData
    loaded: LoadedData
    model_path: str
    objective: str
    placement: Placement
    metrics: dict[str, dict[str, float]]  # split -> metric -> value (validation, and test when there is one)
    baseline: dict[str, float]
    parameters: tuple[int, int]  # trainable, total
    resumed_from: Path | None
    train_seconds: float
    # Under FSDP / DeepSpeed: the whole model's weights, gathered by every rank right after training.
    state_dict: dict[str, Any] | None = None


def run_train(config: Config, resume: bool = True) -> dict[str, Any]:
    """Fine-tune as the config says; write everything to the run folder; return the summary."""
    started = time.perf_counter()
    run_dir = config.run_dir
    folder = RunFolder(run_dir)
    main = is_main_process()  # under torchrun / accelerate launch only rank 0 writes the run folder
    if resume and has_progress(run_dir):  # every rank checks, before anything is written
        check_resume_compatible(run_dir, with_layer_student(config, build=False))
    with main_process_first():  # rank 0 builds the student and prepares the data; the others reuse them
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
        # distill.student_layers: model.name becomes <run>/student-init
        config = with_layer_student(config, build=main)
        if main:
            dump_config(config, folder.config)
        loaded = load_data(DataRequest.of(config), RunFolder(config.run_dir).data)
    with ResourceMonitor(folder.resources) if main else nullcontext() as monitor:
        fit_result = fit(config, folder.trial(0).path, resume=resume, loaded=loaded)
        save_fitted(fit_result, folder.model, config)
    summary = build_summary(config, fit_result, time.perf_counter() - started)
    if monitor is not None:
        summary.resources = monitor.summary()
        write_summary(folder.summary, summary)
    return summary.to_json()


def has_progress(run_dir: Path) -> bool:
    """Whether a resume would continue or reuse something: a finished run, or a complete checkpoint."""
    folder = RunFolder(run_dir)
    return folder.summary.exists() or bool(complete_checkpoints(folder.trial(0).checkpoints))


def fit(
    config: Config,
    trial_dir: Path,
    resume: bool = True,
    *,
    loaded: LoadedData | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    checkpoints: bool = True,
    baseline: bool = True,
) -> FitResult:
    """Train one model in `trial_dir` (metrics.jsonl, checkpoint/).

    The data splits are read and written to the run folder unless `loaded` gives them (the search reads them
    once for all trials). A search trial passes its pruning callback, no checkpoints (a re-queued trial starts
    over) and no baseline evaluation (the untuned model is the same for every trial).
    """
    checkpoint = start_or_resume(trial_dir, resume)
    checkpoint_dir = TrialFolder(trial_dir).checkpoints
    set_seed(config.train.seed)

    # 1. Data: prepared into the run folder (cleaned, deduplicated, split), or reused when unchanged.
    task = TASKS.get(config.task)()
    if loaded is None:
        loaded = load_data(DataRequest.of(config), RunFolder(config.run_dir).data)

    # 2. Model, tokenizer and where they run.
    placement = choose_placement(config.model.device, config.model.precision)
    model_path = resolve_model_path(config.model.name)
    objective = task.objective(model_path, config.model)
    tokenizer = load_tokenizer(model_path, config.model)
    prepared = task.prepare(loaded.splits, tokenizer, config.data, config.train, objective)
    method = METHODS.get(config.method.name)()
    if task.kind not in method.tasks:
        raise ValueError(f"method {method.name!r} does not support task {config.task!r}")
    base = base_weights(config.model, placement, method.name, frozen=method.uses_peft)
    model, new_modules = load_model(
        model_path, config.model, objective, prepared.labels, tokenizer.pad_token_id, base
    )
    if base.quantization is not None:  # norms in fp32, inputs that carry gradients to the adapters
        model = prepare_model_for_kbit_training(model, config.train.gradient_checkpointing)
    task.configure_model(model, tokenizer)

    # 3. The fine-tuning method.
    train_rows = len(prepared.datasets["train"])
    steps = total_optimizer_steps(train_rows, config.train)
    heads = tuple(dict.fromkeys(task.head_names(objective) + new_modules))  # + randomly initialised modules
    ctx = MethodContext(task.kind, objective, heads, steps)
    probe = prepared.collator(
        [_without_length(prepared.datasets["train"][i]) for i in range(min(2, train_rows))]
    )
    model = apply_method(method, model, method_params(config.method), ctx, probe)
    upcast_trainable(model)
    freeze_bottom_layers(model, config.train.freeze_layers)
    warmup = head_warmup(config.train.head_warmup_ratio, model, heads, new_modules, steps)
    trainable, total = count_parameters(model)
    logger.info(
        "method %s: %d of %d parameters train (%.2f%%)",
        method.name,
        trainable,
        total,
        100 * trainable / total,
    )

    # 4. The trainer; with a teacher (distill.teacher), one that mixes its soft targets into the loss.
    distill = distillation_kwargs(config, objective, model, tokenizer, prepared.labels)
    trainer_cls = DistillationTrainer if distill else AutoglmTrainer
    args = build_training_args(
        config.train,
        placement,
        checkpoint_dir,
        lm_task=objective != "seq_cls",
        run_name=f"{config.name}/{trial_dir.name}",
        checkpoints=checkpoints,
    )
    weights = class_weights(config.train.loss.class_weights, prepared.datasets["train"], prepared.labels)
    generation = validation_sample(config, loaded, tokenizer, args.per_device_eval_batch_size)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=prepared.datasets["train"],
        eval_dataset=prepared.datasets["validation"],
        data_collator=lambda rows: prepared.collator([_without_length(r) for r in rows]),
        compute_metrics=prepared.compute_metrics,
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(config.train),
        callbacks=run_callbacks(config, trial_dir, objective != "seq_cls", task.evaluation_grid(config.train))
        + method.callbacks(model)
        + warmup
        + list(callbacks),
        loss_name=config.train.loss.name if objective == "seq_cls" else "ce",
        focal_gamma=config.train.loss.focal_gamma,
        class_weights=weights,
        step_schedule=(config.train.scheduler.step_size, config.train.scheduler.gamma)
        if config.train.scheduler.name == "step"
        else None,
        layer_lr_decay=config.train.layer_lr_decay,
        generation=generation,
        **distill,
    )
    show_progress(trainer, config.quiet)

    # 5. Baseline (the untuned model), then train — resuming from the last complete checkpoint.
    if baseline and sharded_training():
        # Evaluating first would make Accelerate wrap (shard) the model for evaluation, and training would wrap
        # the wrapped model again.
        logger.warning("no baseline evaluation of the untuned model under FSDP / DeepSpeed")
        baseline = False
    untuned = _baseline(trainer, trial_dir, task, loaded.splits, checkpoint is not None) if baseline else {}
    train_seconds = train_resuming(trainer, checkpoint)

    # 6. Final evaluation on validation (reusing the last periodic evaluation when it ran at the end) and test.
    metrics = {"validation": _final_validation(trainer) or evaluate(trainer, prepared.datasets["validation"])}
    if "test" in prepared.datasets and len(prepared.datasets["test"]):
        metrics["test"] = evaluate(trainer, prepared.datasets["test"], prefix="test")

    return FitResult(
        trainer=trainer,
        tokenizer=tokenizer,
        task=task,
        prepared=prepared,
        loaded=loaded,
        model_path=model_path,
        objective=objective,
        placement=placement,
        metrics=metrics,
        baseline=untuned,
        parameters=(trainable, total),
        resumed_from=checkpoint,
        train_seconds=train_seconds,
        state_dict=trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded_training() else None,
    )


def validation_sample(
    config: Config, loaded: LoadedData, tokenizer: Any, batch_size: int
) -> GenerationSample | None:
    """The first `search.generation_rows` validation rows, answered at every evaluation when search.metric is a
    generation metric (the search optimises it, so every evaluation must report it); else None."""
    if config.search.metric not in GENERATION_METRICS:
        return None
    if sharded_training():  # each process would generate from its shard of the weights
        raise ValueError(
            f"search.metric {config.search.metric} generates with the whole model on every process, which "
            "FSDP / DeepSpeed shard; search it on one process or under DDP"
        )
    rows = loaded.splits["validation"][: config.search.generation_rows]
    return generation_sample(rows, tokenizer, batch_size, config.data.max_length)


def start_or_resume(trial_dir: Path, resume: bool) -> Path | None:
    """The complete checkpoint in `trial_dir` to resume from, or None for a fresh start.

    A fresh start removes an earlier attempt's checkpoints and metrics, so nothing of it mixes in; a resume
    drops the metrics logged after its checkpoint, which the resumed run logs again."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    folder = TrialFolder(trial_dir)
    checkpoint = last_complete_checkpoint(folder.checkpoints) if resume else None
    if checkpoint is None and is_main_process():
        shutil.rmtree(folder.checkpoints, ignore_errors=True)
        folder.metrics.unlink(missing_ok=True)
    elif checkpoint is not None and is_main_process():
        keep_metrics_through(folder.metrics, checkpoint_step(checkpoint))
    return checkpoint


def run_callbacks(
    config: Config, trial_dir: Path, language_model: bool, evals_per_epoch: int | None
) -> list[TrainerCallback]:
    """What every training run reports and guards: metrics.jsonl, complete-checkpoint markers, no step past
    a finished run, evaluations within an epoch, and the configured trackers."""
    within_epoch = []
    if evals_per_epoch is not None and evals_per_epoch > 1:
        within_epoch.append(EvaluateWithinEpochCallback(evals_per_epoch))
    return [
        MetricsFileCallback(TrialFolder(trial_dir).metrics, language_model),
        CheckpointMarkerCallback(),
        FinishedRunGuard(),
        *within_epoch,
        *tracker_callbacks(config.train.report_to, RunFolder(config.run_dir).tensorboard / trial_dir.name),
    ]


def show_progress(trainer: Any, quiet: bool) -> None:
    """Our bar instead of the Trainer's printed logs (metrics.jsonl holds them)."""
    trainer.remove_callback(PrinterCallback)
    if not quiet:
        trainer.add_callback(ProgressBarCallback())


def train_resuming(trainer: Any, checkpoint: Path | None) -> float:
    """Train, from `checkpoint` when given; the training seconds (0 when the checkpoint was the last step).

    A checkpoint the Trainer cannot write (a full disk) is named, and the last complete one stays."""
    if checkpoint is not None:
        logger.info("resuming from %s", checkpoint)
    try:
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        return float(result.metrics.get("train_runtime", 0.0))
    except TrainingAlreadyFinished as done:
        logger.info("%s is the run's last step (%s): nothing left to train", checkpoint, done)
        return 0.0
    except WRITE_ERRORS as err:  # the Trainer's own saves: name where, not just "File too large"
        if not isinstance(err, SafetensorError) and err.errno not in DISK_ERRNOS:
            raise
        raise ArtifactWriteError(
            getattr(err, "errno", None) or errno.EIO,
            f"could not write a checkpoint in {trainer.args.output_dir}: "
            f"{getattr(err, 'strerror', None) or err}; "
            "the last complete checkpoint stays and the next run resumes from it",
        ) from err


def build_summary(config: Config, fit_result: FitResult, seconds: float) -> RunSummary:
    """summary.json of a single run."""
    state, metrics = fit_result.trainer.state, fit_result.metrics
    loaded = fit_result.loaded
    return RunSummary(
        task=config.task,
        metric=fit_result.task.metric,
        greater_is_better=fit_result.task.greater_is_better,
        method=config.method.name,
        model=config.model.name,
        best={
            "params": run_params(config),
            "metrics": metrics.get("test", metrics["validation"]),
            "validation": metrics["validation"],
            "test": metrics.get("test"),
        },
        baseline={"metrics": fit_result.baseline},
        trials={"complete": 1, "pruned": 0, "failed": 0},
        compute={
            "train_steps": state.global_step,
            "train_examples": state.global_step * examples_per_step(fit_result.trainer.args),
            "seconds": round(seconds, 2),
            "train_seconds": round(fit_result.train_seconds, 2),
        },
        parameters={"trainable": fit_result.parameters[0], "total": fit_result.parameters[1]},
        placement={"device": fit_result.placement.device, "precision": fit_result.placement.precision},
        versions=versions(),
        sections={
            "data": {
                "rows_in": loaded.report.get("rows_in"),
                "quarantined": loaded.report.get("quarantined"),
                "removed": loaded.report.get("removed"),
                "rows_kept": {split: len(rows) for split, rows in loaded.splits.items()},
                "dropped": fit_result.prepared.dropped,
            },
            "resumed_from": str(fit_result.resumed_from) if fit_result.resumed_from else None,
        },
    )


def run_params(config: Config) -> dict[str, Any]:
    """The hyperparameters that define this run, as flat `section.key` names (the search space's names)."""
    params: dict[str, Any] = {"method.name": config.method.name}
    params |= {f"method.{k}": v for k, v in method_params(config.method).model_dump(mode="json").items()}
    train = config.train
    params |= {"train.lr": train.lr, "train.batch_size": train.batch_size, "train.epochs": train.epochs}
    return params


def examples_per_step(args: Any) -> int:
    """Examples in one optimizer step: per device x devices x accumulation x processes (DDP)."""
    return int(args.train_batch_size * args.gradient_accumulation_steps * args.world_size)


def total_optimizer_steps(train_rows: int, train: TrainConfig) -> int:
    if train.max_steps > 0:
        return train.max_steps
    per_epoch = math.ceil(math.ceil(train_rows / (train.batch_size * world_size())) / train.grad_accum)
    return max(1, math.ceil(per_epoch * train.epochs))


def class_weights(
    setting: str | list[float], train_set: Any, labels: list[str] | None
) -> torch.Tensor | None:
    """`train.loss.class_weights` as a tensor over `labels`: given, balanced from the training labels, or None."""
    if labels is None or setting == "none":
        return None
    if isinstance(setting, list):
        if len(setting) != len(labels):
            raise ValueError(
                f"train.loss.class_weights has {len(setting)} weights for {len(labels)} labels {labels}"
            )
        return torch.tensor(setting, dtype=torch.float32)
    counts = Counter(train_set["labels"])
    return balanced_class_weights([counts.get(i, 0) for i in range(len(labels))])


def evaluate(trainer: AutoglmTrainer, dataset: Any, prefix: str = "eval") -> dict[str, float]:
    """Metrics of the current model on `dataset` (names without the prefix).

    The prefix names the split in metrics.jsonl (eval: validation, test, baseline: the untuned model), and
    only `eval` evaluations are reported to the search's pruners.
    """
    raw = trainer.evaluate(dataset, metric_key_prefix=prefix)
    return _clean_metrics(raw, trainer.args.prediction_loss_only, prefix)


def _clean_metrics(raw: dict[str, Any], language_model: bool, prefix: str = "eval") -> dict[str, float]:
    """Trainer's <prefix>_* numbers without the prefix and the timing fields; perplexity for language models."""
    start = f"{prefix}_"
    metrics = {k[len(start) :]: float(v) for k, v in raw.items() if k.startswith(start)}
    for k in ("runtime", "samples_per_second", "steps_per_second", "model_preparation_time"):
        metrics.pop(k, None)
    if language_model and "loss" in metrics:
        metrics["perplexity"] = perplexity(metrics["loss"])
    return metrics


def _final_validation(trainer: AutoglmTrainer) -> dict[str, float] | None:
    """The validation metrics logged at the last step, if the periodic evaluation ran there."""
    last = trainer.state.log_history[-2:] if trainer.state.log_history else []
    for entry in reversed(last):
        if "eval_loss" in entry and entry.get("step") == trainer.state.global_step:
            return _clean_metrics(entry, trainer.args.prediction_loss_only)
    return None


def _evaluation_twin(trainer: AutoglmTrainer) -> AutoglmTrainer:
    """A second Trainer on the same model for the evaluation before training (see `_forget_preparation`)."""
    keep = [c for c in trainer.callback_handler.callbacks if isinstance(c, MetricsFileCallback)]
    twin = AutoglmTrainer(
        model=trainer.model,
        args=trainer.args,
        eval_dataset=trainer.eval_dataset,
        data_collator=trainer.data_collator,
        compute_metrics=trainer.compute_metrics,
        callbacks=keep,
        loss_name=trainer.loss_name,
        focal_gamma=trainer.focal_gamma,
        class_weights=trainer.class_weights,
        generation=trainer.generation,
    )
    twin.remove_callback(PrinterCallback)
    return twin


def _forget_preparation(model: Any) -> None:
    """Let the training Trainer wrap a model that was evaluated first.

    Accelerate prepares a model for evaluation without DistributedDataParallel but marks it prepared, and then
    refuses to prepare it again for training: under DDP each process would silently train alone (accelerate
    1.15, transformers 5.24). Evaluating through another Trainer keeps this one's Accelerator clean; the mark
    on the model itself is removed here.
    """
    model.__dict__.pop("_is_accelerate_prepared", None)


def _baseline(
    trainer: AutoglmTrainer, trial_dir: Path, task: BaseTask, splits: dict, resuming: bool
) -> dict[str, float]:
    """Metrics of the model before any training (kept across a resume), plus the task's reference baseline
    (for classification, the majority-class accuracy)."""
    path = TrialFolder(trial_dir).baseline
    if resuming and path.exists():
        try:
            return read_json_object(path, "a baseline record")
        except ValueError as err:  # the model is still untuned here: measure it again
            logger.warning("%s: evaluating the untuned model again", err)
    baseline = evaluate(_evaluation_twin(trainer), trainer.eval_dataset, prefix="baseline")
    _forget_preparation(trainer.model)
    baseline |= task.reference_baseline(splits)
    if trainer.is_world_process_zero():
        write_json(path, baseline)
    return baseline


def head_warmup(
    ratio: float, model: Any, heads: tuple[str, ...], new_modules: tuple[str, ...], steps: int
) -> list[TrainerCallback]:
    """The callback of `train.head_warmup_ratio`, or none: a checkpoint with every module (a pretrained
    masked-LM head, say) has no random head to warm up."""
    if ratio == 0 or not new_modules:
        return []
    if is_distributed():  # DDP expects the same parameters to have gradients at every step
        raise ValueError("train.head_warmup_ratio runs on one process; set it to 0 under a launcher")
    return [HeadWarmupCallback(model, heads, math.ceil(ratio * steps))]


def save_fitted(result: FitResult, model_dir: Path, config: Config) -> None:
    """Save what `fit` trained (see `save_model`) from rank 0; the others return at once."""
    if not is_main_process():
        return
    save_model(
        result.trainer.accelerator.unwrap_model(result.trainer.model),
        result.tokenizer,
        model_dir,
        config,
        result.model_path,
        result.objective,
        result.prepared.labels,
        state_dict=result.state_dict,
    )


def save_model(
    model: Any,
    tokenizer: Any,
    model_dir: Path,
    config: Config,
    base_model: str,
    objective: str,
    labels: list[str] | None,
    state_dict: dict[str, Any] | None = None,
) -> None:
    """Weights in safetensors (peft adapters and full models alike), the tokenizer, and autoglm.json.

    `state_dict`: the weights when the model in memory holds only this rank's shard (FSDP, DeepSpeed ZeRO-3).
    The folder appears whole or not at all: a kill or a full disk half-way leaves the earlier one.
    """
    meta = ModelMeta(
        task=config.task,
        objective=objective,
        method=config.method.name,
        base_model=base_model,
        labels=labels,
        text_prefix=config.data.text_prefix,
        max_length=config.data.max_length,
        model=config.model.model_dump(mode="json"),
        licence=licence_of(config.model.name),
        versions=versions(),
    )
    with staged_path(model_dir) as partial:
        partial.mkdir(parents=True)
        model.save_pretrained(str(partial), safe_serialization=True, state_dict=state_dict)
        if objective == "causal_lm":  # where generation stops: an adapter's save leaves it out
            model.generation_config.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        write_model_meta(partial, meta)


def _without_length(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "length"}
