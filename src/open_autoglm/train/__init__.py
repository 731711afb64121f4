"""The train job and its components (tasks, losses, callbacks, checkpoints)."""
