"""Versions of the stack, recorded in every artifact so a result can be traced to what made it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

_PACKAGES = ("open-autoglm", "torch", "transformers", "peft", "accelerate", "datasets", "optuna")


def versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
