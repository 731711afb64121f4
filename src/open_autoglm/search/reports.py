"""Where a trial reports to the pruners: at equal shares of an epoch, measured in training examples seen.

A report's step is the number of training examples seen, snapped to the grid, so trials with different batch
sizes report after the same training at the same step: their values compare directly, rung by rung, and the
pruners' resource (ASHA's and Hyperband's rungs, the curve predictor's horizon) is examples, not epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from open_autoglm.config import Config
from open_autoglm.distributed import world_size
from open_autoglm.search.pruners import Rungs
from open_autoglm.tasks import BaseTask
from open_autoglm.train.callbacks import shares_reached


@dataclass(frozen=True)
class ReportGrid:
    per_epoch: int  # reports an epoch
    epoch_examples: int  # training examples in one epoch
    epochs: float

    @property
    def final_step(self) -> int:
        return max(1, round(self.epochs * self.epoch_examples))

    def step_at(self, epoch: float) -> int:
        """The step of a report made at `epoch` (the Trainer's float): its share of the grid, in examples."""
        shares = shares_reached(epoch, self.per_epoch)
        if not shares:  # a run shorter than one share reports where it ends
            return max(1, round(epoch * self.epoch_examples))
        return round(shares * self.epoch_examples / self.per_epoch)

    def epochs_at(self, step: int) -> float:
        return step / self.epoch_examples

    def rungs(self, startup_trials: int) -> Rungs:
        """The first rung is the first report: a share of an epoch, or the whole run when it is shorter."""
        first = round(self.epoch_examples / self.per_epoch)
        return Rungs(min(first, self.final_step), self.final_step, startup_trials, self.epoch_examples)


def report_grid(config: Config, task: BaseTask, train_rows: int) -> ReportGrid:
    """The grid of the search's trials. `train.eval_every: N` steps becomes the share of an epoch N steps of
    the base config's batch cover, so a trial with another batch size reports after as many examples."""
    per_epoch = task.evaluation_grid(config.train)
    if per_epoch is None:
        train = config.train
        assert train.eval_every != "epoch"
        steps_per_epoch = math.ceil(train_rows / (train.batch_size * world_size())) / train.grad_accum
        per_epoch = max(1, round(steps_per_epoch / train.eval_every))
    return ReportGrid(per_epoch, max(1, train_rows), config.train.epochs)


def on_grid(config: Config, grid: ReportGrid) -> Config:
    """`config` evaluating on the grid (every trial of the search, whatever its batch size)."""
    train = config.train.model_copy(update={"eval_every": "epoch", "evals_per_epoch": grid.per_epoch})
    return config.model_copy(update={"train": train})
