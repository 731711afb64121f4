"""What one request may ask of the server: bounds that keep a single client from exhausting it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 1_000_000  # a request body larger than this is refused (413) before it is parsed
    max_tokens: int = 512  # the most new tokens one completion may ask for
    default_max_tokens: int = (
        256  # new tokens for a request that names none (less when the context is shorter)
    )
    max_inputs: int = 64  # the most texts one /v1/classify request may carry
    max_batch: int = 32  # the most texts one classification forward pass gathers
    max_generation_batch: int = 8  # the most whole (not streamed) replies one generate() call gathers
    # How long the first item of a batch waits for others to join it. Texts do not wait: while one batch runs the
    # next fills by itself, and waiting only slowed classification (benchmarks/serve_load.py); a prompt waits a
    # little, as a generate() call is long and costs about the same for 1 or 8 prompts.
    max_wait_ms: float = 0.0
    max_generation_wait_ms: float = 5.0
    # Admission: requests doing model work at once (each stream holds one generate thread), requests waiting for a
    # turn, and the longest wait. Beyond them a request gets 503 with Retry-After at once, never an unbounded wait.
    max_active: int = 32
    max_queued: int = 128
    queue_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_tokens",
            "default_max_tokens",
            "max_inputs",
            "max_batch",
            "max_generation_batch",
            "max_active",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if min(self.max_wait_ms, self.max_generation_wait_ms, self.max_queued) < 0:
            raise ValueError("max_wait_ms, max_generation_wait_ms and max_queued must not be negative")
        if self.queue_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be positive")
