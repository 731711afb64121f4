"""Server load: requests/s and latency p50/p99 of `autoglm serve` at concurrency 1, 8 and 32, for classification
and for generation, against the same server with dynamic batching off (one request per forward pass or
generate() call) — measured side by side in one process.

The models are small real ones, trained here in a minute unless given: all-MiniLM-L6-v2 + LoRA on 300 SST-2
rows (classification; --classifier to reuse a model folder) and the 260k-parameter stories Llama fine-tuned on 200
Alpaca rows (generation, greedy, 16 new tokens; --generator). Each server runs in a uvicorn thread on loopback;
the load comes from an httpx AsyncClient in the same process, --requests per level (default 256 classify, 96
generate), after a warm-up. Any non-200 answer counts as an error.

Figures, per task and concurrency: requests_per_s, p50_ms, p99_ms, errors, for `batched` and `unbatched`; the
ratio batched/unbatched of requests_per_s. Run: `.venv/bin/python benchmarks/serve_load.py` (about 4 minutes on
2 cores). The last line is one JSON object.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", type=Path, help="a classifier model folder (default: train one)")
    parser.add_argument("--generator", type=Path, help="a causal LM model folder (default: train one)")
    parser.add_argument("--requests", type=int, default=256, help="classify requests per level")
    parser.add_argument("--generations", type=int, default=96, help="generate requests per level")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        classifier = args.classifier or train_classifier(Path(tmp))
        generator = args.generator or train_generator(Path(tmp))
        result = {
            "benchmark": "serve_load",
            "classify": measure(classifier, "classify", args.requests),
            "generate": measure(generator, "generate", args.generations),
            "new_tokens": NEW_TOKENS,
        }
    result["errors"] = sum(
        row[arm]["errors"]
        for task in ("classify", "generate")
        for row in result[task].values()
        for arm in ("batched", "unbatched")
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
