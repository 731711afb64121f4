"""Atomic checkpoints: a checkpoint counts only once a marker says it was written completely.

The Trainer writes `checkpoint-N/` file by file; a kill in the middle leaves a half-written folder that
`resume_from_checkpoint=True` would try to load. We write a marker after the Trainer finishes a save
(`on_save`, with an atomic rename) and resume only from marked checkpoints, removing unmarked ones.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

COMPLETE_MARKER = "autoglm_complete"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(folder: Path) -> list[Path]:
    """Marked checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _CHECKPOINT.match(p.name) and (p / COMPLETE_MARKER).exists()]
    return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)))  # type: ignore[union-attr]


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
    tmp = checkpoint / (COMPLETE_MARKER + ".tmp")
    with open(tmp, "w") as handle:
        handle.write("ok\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, checkpoint / COMPLETE_MARKER)


class CheckpointMarkerCallback(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has written all of it."""

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if path.is_dir():
                mark_complete(path)
