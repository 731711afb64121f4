"""Multi-task fine-tuning: one shared backbone, a head per task, task sampling and loss weighting."""

from open_autoglm.multitask.job import run_multitask
from open_autoglm.multitask.model import MultitaskModel, load_multitask
from open_autoglm.multitask.sampling import task_probabilities
from open_autoglm.multitask.weighting import WEIGHTINGS, LossWeighting, project_conflicting

__all__ = [
    "WEIGHTINGS",
    "LossWeighting",
    "MultitaskModel",
    "load_multitask",
    "project_conflicting",
    "run_multitask",
    "task_probabilities",
]
