"""The multi-task training loop, hand-written on `accelerate.Accelerator`.

Why not HF Trainer: its step computes one loss and calls one backward, while PCGrad needs each task's own
gradient and GradNorm each task's gradient norm on a shared layer before the step's gradient exists. So this
loop owns the step, and Accelerate does what it is good at: the device, autocast (bf16/fp16), fp16 loss
scaling, gradient clipping, and the processes of `accelerate launch`. The model is not wrapped in DDP (a
step runs several forward passes, one per drawn task, and the weightings call autograd themselves); each
process draws its own batches and the gradients are averaged across processes by hand before the update.

A step draws as many batches as there are tasks, each from a task picked by the sampling probabilities, so
per-task gradients can meet within a step (PCGrad, GradNorm) while sampling still decides how often each
task's data is seen. An epoch is as many steps as it takes to draw about every training row once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_scheduler

from open_autoglm.atomic import write_json
from open_autoglm.multitask.data import TaskData, collate
from open_autoglm.multitask.model import MultitaskModel
from open_autoglm.multitask.sampling import BatchStream, draw_tasks
from open_autoglm.multitask.weighting import LossWeighting
from open_autoglm.run_folder import PROGRESS, read_json_object

SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass(frozen=True)
class LoopSettings:
    epochs: float
    max_steps: int  # -1: by epochs
    lr: float
    batch_size: int
    eval_batch_size: int
    max_grad_norm: float  # 0: no clipping
    weight_decay: float
    betas: tuple[float, float]
    scheduler: str  # linear | cosine | constant
    warmup_ratio: float
    logging_steps: int
    seed: int
    show_progress: bool


@dataclass
class LoopResult:
    steps: int
    examples: int
    seconds: float
    resumed_from_epoch: int | None


Evaluate = Callable[[], dict[str, float]]  # validation metrics of the current model, flat


def steps_per_epoch(tasks: Sequence[TaskData], batch_size: int, processes: int) -> int:
    rows = sum(t.rows("train") for t in tasks)
    return max(1, math.ceil(rows / (batch_size * len(tasks) * processes)))


def train_loop(
    model: MultitaskModel,
    tasks: Sequence[TaskData],
    probabilities: Sequence[float],
    weighting: LossWeighting,
    tokenizer: PreTrainedTokenizerBase,
    accelerator: Accelerator,
    settings: LoopSettings,
    run_files: tuple[Path, Path],  # (metrics.jsonl, checkpoint folder)
    evaluate: Evaluate,
    resume: bool,
) -> LoopResult:
    """Train `model` in place; log to metrics.jsonl; checkpoint every epoch (resumed from the last one)."""
    metrics_file, checkpoint_dir = run_files
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": params, "weight_decay": settings.weight_decay},
            {"params": weighting.optimizer_parameters(), "weight_decay": 0.0},
        ],
        lr=settings.lr,
        betas=settings.betas,
    )
    per_epoch = steps_per_epoch(tasks, settings.batch_size, accelerator.num_processes)
    total = settings.max_steps if settings.max_steps > 0 else max(1, math.ceil(per_epoch * settings.epochs))
    scheduler = get_scheduler(
        SCHEDULERS[settings.scheduler],
        optimizer,
        num_warmup_steps=int(settings.warmup_ratio * total),
        num_training_steps=total,
    )
    # The scheduler stays unprepared: Accelerate's wrapper would step it once per process, while `total`
    # already counts one process's steps.
    optimizer = accelerator.prepare(optimizer)
    accelerator.register_for_checkpointing(model, weighting, scheduler)
    if accelerator.num_processes > 1:
        weighting.across_processes(lambda t: accelerator.reduce(t, reduction="sum"))

    step, start_epoch, resumed = 0, 0, None
    if resume and (checkpoint_dir / PROGRESS).exists():
        accelerator.load_state(str(checkpoint_dir))
        step, epoch = _read_progress(checkpoint_dir / PROGRESS)
        start_epoch, resumed = epoch + 1, epoch
    elif accelerator.is_main_process:
        metrics_file.unlink(missing_ok=True)  # a fresh start: nothing of an earlier attempt may mix in

    started = time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=step, desc="multitask", disable=not settings.show_progress)
    n_epochs = math.ceil(total / per_epoch)
    for epoch in range(start_epoch, n_epochs):
        # Seeded by epoch (and process) so a resumed run draws what the uninterrupted one would have.
        seed = settings.seed + 1_000 * epoch + accelerator.process_index
        streams = [BatchStream(t.rows("train"), settings.batch_size, seed + i) for i, t in enumerate(tasks)]
        draws = draw_tasks(probabilities, min(per_epoch, total - step), len(tasks), seed)  # (steps, tasks)
        for drawn in draws:
            losses = _task_losses(model, tasks, streams, drawn, tokenizer, accelerator)
            combined = weighting.backward(losses, params, accelerator.backward)
            _average_across_processes(params + weighting.optimizer_parameters(), accelerator)
            if settings.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if step % settings.logging_steps == 0 or step == total:
                rows = {"loss": float(combined), "lr": scheduler.get_last_lr()[0]}
                rows |= {f"loss/{t}": float(v.detach()) for t, v in losses.items()}
                rows |= {f"weight/{t}": w for t, w in weighting.weights().items()}
                _log(metrics_file, accelerator, step, epoch + 1, "train", rows)
        _log(metrics_file, accelerator, step, epoch + 1, "validation", evaluate())
        accelerator.save_state(str(checkpoint_dir))
        if accelerator.is_main_process:
            write_json(checkpoint_dir / PROGRESS, {"epoch": epoch, "step": step})
    bar.close()
    examples = step * settings.batch_size * len(tasks) * accelerator.num_processes
    return LoopResult(step, examples, time.perf_counter() - started, resumed)


def _task_losses(
    model: MultitaskModel,
    tasks: Sequence[TaskData],
    streams: Sequence[BatchStream],
    drawn: Any,
    tokenizer: PreTrainedTokenizerBase,
    accelerator: Accelerator,
) -> dict[str, torch.Tensor]:
    """Cross-entropy of each drawn batch, averaged per task: {task: loss} for the tasks drawn this step."""
    per_task: dict[str, list[torch.Tensor]] = {}
    for index in drawn:
        task, stream = tasks[int(index)], streams[int(index)]
        examples = [task.encoded["train"][i] for i in stream.next_batch()]
        batch = {k: v.to(accelerator.device) for k, v in collate(tokenizer, examples).items()}
        labels = batch.pop("labels")  # (B,)
        with accelerator.autocast():
            logits = model(task.name, **batch)  # (B, C)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        per_task.setdefault(task.name, []).append(loss)
    return {name: torch.stack(losses).mean() for name, losses in per_task.items()}


def _average_across_processes(params: Sequence[torch.nn.Parameter], accelerator: Accelerator) -> None:
    """Mean gradient over processes (no DDP wrapper does it). A head no batch of this process reached gets a
    zero gradient first, so every process joins the same reductions."""
    if accelerator.num_processes == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad = accelerator.reduce(p.grad, reduction="mean")


def _read_progress(path: Path) -> tuple[int, int]:
    """(step, epoch) of the last finished epoch; an unreadable file is named, not a KeyError."""
    fix = "start afresh with --no-resume"
    done = read_json_object(path, "a progress record", fix)
    try:
        return int(done["step"]), int(done["epoch"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a progress record ({type(err).__name__}: {err}); {fix}") from None


def _log(
    path: Path, accelerator: Accelerator, step: int, epoch: int, split: str, values: dict[str, float]
) -> None:
    """Append {step, epoch, split, name, value} rows to metrics.jsonl (the run-folder contract's format)."""
    if not accelerator.is_main_process:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in values.items():
            row = {"step": step, "epoch": epoch, "split": split, "name": name, "value": value}
            handle.write(json.dumps(row) + "\n")
