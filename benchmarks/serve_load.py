"""Server load: requests/s and latency p50/p99 of `autoglm serve` at concurrency 1, 8 and 32, for classification
and for generation, against the same server with dynamic batching off (one request per forward pass or
generate() call) — measured side by side in one process.

The models are small real ones, trained here in a minute unless given: all-MiniLM-L6-v2 + LoRA on 300 SST-2
rows (classification; --classifier to reuse a model folder) and the 260k-parameter stories Llama fine-tuned on 200
Alpaca rows (generation, greedy, 16 new tokens; --generator). Each server runs in a uvicorn thread on loopback;
the load comes from an httpx AsyncClient in the same process, --requests per level (default 256 classify, 96
generate), after a warm-up. Any non-200 answer counts as an error.

Figures, per task and concurrency: requests_per_s, p50_ms, p99_ms, errors, for `batched` and `unbatched`; the
ratio batched/unbatched of requests_per_s. Then poisoned traffic (issue 13): at concurrency 32, the valid requests'
p50/p99 on a clean server and on one that also gets --poison-every'th a bad request from `poison()` (8 more
clients), with `errors` (valid requests not answered 200) and `poison_not_4xx` (bad requests not answered 4xx),
both 0 on a sound server. Run: `.venv/bin/python benchmarks/serve_load.py` (about 5 minutes on 2 cores;
--only-poison skips the batching levels). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from open_autoglm.config import validate_config
from open_autoglm.serve import ServeLimits, build_app
from open_autoglm.train.job import run_train

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LEVELS = (1, 8, 32)
NEW_TOKENS = 16
WARMUP = 8
POISON_CLIENTS = 8
POISON_BODY_LIMIT = 64_000  # max_body_bytes of the poisoned servers, so a body over it costs little to send


def train_classifier(out: Path) -> Path:
    config = validate_config(
        {
            "name": "cls",
            "output_dir": str(out),
            "model": {"name": "minilm", "device": "cpu"},
            "data": {
                "train": str(SHARED / "data" / "sst2" / "train.tsv"),
                "columns": ["label", "text"],
                "max_rows": 300,
                "max_length": 64,
            },
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": 1, "lr": 3e-3, "batch_size": 16},
            "quiet": True,
        }
    )
    run_train(config)
    return config.run_dir / "model"


def train_generator(out: Path) -> Path:
    config = validate_config(
        {
            "name": "gen",
            "task": "sft",
            "output_dir": str(out),
            "model": {"name": str(SHARED / "models" / "stories260k"), "device": "cpu"},
            "data": {
                "train": str(SHARED / "data" / "alpaca_en_demo" / "alpaca_en_demo.json"),
                "max_rows": 200,
                "max_length": 128,
            },
            "method": {"name": "full"},
            "train": {"epochs": 1, "lr": 3e-3, "batch_size": 8},
            "quiet": True,
        }
    )
    run_train(config)
    return config.run_dir / "model"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def bodies(task: str, model: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    if task == "classify":
        rows = (SHARED / "data" / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
        texts = [line.split("\t")[-1] for line in rows]
        return [("/v1/classify", {"model": model, "input": texts[i % len(texts)]}) for i in range(count)]
    prompts = [
        "Give three tips for staying healthy.",
        "Once upon a time",
        "Describe a sunny day.",
        "Tell a story",
    ]
    return [
        (
            "/v1/completions",
            {"model": model, "prompt": f"{prompts[i % 4]} ({i})", "max_tokens": NEW_TOKENS, "temperature": 0},
        )
        for i in range(count)
    ]


async def load(url: str, requests: list[tuple[str, dict[str, Any]]], concurrency: int) -> dict[str, float]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def one(route: str, body: dict[str, Any]) -> None:
            nonlocal errors
            async with gate:
                started = time.perf_counter()
                response = await client.post(route, json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        await asyncio.gather(*(one(r, b) for r, b in requests[:WARMUP]))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(r, b) for r, b in requests[WARMUP:]))
        wall = time.perf_counter() - started
    return {
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 2),
        "errors": errors,
    }


def measure(model_dir: Path, task: str, count: int) -> dict[str, Any]:
    arms = {
        "batched": ServeLimits(),
        "unbatched": ServeLimits(max_batch=1, max_generation_batch=1, max_generation_wait_ms=0),
    }
    figures: dict[str, Any] = {}
    for level in LEVELS:
        row: dict[str, Any] = {}
        for arm, limits in arms.items():
            app = build_app(model_dir, limits=limits)
            requests = bodies(task, app.state.served.name, count + WARMUP)
            with running(app) as url:
                row[arm] = asyncio.run(load(url, requests, level))
        row["ratio_requests_per_s"] = round(
            row["batched"]["requests_per_s"] / row["unbatched"]["requests_per_s"], 2
        )
        figures[f"concurrency_{level}"] = row
        print(f"{task} c={level}: {json.dumps(row)}", file=sys.stderr)
    return figures


def _ascii_json(body: Any) -> bytes:
    """JSON as a client may send it: a lone surrogate travels as the escape \\ud800 (valid JSON syntax)."""
    return json.dumps(body).encode()


def poison(task: str, model: str) -> list[tuple[str, bytes]]:
    """Bad requests, (route, raw body), each to be answered 4xx by a sound server: the items issue 13 found failing
    whole batches (lone surrogates, an empty prompt, a temperature that overflows), prompts too long for the context
    (large ones too, tokenised off the event loop), malformed or oversized bodies, options out of range."""
    if task == "classify":
        bodies: list[Any] = [
            {"model": model, "input": "bad \ud800 text"},
            {"model": model, "input": ["fine", "\udfff"]},
            {"model": model, "input": []},
            {"model": model, "input": ["x"] * 65},
            {"model": model, "input": 5},
            {"model": "gpt-4", "input": "x"},
            {"model": model, "input": "x" * POISON_BODY_LIMIT},
            [1, 2],
        ]
        route = "/v1/classify"
        raw = [b"{not json", b'{"input": "\xff\xfe"}']  # the second is not UTF-8
        return [(route, _ascii_json(b)) for b in bodies] + [(route, r) for r in raw]
    base = {"model": model, "max_tokens": 4}
    chat = [{"role": "user", "content": "hello \ud800"}]
    bodies = [
        ("/v1/completions", {**base, "prompt": "what \ud800 colour"}),
        ("/v1/completions", {**base, "prompt": "what \ud800 colour", "stream": True}),
        ("/v1/completions", {**base, "prompt": ""}),
        ("/v1/completions", {**base, "prompt": "", "stream": True}),
        ("/v1/completions", {**base, "prompt": "hi", "temperature": 1e-300}),
        ("/v1/completions", {**base, "prompt": "hi", "temperature": 1e-300, "stream": True}),
        ("/v1/completions", {**base, "prompt": "hi", "stop": ["a", "\udc00"]}),
        ("/v1/completions", {**base, "prompt": "hi", "max_tokens": 100_000}),
        ("/v1/completions", {**base, "prompt": "hi", "temperature": 3}),
        ("/v1/completions", {**base, "prompt": "word " * 4000}),  # over the context: refused once tokenised
        ("/v1/completions", {**base, "prompt": "word " * 4000, "stream": True}),
        ("/v1/completions", {**base, "prompt": "x" * POISON_BODY_LIMIT}),
        ("/v1/completions", {**base, "prompt": ["a", "b"]}),
        ("/v1/completions", {**base, "model": "gpt-4", "prompt": "hi"}),
        ("/v1/chat/completions", {**base, "messages": chat}),
        ("/v1/chat/completions", {**base, "messages": chat, "stream": True}),
        ("/v1/chat/completions", {**base, "messages": [{"role": "assistant", "content": "hi"}]}),
        ("/v1/chat/completions", {**base, "messages": [{"role": "user", "content": "hi"}], "n": 2}),
        ("/v1/chat/completions", {**base, "messages": []}),
    ]
    raw = [
        ("/v1/completions", b"{not json"),
        ("/v1/completions", f'{{"model": "{model}", "prompt": "hi", "temperature": NaN}}'.encode()),
        ("/v1/completions", f'{{"model": "{model}", "prompt": "\xff"}}'.encode("latin-1")),  # not UTF-8
    ]
    return [(route, _ascii_json(body)) for route, body in bodies] + raw


async def load_poisoned(
    url: str, valid: list[tuple[str, dict[str, Any]]], bad: list[tuple[str, bytes]], every: int
) -> dict[str, float]:
    """The valid requests at concurrency 32; with `every` > 0, one bad request per `every` valid ones as well,
    sent by POISON_CLIENTS more clients at the same time. Latency is the valid requests' alone."""
    latencies: list[float] = []
    errors = poison_not_4xx = 0
    gate, poison_gate = asyncio.Semaphore(32), asyncio.Semaphore(POISON_CLIENTS)
    limits = httpx.Limits(max_connections=32 + POISON_CLIENTS)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(route: str, body: dict[str, Any]) -> None:
            nonlocal errors
            async with gate:
                started = time.perf_counter()
                response = await client.post(route, json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        async def spoil(route: str, content: bytes) -> None:
            nonlocal poison_not_4xx
            async with poison_gate:
                response = await client.post(route, content=content, headers=headers)
                poison_not_4xx += not 400 <= response.status_code < 500

        await asyncio.gather(*(one(r, b) for r, b in valid[:WARMUP]))
        latencies.clear()
        spoiled = [bad[i % len(bad)] for i in range(len(valid) // every)] if every else []
        await asyncio.gather(*(one(r, b) for r, b in valid[WARMUP:]), *(spoil(r, c) for r, c in spoiled))
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 2),
        "errors": errors,
        "poison_requests": len(spoiled),
        "poison_not_4xx": poison_not_4xx,
    }


def measure_poison(model_dir: Path, task: str, count: int, every: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for arm, arm_every in (("clean", 0), ("poisoned", every)):
        app = build_app(model_dir, limits=ServeLimits(max_body_bytes=POISON_BODY_LIMIT))
        name = app.state.served.name
        with running(app) as url:
            figures[arm] = asyncio.run(
                load_poisoned(url, bodies(task, name, count + WARMUP), poison(task, name), arm_every)
            )
    print(f"{task} poison: {json.dumps(figures)}", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", type=Path, help="a classifier model folder (default: train one)")
    parser.add_argument("--generator", type=Path, help="a causal LM model folder (default: train one)")
    parser.add_argument("--requests", type=int, default=256, help="classify requests per level")
    parser.add_argument("--generations", type=int, default=96, help="generate requests per level")
    parser.add_argument(
        "--poison-every", type=int, default=4, help="one bad request per this many valid ones"
    )
    parser.add_argument("--only-poison", action="store_true", help="skip the batching levels")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "serve_load", "new_tokens": NEW_TOKENS}
    with tempfile.TemporaryDirectory() as tmp:
        classifier = args.classifier or train_classifier(Path(tmp))
        generator = args.generator or train_generator(Path(tmp))
        if not args.only_poison:
            result["classify"] = measure(classifier, "classify", args.requests)
            result["generate"] = measure(generator, "generate", args.generations)
        result["poison"] = {
            "every": args.poison_every,
            "classify": measure_poison(classifier, "classify", args.requests, args.poison_every),
            "generate": measure_poison(generator, "generate", args.generations, args.poison_every),
        }
    result["errors"] = sum(
        row[arm]["errors"]
        for task in ("classify", "generate")
        for row in result.get(task, {}).values()
        for arm in ("batched", "unbatched")
    ) + sum(
        result["poison"][task][arm]["errors"]
        for task in ("classify", "generate")
        for arm in ("clean", "poisoned")
    )
    result["poison_not_4xx"] = sum(
        result["poison"][task]["poisoned"]["poison_not_4xx"] for task in ("classify", "generate")
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
