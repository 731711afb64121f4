"""Issue 13's serving defects, one test each: a bad item fails alone, a failed stream says so, admission bounds the
work and the queue, tokenising leaves /health free, /metrics counts every status, max_tokens defaults to what
fits, and `autoglm serve` refuses an empty key, a bad address and a folder's own code unless asked."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_fixtures import (  # noqa: F401  (the fixtures)
    chat_dir_fixture,
    classifier_dir_fixture,
    free_port,
    running,
)

from open_autoglm.cli import build_parser, main
from open_autoglm.serve import ServeLimits, build_app
from open_autoglm.serve.admission import Admission
from open_autoglm.serve.app import INLINE_PROMPT_CHARS, app_for
from open_autoglm.serve.batching import DynamicBatcher
from open_autoglm.serve.errors import APIError
from open_autoglm.serve.loading import load_served

MODEL = "tiny-sft"


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll a counter the server keeps (no fixed sleep: the wait ends as soon as the state is reached)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    """POST `body` as ASCII JSON: a lone surrogate travels as the escape \\ud800, as a client's JSON would carry
    it (httpx's own encoder writes UTF-8, which cannot hold one)."""
    return httpx.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30)


@pytest.fixture(scope="module")
def chat_server(chat_dir: Path) -> Iterator[str]:
    """Default limits: max_tokens 512 and a default of 256 on a model with 128 positions."""
    with running(build_app(chat_dir)) as url:
        yield url


# 1. One bad item fails alone


def test_a_failing_item_fails_only_its_own_request_in_a_batch() -> None:
    def run_batch(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return [10 * i for i in items]

    async def main_() -> list[Any]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(run_batch, max_batch=8, max_wait_s=0.05)
        try:
            return await asyncio.gather(*(batcher.submit([i]) for i in (1, -1, 2, 3)), return_exceptions=True)
        finally:
            await batcher.close()

    ok_1, bad, ok_2, ok_3 = asyncio.run(main_())
    assert (ok_1, ok_2, ok_3) == ([10], [20], [30])
    assert isinstance(bad, ValueError)


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/v1/completions", {"prompt": "what \ud800 colour"}, "prompt"),
        ("/v1/completions", {"prompt": ["\udc00"]}, "prompt"),
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/v1/completions", {"prompt": "   "}, "prompt"),  # no tokens for a word-level tokenizer
        ("/v1/completions", {"prompt": "hi", "temperature": 1e-300}, "temperature"),
        ("/v1/completions", {"prompt": "hi", "stop": ["a", "\ud800"]}, "stop"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "a\ud800"}]},
            "messages.0.content",
        ),
    ],
)
def test_items_that_would_fail_in_a_batch_are_400s_naming_the_field(
    chat_server: str, route: str, body: dict, field: str
) -> None:
    for stream in (False, True):
        response = _post(f"{chat_server}{route}", {"model": MODEL, "max_tokens": 3, "stream": stream, **body})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith(f"{field}:")


def test_a_lone_surrogate_in_a_text_to_classify_is_a_400(classifier_dir: Path) -> None:
    with running(build_app(classifier_dir)) as url:
        response = _post(f"{url}/v1/classify", {"input": ["fine", "bad \ud800"]})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("input: Value error, text 1 has a lone surrogate")


# 2. A failed stream ends with an error event


def test_a_stream_whose_generation_fails_ends_with_an_openai_error_event(chat_dir: Path) -> None:
    served = load_served(chat_dir)

    def broken(**_: Any) -> None:
        raise RuntimeError("device lost")

    served.torch_model.generate = broken  # type: ignore[method-assign]
    body = {"model": MODEL, "prompt": "what colour is", "max_tokens": 4, "stream": True}
    with running(app_for(served)) as url:
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as response:
            events = [line for line in response.iter_lines() if line]
        metrics = httpx.get(f"{url}/metrics").text
    assert response.status_code == 200 and events, "an empty stream tells the client nothing"
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == "generation_failed" and error["type"] == "server_error" and error["message"]
    assert "data: [DONE]" not in events
    assert "autoglm_stream_errors_total 1.0" in metrics


# 3. Admission bounds the work and the queue


def test_beyond_the_active_and_queued_bounds_a_request_gets_503_with_retry_after(chat_dir: Path) -> None:
    served = load_served(chat_dir)
    app = app_for(served, limits=ServeLimits(max_active=1, max_queued=1, queue_timeout_s=60))
    admission = app.state.admission
    stream_body = {"model": MODEL, "prompt": "what colour is", "max_tokens": 3, "stream": True}
    whole_body = {"model": MODEL, "prompt": "what do cats say", "max_tokens": 3, "temperature": 0}
    with running(app) as url:
        served.lock.acquire()  # the model is busy: the admitted stream's generate() waits on it
        try:
            streaming, streamed = _in_thread(
                lambda: httpx.post(f"{url}/v1/completions", json=stream_body, timeout=60)
            )
            _wait_for(lambda: admission.active == 1, "the stream to hold the only turn")
            waiting, waited = _in_thread(
                lambda: httpx.post(f"{url}/v1/completions", json=whole_body, timeout=60)
            )
            _wait_for(lambda: admission.queued == 1, "a request to wait in the queue")
            refused = httpx.post(f"{url}/v1/completions", json=whole_body, timeout=30)
            threads = [t.name for t in threading.enumerate() if t.name.startswith("autoglm-stream")]
        finally:
            served.lock.release()
        streaming.join(60)
        waiting.join(60)
        metrics = httpx.get(f"{url}/metrics").text
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "server_overloaded"
    assert len(threads) <= 1  # at most max_active generate threads
    assert streamed[0].status_code == 200 and streamed[0].text.rstrip().endswith("data: [DONE]")
    assert waited[0].status_code == 200
    assert 'status="503"' in metrics
    assert admission.active == 0 and admission.queued == 0


def test_a_queued_request_waits_at_most_the_queue_timeout() -> None:
    async def main_() -> tuple[APIError, APIError, int]:
        admission = Admission(max_active=1, max_queued=1, timeout_s=0.05)
        held = await admission.enter()
        with pytest.raises(APIError) as timed_out:
            await admission.enter()  # waits 0.05 s in the queue, then gives up
        queued = asyncio.ensure_future(admission.enter())
        await asyncio.sleep(0)  # let it take the queue's one place
        with pytest.raises(APIError) as full:
            await admission.enter()  # the queue is full: refused at once
        held.release()
        (await queued).release()
        return timed_out.value, full.value, admission.active

    timed_out, full, active = asyncio.run(main_())
    assert timed_out.status == 503 and "within 0.05 s" in timed_out.message
    assert full.status == 503 and "1 waiting" in full.message
    assert active == 0


# 4. Tokenising stays off the event loop


class _GatedTokenizer:
    """The model's tokenizer, held at its first call until the test opens the gate (a 1 MB prompt's seconds)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.entered, self.gate = tokenizer, threading.Event(), threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.gate.wait(60)
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


def test_health_answers_while_a_prompt_is_being_tokenised(chat_dir: Path) -> None:
    served = load_served(chat_dir)
    gated = _GatedTokenizer(served.tokenizer)
    served.tokenizer = gated  # type: ignore[assignment]
    # Long enough to be tokenised off the event loop (short prompts are tokenised on it: microseconds)
    long_prompt = "what colour is " * (INLINE_PROMPT_CHARS // 10)
    body = {"model": MODEL, "prompt": long_prompt, "max_tokens": 2, "temperature": 0}
    with running(app_for(served)) as url:
        try:
            worker, answered = _in_thread(lambda: httpx.post(f"{url}/v1/completions", json=body, timeout=60))
            assert gated.entered.wait(30)
            health = httpx.get(f"{url}/health", timeout=5)  # the event loop is free while tokenising goes on
        finally:
            gated.gate.set()
        worker.join(60)
    assert health.status_code == 200
    # answered, not hung: over the tiny model's 128 positions, it is refused once tokenised
    assert answered[0].status_code == 400
    assert answered[0].json()["error"]["code"] == "context_length_exceeded"


# 5. /metrics counts every status


def test_metrics_count_500s_from_unexpected_errors(classifier_dir: Path) -> None:
    served = load_served(classifier_dir)

    def broken(texts: list[str]) -> list[dict[str, float]]:
        raise RuntimeError("device lost")

    served.classify = broken  # type: ignore[method-assign]
    with running(app_for(served)) as url:
        response = httpx.post(f"{url}/v1/classify", json={"input": "x"}, timeout=30)
        metrics = httpx.get(f"{url}/metrics").text
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert 'autoglm_requests_total{route="/v1/classify",status="500"} 1.0' in metrics


# 6. max_tokens defaults to what fits


def test_without_max_tokens_the_reply_fits_the_context(chat_server: str) -> None:
    body = {"model": MODEL, "prompt": "what colour is the sky", "temperature": 0}
    for stream in (False, True):
        response = httpx.post(f"{chat_server}/v1/completions", json={**body, "stream": stream}, timeout=60)
        assert response.status_code == 200, response.text
    usage = httpx.post(f"{chat_server}/v1/completions", json=body, timeout=60).json()["usage"]
    assert usage["total_tokens"] <= 128  # the tiny model's positions
    too_many = httpx.post(f"{chat_server}/v1/completions", json={**body, "max_tokens": 200}, timeout=30)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "context_length_exceeded"


# 7, 8, 9. The command line


def test_an_empty_api_key_is_refused_before_anything_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-model"  # never reached: the key is checked first
    assert main(["serve", "--model", str(missing), "--api-key", ""]) == 2
    monkeypatch.setenv("AUTOGLM_API_KEY", "")
    assert main(["serve", "--model", str(missing)]) == 2
    assert "API key" in capsys.readouterr().err
    with pytest.raises(ValueError, match="API key is empty"):
        build_app(missing, api_key="  ")


def test_a_bad_port_or_host_is_refused_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--model", str(tmp_path), "--port", "99999"])
    assert exited.value.code == 2 and "99999 is not a port" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--host", "no-such-host.invalid"]) == 2
    error = capsys.readouterr().err
    assert "--host no-such-host.invalid" in error and "serving" not in error


def test_serve_runs_a_folders_own_code_only_when_the_operator_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import open_autoglm.serve.loading as loading

    seen: list[bool] = []

    def record(path: Path, device: str = "cpu", *, trust_remote_code: bool = False) -> Any:
        seen.append(trust_remote_code)
        raise FileNotFoundError("recorded")

    monkeypatch.setattr(loading, "load_finetuned", record)
    for flags in ([], ["--trust-remote-code"]):
        assert main(["serve", "--model", str(tmp_path), "--port", str(free_port()), *flags]) == 1
    assert seen == [False, True]
