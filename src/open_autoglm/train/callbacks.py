"""Trainer callbacks: the metrics file of the run-folder contract, the progress bar, experiment trackers."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback

from open_autoglm.atomic import write_text

logger = logging.getLogger(__name__)

_TRAIN_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm"}
_EVAL_SPLITS = {"eval": "validation", "test": "test", "baseline": "baseline"}  # metric key prefix -> split


class MetricsFileCallback(TrainerCallback):
    """Appends every logged number to metrics.jsonl as {step, epoch, split, name, value}, each (step, split, name)
    once.

    A resumed run logs again what a killed one logged after its checkpoint, and one resumed at its last step
    evaluates again at that step. `fit` drops the rows after the checkpoint first (`keep_metrics_through`); rows
    whose key the file already holds are skipped here, so the file reads as one uninterrupted run.
    """

    def __init__(self, path: Path, language_model: bool) -> None:
        self.path = path
        self.language_model = language_model  # validation loss is also reported as perplexity
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written = {_key(row) for row in read_metrics(path)}

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
            elif key in _TRAIN_KEYS or "/" in key:  # "/": a part's own numbers (multitask's loss/<task>)
                split, name = "train", _TRAIN_KEYS.get(key, key)
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
        new = [row for row in rows if _key(row) not in self.written]
        self.written |= {_key(row) for row in new}
        append_metrics(self.path, new)


def _key(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row.get("step"), row.get("split"), row.get("name")


def append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "a", encoding="utf-8") as handle:  # one write: a kill tears at most this last line
        handle.write("".join(json.dumps(row) + "\n" for row in rows))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics file ([] when there is none), without a torn last line that a kill left."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d: dropping an unreadable row (cut short by a kill?)", path, number)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def keep_metrics_through(path: Path, step: int) -> None:
    """Drop the rows logged after `step` (the checkpoint a run resumes from): the resumed run logs them again."""
    if not path.is_file():
        return
    kept = [row for row in read_metrics(path) if isinstance(row.get("step"), int) and row["step"] <= step]
    write_text(path, "".join(json.dumps(row) + "\n" for row in kept))


def perplexity(loss: float) -> float:
    """exp(loss); a loss of 50 or more has diverged and reads as infinity."""
    return math.exp(loss) if loss < 50 else float("inf")


class EvaluateWithinEpochCallback(TrainerCallback):
    """Evaluates `per_epoch` times an epoch, where the examples seen cross k / per_epoch of an epoch.

    Shares of the examples, not step counts, so trials of one search with different batch sizes evaluate after
    the same training and their values can be compared. The epoch's own end is left to the Trainer's epoch
    schedule, which evaluates there anyway.
    """

    def __init__(self, per_epoch: int) -> None:
        self.per_epoch = per_epoch
        self.reached = 0  # shares of an epoch passed at the last evaluation

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.reached = shares_reached(state.epoch, self.per_epoch)  # a resumed run has passed some already

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        reached = shares_reached(state.epoch, self.per_epoch)
        if reached > self.reached and reached % self.per_epoch:
            control.should_evaluate = True
        self.reached = max(self.reached, reached)


def shares_reached(epoch: float | None, per_epoch: int) -> int:
    """How many 1 / per_epoch shares of an epoch `epoch` has passed (the Trainer's epoch is a float sum)."""
    return math.floor((epoch or 0.0) * per_epoch + 1e-6)


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


def tracker_callbacks(report_to: Sequence[str], log_dir: Path) -> list[TrainerCallback]:
    """TensorBoard's own writer for one training run (the run folder puts it under <run>/tensorboard/<trial>, so
    one `tensorboard --logdir` shows every trial); the other trackers go through the Trainer."""
    if "tensorboard" not in report_to:
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    writer = SummaryWriter(log_dir=str(log_dir))
    return [TensorBoardCallback(tb_writer=writer)]
