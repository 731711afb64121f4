"""Our Trainer: the Hugging Face Trainer plus what it lacks — class-weighted/focal loss, a step schedule,
layer-wise learning-rate decay, Adam/SGD choice, a hard stop on a non-finite loss, a length-grouped batch
order that a resumed run draws again, and generation metrics in the evaluations of a causal LM."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import EvalLoopOutput

from open_autoglm.train.generation import SCORED_PREFIXES, GenerationSample, score_sample
from open_autoglm.train.layerwise import layerwise_param_groups


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training would only produce garbage from here."""


class AutoglmTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        loss_name: str = "ce",
        focal_gamma: float = 2.0,
        class_weights: torch.Tensor | None = None,
        step_schedule: tuple[int, float] | None = None,
        layer_lr_decay: float = 1.0,
        generation: GenerationSample | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_name = loss_name
        self.focal_gamma = focal_gamma
        self.class_weights = class_weights
        self.step_schedule = step_schedule  # (step_size, gamma) for the `step` scheduler
        self.layer_lr_decay = layer_lr_decay  # 1.0: every parameter at the base rate
        self.generation = generation  # validation rows whose greedy replies each evaluation scores

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        if self.loss_name == "ce" and self.class_weights is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        from open_autoglm.train.losses import classification_loss

        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = classification_loss(
            outputs.logits, labels, self.loss_name, self.focal_gamma, self.class_weights
        )
        return (loss, outputs) if return_outputs else loss

    def evaluation_loop(  # type: ignore[no-untyped-def]
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ) -> EvalLoopOutput:
        """The Trainer's evaluation, plus the generation metrics of the validation sample: added here, before
        `evaluate` logs the metrics, they reach the log history, metrics.jsonl and the search's pruners."""
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
        )
        if (
            self.generation is not None
            and metric_key_prefix in SCORED_PREFIXES
            and output.metrics is not None
        ):
            scores = score_sample(self.model, self.generation)  # type: ignore[arg-type]
            output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in scores.items()})
        return output

    def training_step(self, model, inputs, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.check_finite(loss)
        return loss

    def check_finite(self, loss: torch.Tensor) -> None:
        """Stop at a NaN or infinite training loss, naming the step and the ways out."""
        if not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"the training loss became {float(loss)} at step {self.state.global_step + 1}; "
                "lower train.lr, raise train.max_grad_norm clipping (e.g. 1.0), or use precision fp32"
            )

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is not LengthGroupedSampler:
            return sampler
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=seed)

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """With layer-wise decay: one parameter group per (rate, weight decay or not) instead of the Trainer's two."""
        if self.layer_lr_decay == 1.0 or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        assert opt_model is not None, "the Trainer holds its model"
        cls, kwargs = self.optimizer_cls_and_kwargs or self.get_optimizer_cls_and_kwargs(self.args)
        groups = layerwise_param_groups(
            opt_model,
            self.args.learning_rate,
            self.args.weight_decay,
            self.layer_lr_decay,
            set(self.get_decay_parameter_names(opt_model)),
        )
        self.optimizer = cls(groups, **kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):  # type: ignore[no-untyped-def]
        if self.lr_scheduler is not None or self.step_schedule is None:
            return super().create_scheduler(num_training_steps, optimizer)
        factor = _step_factor(self.args.get_warmup_steps(num_training_steps), *self.step_schedule)
        target = optimizer or self.optimizer
        assert target is not None, "the optimizer is created before the scheduler"
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(target, factor)
        return self.lr_scheduler


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches whose order depends only on the seed and the epoch.

    The Trainer's sampler draws its permutation from the global torch RNG as it is when an epoch starts; a run
    resumed from a checkpoint gets there with another RNG state (the RNG is restored only after the skipped
    batches), so it trained on other batches than the uninterrupted run and ended with other weights. Seeding
    per epoch (`set_epoch`, which Accelerate's data loader calls) makes the resumed epoch the same one.
    """

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


def _step_factor(warmup: int, step_size: int, gamma: float) -> Callable[[int], float]:
    """The `step` schedule's multiplier: the warm-up, then gamma once every step_size steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return gamma ** ((step - warmup) // step_size)

    return factor
