"""Tasks, one module each; importing this package registers the built-ins."""

from open_autoglm.tasks import classification, pretrain, sft  # noqa: F401  (registration)
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData

__all__ = ["TASKS", "BaseTask", "PreparedData"]
