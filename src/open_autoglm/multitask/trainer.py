"""Multi-task training on our shared Trainer: task-mixed batches, per-task losses, the loss weighting's step.

The Trainer runs the loop as for any run — optimizer and scheduler choice, gradient accumulation, clipping,
mixed precision, checkpoints and resuming, DDP, trackers, layer-wise decay, frozen layers, head warm-up. What
multi-task learning adds is the step: PCGrad needs each task's own gradient and GradNorm each task's gradient
norm on a shared layer before the step's gradient exists, so `training_step` hands the tasks' losses to the
loss weighting, which calls the accelerator's `backward` itself.

A step holds as many sub-batches as there are tasks, each of `train.batch_size` rows of one task picked by the
sampling probabilities, so per-task gradients meet within a step while sampling still decides how often each
task's data is seen. An epoch is as many steps as it takes to draw about every training row once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from open_autoglm.multitask.data import TaskData
from open_autoglm.multitask.evaluation import metrics_of
from open_autoglm.multitask.sampling import BatchStream, draw_tasks
from open_autoglm.multitask.weighting import LossWeighting
from open_autoglm.train.losses import classification_loss
from open_autoglm.train.trainer import AutoglmTrainer


class TaskBatchSampler(Sampler[int]):
    """Positions into the tasks' joined training rows: per step, one sub-batch of `batch_size` rows for each
    task drawn. Seeded by epoch (`set_epoch`), so a resumed epoch draws what the uninterrupted one drew;
    under several processes Accelerate deals the steps out, one batch of `len(sizes) * batch_size` each."""

    def __init__(
        self, sizes: Sequence[int], probabilities: Sequence[float], batch_size: int, seed: int
    ) -> None:
        self.sizes, self.probabilities = list(sizes), list(probabilities)
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.steps = max(1, math.ceil(sum(self.sizes) / (batch_size * len(self.sizes))))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps * self.batch_size * len(self.sizes)

    def __iter__(self) -> Iterator[int]:
        seed = self.seed + 1_000 * self.epoch
        streams = [BatchStream(n, self.batch_size, seed + i) for i, n in enumerate(self.sizes)]
        for drawn in draw_tasks(self.probabilities, self.steps, len(self.sizes), seed):  # (steps, tasks)
            for index in drawn:
                offset = self.offsets[int(index)]
                yield from (offset + position for position in streams[int(index)].next_batch())


class MultitaskTrainer(AutoglmTrainer):
    """The Trainer with a step that goes through the loss weighting, and per-task losses and weights logged."""

    def __init__(
        self,
        *args: Any,
        tasks: Sequence[TaskData],
        probabilities: Sequence[float],
        task_class_weights: Sequence[torch.Tensor | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, compute_metrics=metrics_of(tasks), **kwargs)
        self.tasks, self.probabilities = list(tasks), list(probabilities)
        self.task_class_weights = list(task_class_weights)
        self.model_accepts_loss_kwargs = (
            False  # our losses are means over rows, never divided by token counts
        )
        self._logged: dict[str, list[float]] = {}
        if self.args.world_size > 1:  # what a weighting learns by itself must agree on every process
            self.weighting.across_processes(lambda t: self.accelerator.reduce(t, reduction="sum"))

    @property
    def weighting(self) -> LossWeighting:
        model: Any = self.accelerator.unwrap_model(self.model)
        return model.weighting

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int]:
        sizes = [t.rows("train") for t in self.tasks]
        batch = self.args.per_device_train_batch_size // len(self.tasks)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return TaskBatchSampler(sizes, self.probabilities, batch, seed)

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        """The weighting's own parameters (log-variances, task weights) take no weight decay."""
        return [n for n in super().get_decay_parameter_names(model) if not n.startswith("weighting.")]

    def task_losses(
        self, model: torch.nn.Module, inputs: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """({task: its mean loss over the batch's rows} for the tasks present, the padded logits (B, W))."""
        inputs = dict(inputs)
        labels, task_ids = inputs.pop("labels"), inputs.pop("task")
        logits = model(task=task_ids, **inputs)
        losses = {}
        for index, task in enumerate(self.tasks):
            rows = task_ids == index
            if rows.any():
                losses[task.name] = classification_loss(
                    logits[rows, : len(task.labels)],
                    labels[rows],
                    self.loss_name,
                    self.focal_gamma,
                    self.task_class_weights[index],
                )
        return losses, logits

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        """The mean of the tasks' losses (evaluation's `loss`), with the padded logits for the metrics."""
        losses, logits = self.task_losses(model, inputs)
        loss = torch.stack(list(losses.values())).mean()
        return (loss, {"logits": logits}) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        """One micro-batch: the tasks' losses, combined and backpropagated by the loss weighting."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        with self.compute_loss_context_manager():
            losses, _ = self.task_losses(model, inputs)
        scale = 1.0 / self.current_gradient_accumulation_steps
        trainable = [p for p in model.parameters() if p.requires_grad]
        combined = self.weighting.backward(
            losses, trainable, lambda loss: self.accelerator.backward(loss * scale)
        )
        self.check_finite(combined)
        for task, loss in losses.items():
            self._logged.setdefault(task, []).append(float(loss.detach()))
        return combined.detach() * scale

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """A training log also gets each task's mean loss since the last one and the current task weights."""
        if "loss" in logs and "eval_loss" not in logs:
            logs = dict(logs)
            logs |= {f"loss/{t}": sum(v) / len(v) for t, v in self._logged.items()}
            logs |= {f"weight/{t}": w for t, w in self.weighting.weights().items()}
            self._logged = {}
        super().log(logs, start_time)
