"""Open-AutoGLM: an automatic fine-tuning optimiser for language models."""

__version__ = "0.1.0"
