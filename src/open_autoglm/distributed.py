"""Which process this is when `torchrun` / `accelerate launch` start several, and the few collectives we need.

The launchers set RANK and WORLD_SIZE; the Hugging Face Trainer (through Accelerate) does the data-parallel
training itself (DDP, FSDP, DeepSpeed per Accelerate's config). What is left to us: only rank 0 writes the run
folder, the others wait while it prepares data, and a search trial's parameters and its pruning decision are
rank 0's, sent to every rank so that all train the same trial and stop together.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    return rank() == 0


def sharded_training() -> bool:
    """Whether `accelerate launch` set up FSDP or DeepSpeed: then no rank may be assumed to hold the whole model,
    so gathering the weights takes every rank, and work only rank 0 does (a forward pass of its own) is unsafe."""
    if not is_distributed():
        return False
    flags = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED")
    return any(os.environ.get(flag, "false").lower() == "true" for flag in flags)


def finish() -> None:
    """End the process group when a verb is done: each rank waits for the others, then tears the group down.
    A rank that exits while the group lives can abort in its threads at shutdown (SIGABRT, "terminate called
    without an active exception") after its work is done, failing the launch."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _ensure_process_group() -> None:
    """Accelerate's state starts the process group (gloo on CPUs, NCCL on GPUs) the way the Trainer will."""
    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState()


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (it writes, e.g. prepared data); the others run it after (they reuse)."""
    if not is_distributed():
        yield
        return
    _ensure_process_group()
    if not is_main_process():
        dist.barrier()
    yield
    if is_main_process():
        dist.barrier()


def from_main(value: T) -> T:
    """Rank 0's `value` on every rank (any picklable object); the value itself when there is one process."""
    if not is_distributed():
        return value
    _ensure_process_group()
    box: list[Any] = [value if is_main_process() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]
