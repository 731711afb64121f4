"""What preparing a run's data reads: the `data` section plus the few facts of the run it depends on.

The data part takes this instead of the whole run config, so what can change its output is visible in one
place (and is what its fingerprint hashes, with the input files' bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from open_autoglm.config import Config
from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig
from open_autoglm.tasks import TASKS


@dataclass(frozen=True)
class DataRequest:
    data: DataConfig
    task: str  # the task's registry name (recorded in data_report.json)
    kind: str  # the built-in kind it reads as: which canonical rows, stratified or not
    seed: int  # of the splits, the mix weights and augmentation
    model: ModelConfig  # whose tokenizer counts tokens, for the token-length filters
    quiet: bool = False  # no progress bar

    @classmethod
    def of(cls, config: Config) -> DataRequest:
        """A run config's request: the one place a whole config meets the data part."""
        kind = TASKS.get(config.task).kind
        return cls(config.data, config.task, kind, config.train.seed, config.model, config.quiet)
