"""Prometheus metrics for one app, in its own registry (two apps in one process must not share counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class ServeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "autoglm_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "autoglm_request_seconds",
            "time to the response's first byte (a stream's length is not included)",
            ["route"],
            registry=self.registry,
        )
        self.active = Gauge(
            "autoglm_active_requests", "requests doing model work now", registry=self.registry
        )
        self.queued = Gauge(
            "autoglm_queued_requests", "requests waiting for a turn at the model", registry=self.registry
        )
        self.stream_errors = Counter(
            "autoglm_stream_errors", "streams that ended with an error event", registry=self.registry
        )
        self.prompt_tokens = Counter("autoglm_prompt_tokens", "prompt tokens read", registry=self.registry)
        self.generated_tokens = Counter(
            "autoglm_generated_tokens", "tokens generated", registry=self.registry
        )
        self.batches = Counter(
            "autoglm_classify_batches", "classification forward passes run", registry=self.registry
        )
        self.batched_texts = Counter(
            "autoglm_classify_texts",
            "texts classified (over batches: the mean batch size)",
            registry=self.registry,
        )
        self.generation_batches = Counter(
            "autoglm_generation_batches", "generate() calls for whole replies", registry=self.registry
        )
        self.batched_generations = Counter(
            "autoglm_generation_requests",
            "whole replies generated (over batches: the mean batch size)",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
