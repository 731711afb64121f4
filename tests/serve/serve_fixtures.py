"""Tiny models trained once for the server tests, and a real uvicorn server on a free loopback port (a plain
module, not conftest.py: a second conftest module would shadow tests/conftest.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from conftest import SFT_PAIRS, write_jsonl
from fastapi import FastAPI

from open_autoglm.config import validate_config
from open_autoglm.train.job import run_train

API_KEY = "test-key-123"


def _train(tmp: Path, model: Path, data: Path, task: str, **data_keys: object) -> Path:
    config = validate_config(
        {
            "name": f"tiny-{task}",
            "task": task,
            "output_dir": str(tmp),
            "model": {"name": str(model), "device": "cpu"},
            "data": {"train": str(data), "max_length": 24, "val_ratio": 0.2, "test_ratio": 0.2, **data_keys},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16, "seed": 3},
            "quiet": True,
        },
        "test",
    )
    run_train(config)
    return config.run_dir / "model"


@pytest.fixture(scope="session", name="classifier_dir")
def classifier_dir_fixture(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    from open_autoglm.data.synthetic import make_topic_rows

    tmp = tmp_path_factory.mktemp("serve-cls")
    data = write_jsonl(tmp / "topics.jsonl", make_topic_rows(160, seed=5))
    return _train(tmp, tiny_encoder, data, "classification")


@pytest.fixture(scope="session", name="chat_dir")
def chat_dir_fixture(tmp_path_factory: pytest.TempPathFactory, tiny_chat_decoder: Path) -> Path:
    tmp = tmp_path_factory.mktemp("serve-sft")
    data = write_jsonl(tmp / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 8])
    return _train(tmp, tiny_chat_decoder, data, "sft", dedup={"exact": False, "near": False})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` on loopback in a background thread; yields the base URL and stops the server after."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
