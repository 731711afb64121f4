"""Trainer callbacks: the metrics file of the run-folder contract, the progress bar, experiment trackers."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback

from open_autoglm.config import Config

_TRAIN_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm"}
_EVAL_SPLITS = {"eval": "validation", "test": "test", "baseline": "baseline"}  # metric key prefix -> split


class MetricsFileCallback(TrainerCallback):
    """Appends every logged number to metrics.jsonl as {step, epoch, split, name, value}."""

    def __init__(self, path: Path, language_model: bool) -> None:
        self.path = path
        self.language_model = language_model  # validation loss is also reported as perplexity
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):  # type: ignore[no-untyped-def]
        if not state.is_world_process_zero or not logs:
            return
        rows = []
        for key, value in logs.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            prefix = key.split("_", 1)[0]
            if prefix in _EVAL_SPLITS:
                split, name = _EVAL_SPLITS[prefix], key[len(prefix) + 1 :]
            elif key in _TRAIN_KEYS:
                split, name = "train", _TRAIN_KEYS[key]
            else:
                continue  # runtime summaries (train_runtime, ...) live in summary.json
            if name in {"runtime", "samples_per_second", "steps_per_second", "model_preparation_time"}:
                continue
            rows.append(
                {
                    "step": state.global_step,
                    "epoch": state.epoch,
                    "split": split,
                    "name": name,
                    "value": value,
                }
            )
            if self.language_model and split != "train" and name == "loss":
                rows.append({**rows[-1], "name": "perplexity", "value": perplexity(value)})
        append_metrics(self.path, rows)


def append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def perplexity(loss: float) -> float:
    """exp(loss); a loss of 50 or more has diverged and reads as infinity."""
    return math.exp(loss) if loss < 50 else float("inf")


class ProgressBarCallback(TrainerCallback):
    """One bar over optimizer steps, with loss, learning rate and examples/s beside the ETA."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.started = 0.0
        self.start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="train",
                unit="step",
                dynamic_ncols=True,
            )
            self.started, self.start_step = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):  # type: ignore[no-untyped-def]
        if self.bar is None or not logs:
            return
        post: dict[str, str] = {}
        if "loss" in logs:
            post["loss"] = f"{logs['loss']:.4f}"
        if "learning_rate" in logs:
            post["lr"] = f"{logs['learning_rate']:.2e}"
        elapsed = time.perf_counter() - self.started
        steps = state.global_step - self.start_step
        if elapsed > 0 and steps > 0:
            batch = (
                args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
            )
            post["ex/s"] = f"{steps * batch / elapsed:.1f}"
        for key, value in logs.items():
            if key.startswith("eval_") and key[5:] in {"accuracy", "loss", "f1_macro"}:
                post[key] = f"{value:.4f}"
        self.bar.set_postfix(post, refresh=True)

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def tracker_callbacks(config: Config, trial_dir: Path) -> list[TrainerCallback]:
    """TensorBoard logs under <run>/tensorboard/<trial>, so one `tensorboard --logdir` shows every trial."""
    if "tensorboard" not in config.train.report_to:
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    writer = SummaryWriter(log_dir=str(config.run_dir / "tensorboard" / trial_dir.name))
    return [TensorBoardCallback(tb_writer=writer)]
