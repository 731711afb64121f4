"""`autoglm serve`: an OpenAI-compatible HTTP API over a model folder written by train or tune."""

from open_autoglm.serve.app import build_app
from open_autoglm.serve.limits import ServeLimits

__all__ = ["ServeLimits", "build_app"]
