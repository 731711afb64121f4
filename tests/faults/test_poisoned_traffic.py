"""Fault suite, poisoned traffic: the server under 32 concurrent clients of valid traffic (classify; completions and
chat, whole and streamed) mixed with every bad request of issue 13 from 8 more clients. Not one valid request may
fail, every bad one must get a 4xx, and /metrics must have counted no 5xx. (benchmarks/serve_load.py measures
the valid requests' latency with and without the same poison.)"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "serve"), str(TESTS.parent / "benchmarks")]
from serve_fixtures import chat_dir_fixture, classifier_dir_fixture, running  # noqa: E402, F401  (fixtures)
from serve_load import POISON_BODY_LIMIT, poison  # noqa: E402

from open_autoglm.serve import ServeLimits, build_app  # noqa: E402

CLIENTS, POISON_CLIENTS = 32, 8
POISON_EVERY = 4  # one bad request per this many valid ones
LIMITS = ServeLimits(
    max_body_bytes=POISON_BODY_LIMIT
)  # the defaults otherwise: admission 32 active, 128 queued


@dataclass
class Outcome:
    valid: int = 0
    bad: int = 0
    failures: list[str] = field(default_factory=list)


async def _valid(client: httpx.AsyncClient, route: str, body: dict[str, Any], outcome: Outcome) -> None:
    """200, and for a stream: chunks ending with [DONE], never an error event."""
    outcome.valid += 1
    if not body.get("stream"):
        response = await client.post(route, json=body)
        if response.status_code != 200:
            outcome.failures.append(f"valid {route} {body}: {response.status_code} {response.text[:200]}")
        return
    async with client.stream("POST", route, json=body) as response:
        events = [line async for line in response.aiter_lines() if line]
    if response.status_code != 200 or events[-1:] != ["data: [DONE]"] or any('"error"' in e for e in events):
        outcome.failures.append(f"valid stream {route} {body}: {response.status_code} {events[-2:]}")


async def _bad(client: httpx.AsyncClient, route: str, content: bytes, outcome: Outcome) -> None:
    outcome.bad += 1
    response = await client.post(route, content=content, headers={"Content-Type": "application/json"})
    if not 400 <= response.status_code < 500:
        outcome.failures.append(
            f"bad {route} {content[:120]!r}: {response.status_code} {response.text[:200]}"
        )


async def _drive(url: str, valid: list[tuple[str, dict[str, Any]]], bad: list[tuple[str, bytes]]) -> Outcome:
    outcome = Outcome()
    gate, poison_gate = asyncio.Semaphore(CLIENTS), asyncio.Semaphore(POISON_CLIENTS)
    limits = httpx.Limits(max_connections=CLIENTS + POISON_CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def valid_client(route: str, body: dict[str, Any]) -> None:
            async with gate:
                await _valid(client, route, body, outcome)

        async def bad_client(route: str, content: bytes) -> None:
            async with poison_gate:
                await _bad(client, route, content, outcome)

        spoiled = [bad[i % len(bad)] for i in range(len(valid) // POISON_EVERY)]
        await asyncio.gather(*(valid_client(*v) for v in valid), *(bad_client(*b) for b in spoiled))
    return outcome


def _run(app: Any, valid: list[tuple[str, dict[str, Any]]], task: str) -> tuple[Outcome, str]:
    name = app.state.served.name
    with running(app) as url:
        outcome = asyncio.run(asyncio.wait_for(_drive(url, valid, poison(task, name)), timeout=120))
        metrics = httpx.get(f"{url}/metrics").text
    return outcome, metrics


def _check(outcome: Outcome, metrics: str, valid: int) -> None:
    assert outcome.failures == [], f"{len(outcome.failures)} failures, e.g. {outcome.failures[:5]}"
    assert outcome.valid == valid and outcome.bad == valid // POISON_EVERY
    assert not re.search(r'status="5\d\d"', metrics), "the server answered a 5xx"
    assert re.search(r'status="4\d\d"', metrics), "the poison reached the server"


def _counter(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.mark.slow
def test_poisoned_classify_traffic_loses_no_valid_request(classifier_dir: Path) -> None:
    app = build_app(classifier_dir, limits=LIMITS)
    valid = [
        ("/v1/classify", {"input": f"team wins the final {i}" if i % 3 else ["new chip", f"stocks fall {i}"]})
        for i in range(1200)
    ]
    outcome, metrics = _run(app, valid, "classify")
    _check(outcome, metrics, len(valid))
    texts = sum(len(body["input"]) if isinstance(body["input"], list) else 1 for _, body in valid)
    assert _counter(metrics, "autoglm_classify_texts_total") == texts  # no bad text reached the model


def _generation(i: int, model: str) -> tuple[str, dict[str, Any]]:
    """Completions and chat, whole and streamed, greedy and sampled, a few without max_tokens (the default that
    fits the context)."""
    body: dict[str, Any] = {"model": model, "max_tokens": 2 + i % 3, "temperature": 0.0 if i % 2 else 0.8}
    if i % 97 == 0:
        del body["max_tokens"]
    body["stream"] = i % 4 == 0
    if i % 8 < 4:
        return "/v1/completions", {**body, "prompt": f"what do cats say {i}"}
    return "/v1/chat/completions", {
        **body,
        "messages": [{"role": "user", "content": f"name a red fruit {i}"}],
    }


@pytest.mark.slow
def test_poisoned_generation_traffic_loses_no_valid_request(chat_dir: Path) -> None:
    app = build_app(chat_dir, limits=LIMITS)
    valid = [_generation(i, app.state.served.name) for i in range(600)]
    outcome, metrics = _run(app, valid, "generate")
    _check(outcome, metrics, len(valid))
    whole = sum(1 for _, body in valid if not body["stream"])
    assert _counter(metrics, "autoglm_generation_requests_total") == whole  # no bad prompt reached the model
