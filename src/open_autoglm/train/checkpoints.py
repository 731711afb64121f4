"""Atomic checkpoints: a checkpoint counts only once a marker says it was written completely.

The Trainer writes `checkpoint-N/` file by file; a kill in the middle leaves a half-written folder that
`resume_from_checkpoint=True` would try to load. We write a marker after the Trainer finishes a save
(`on_save`, with an atomic rename) and resume only from marked checkpoints, removing unmarked ones.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from open_autoglm.atomic import write_text

COMPLETE_MARKER = "autoglm_complete"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(folder: Path) -> list[Path]:
    """Marked checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _CHECKPOINT.match(p.name) and (p / COMPLETE_MARKER).exists()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint folder (checkpoint-N) was saved at."""
    match = _CHECKPOINT.match(checkpoint.name)
    if match is None:
        raise ValueError(f"{checkpoint}: not a checkpoint folder (checkpoint-<step>)")
    return int(match.group(1))


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The checkpoint to resume from; half-written checkpoints are deleted on the way."""
    if not folder.is_dir():
        return None
    for path in folder.iterdir():
        if _CHECKPOINT.match(path.name) and not (path / COMPLETE_MARKER).exists():
            shutil.rmtree(path, ignore_errors=True)
    done = complete_checkpoints(folder)
    return done[-1] if done else None


def mark_complete(checkpoint: Path) -> None:
    write_text(checkpoint / COMPLETE_MARKER, "ok\n")


class CheckpointMarkerCallback(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has written all of it."""

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if path.is_dir():
                mark_complete(path)


class TrainingAlreadyFinished(Exception):
    """Raised by `FinishedRunGuard` out of `Trainer.train`: the checkpoint resumed from is the run's last step."""


class FinishedRunGuard(TrainerCallback):
    """Stops a resume from the run's last checkpoint before it trains.

    Resumed at its last step, the Trainer (transformers 5.24) skips the batches of the current epoch and still
    takes one more optimizer step when that step is not an epoch's end, so a re-run of a finished (or killed
    while saving) run would end one step past an uninterrupted one. By `on_train_begin` the checkpoint's weights
    and state are loaded; `fit` catches the exception and goes on to evaluate them.
    """

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise TrainingAlreadyFinished(f"step {state.global_step} of {state.max_steps}")
