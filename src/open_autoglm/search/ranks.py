"""`tune` under torchrun / accelerate launch: rank 0 runs the study, every other rank trains each trial with it.

Rank 0 alone talks to the study and writes the run folder; a trial's model is trained by all the launched
processes together (DDP, FSDP or DeepSpeed inside `fit`). The two sides take the same steps in the same order,
since each step they share waits for the other side:

    rank 0 (search/job.py)                      every other rank (`follow_rank_zero`)
    prepare the data, first                     read the data rank 0 prepared
    build the space, check the launch           build the space, check the launch (the same refusals)
    for each trial: send a TrialOrder, train    receive the order, train with rank 0
      (a pruning decision is sent too)            (stop where rank 0 says, search/trial.py)
    refit: send its order, train                receive it, train with rank 0
    send None (`lead_ranks` ends)               stop following

Without a launch every call here is the plain single-process step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import optuna

from open_autoglm.config import Config
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData
from open_autoglm.distributed import from_main, is_distributed, main_process_first, sharded_training
from open_autoglm.run_folder import RunFolder
from open_autoglm.search.objectives import objective_named
from open_autoglm.search.space import build_space
from open_autoglm.search.trial import ReportingCallback, release_memory
from open_autoglm.tasks import BaseTask
from open_autoglm.train.job import fit


def prepare_data(config: Config) -> LoadedData:
    """The data, prepared once for all trials (reused when unchanged); under a launch rank 0 prepares it and the
    other ranks read what it wrote."""
    with main_process_first():
        return load_data(DataRequest.of(config), RunFolder(config.run_dir).data)


def check_ranks(config: Config) -> None:
    """Under a launch, refuse what the ranks cannot run together (every rank refuses alike, so none waits)."""
    if not is_distributed():
        return
    check_launch(config)
    if config.search.workers > 1:
        raise ValueError(
            "search.workers > 1 under torchrun / accelerate launch: every trial already trains on all "
            "the launched processes; use workers: 1 (or more machines sharing search.storage)"
        )


def check_launch(config: Config) -> None:
    """Refuse under FSDP / DeepSpeed the objectives rank 0 measures by running the model alone: a sharded model
    runs only on every rank together."""
    alone = [n for n in config.search.objectives if n == "latency" or objective_named(n).measure is not None]
    if sharded_training() and alone:
        raise ValueError(
            f"search.objectives {alone} run the trained model on rank 0 alone, which FSDP / DeepSpeed cannot; "
            "search them on one process or under DDP"
        )


@contextmanager
def lead_ranks() -> Iterator[None]:
    """Rank 0's study, trials and refit run in this block; at its end, even on an error, the other ranks are told
    to stop following. Begin it only after the checks, which every rank passes or fails alike."""
    try:
        yield
    finally:
        from_main(None)  # a no-op without a launch


def follow_rank_zero(config: Config, task: BaseTask) -> None:
    """A rank other than 0: the same preparation as rank 0, then train each trial it orders."""
    loaded = prepare_data(config)
    build_space(config)  # a space rank 0 refuses is refused here too, rather than waiting for orders
    check_ranks(config)
    follow_trials(loaded, task.search_metric(config.search.metric, config.train)[0])


def follow_trials(loaded: LoadedData, metric: str) -> None:
    """Train each trial rank 0 orders, until it sends None.

    The same config trains here with rank 0 (DDP inside `fit`); a pruning decision arrives through
    `ReportingCallback`, so that every rank stops the trial at the same evaluation.
    """
    while (order := from_main(None)) is not None:
        try:
            fit(
                order.config,
                order.trial_dir,
                resume=False,
                loaded=order.loaded or loaded,
                callbacks=[ReportingCallback(None, None, metric)],
                checkpoints=False,
                baseline=order.baseline,
            )
        except optuna.TrialPruned:
            pass
        finally:
            release_memory()
