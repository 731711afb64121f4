"""GradNorm under several processes (gloo, 2 processes on the CPU): each process sees other batches and, on some
steps, only one task, yet the learned task weights stay the same on both — as DDP keeps the model's."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from open_autoglm.multitask.weighting import GradNormWeighting

STEPS = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same shared layer on both, as after DDP's broadcast
        shared = nn.Linear(4, 4)
        synced, alone = (
            GradNormWeighting(["loud", "quiet"], [1.0, 1.0], list(shared.parameters()), lr=0.05)
            for _ in range(2)
        )

        def total(t: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(t)
            return t

        synced.across_processes(total)
        data = torch.Generator().manual_seed(100 + rank)  # each process its own batches
        for step in range(STEPS):
            h = shared(torch.randn(8, 4, generator=data))
            losses = {"loud": 10 * (1 + rank) * h.pow(2).mean(), "quiet": 0.1 * h.abs().mean()}
            if rank == 1 and step % 3 == 0:
                losses.pop("quiet")  # this process drew only one task this step
            for weighting in (synced, alone):
                weighting.backward(losses, [], lambda t: None)
        weights = {"synced": synced.weights(), "alone": alone.weights()}
        Path(out, f"{rank}.json").write_text(json.dumps(weights))
    finally:
        dist.destroy_process_group()


def test_gradnorm_weights_agree_across_processes(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    first, second = (json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1))
    assert first["synced"] == second["synced"]
    assert first["synced"]["loud"] < 1.0 < first["synced"]["quiet"]  # they moved: the loud task turned down
    assert first["alone"] != second["alone"]  # what each process learns by itself differs
