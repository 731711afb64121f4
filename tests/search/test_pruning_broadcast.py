"""Under torchrun, rank 0's pruning decision reaches every rank: all stop the trial at the same evaluation."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import optuna
import torch.distributed as dist
import torch.multiprocessing as mp

from open_autoglm.search.reports import ReportGrid
from open_autoglm.search.trial import ReportingCallback


class AlwaysPrune:
    """The part of an Optuna trial the callback uses, deciding to prune."""

    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return True


def _rank(rank: int, port: int, outcomes: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    trial = AlwaysPrune() if rank == 0 else None  # only rank 0 talks to the study
    grid = ReportGrid(per_epoch=1, epoch_examples=10, epochs=2.0)
    reporter = ReportingCallback(trial, None, "accuracy", grid)  # type: ignore[arg-type]
    state = SimpleNamespace(epoch=1.0, global_step=5, max_steps=10)
    try:
        reporter.on_evaluate(None, state, None, metrics={"eval_accuracy": 0.5})
        outcomes[rank] = "went on"
    except optuna.TrialPruned as pruned:
        outcomes[rank] = f"pruned: {pruned}"
    finally:
        dist.destroy_process_group()


def test_every_rank_stops_with_rank_0() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with mp.Manager() as manager:
        outcomes = manager.dict()
        mp.spawn(_rank, args=(port, outcomes), nprocs=2, join=True)
        assert dict(outcomes) == {0: "pruned: pruned", 1: "pruned: pruned"}
