"""Domain adaptation: continued pretraining on domain text, parameter-efficient fine-tuning on the labelled task,
and evaluation on the target and on a second task (what was kept or lost)."""

from open_autoglm.transfer.job import run_transfer
from open_autoglm.transfer.probe import linear_probe, mean_pooled_features

__all__ = ["linear_probe", "mean_pooled_features", "run_transfer"]
