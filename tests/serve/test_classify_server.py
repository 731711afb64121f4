"""The server over a tiny classifier: API key, /v1/classify, OpenAI-shaped errors, and batching under load."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from serve_fixtures import API_KEY, classifier_dir_fixture, running  # noqa: F401  (the classifier_dir fixture)

from open_autoglm.serve import ServeLimits, build_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def server(classifier_dir) -> Iterator[tuple[str, object]]:
    app = build_app(classifier_dir, api_key=API_KEY, limits=ServeLimits(max_body_bytes=4096, max_wait_ms=10))
    with running(app) as url:
        yield url, app


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    return error


def test_health_is_open_and_everything_else_needs_the_key(server) -> None:
    url, _ = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert _error(httpx.get(f"{url}/v1/models"), 401)["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/metrics").status_code == 401
    models = httpx.get(f"{url}/v1/models", headers=AUTH).json()
    assert models["data"][0]["id"] == "tiny-classification"
    assert models["data"][0]["task"] == "classification"


def test_classify_returns_a_label_and_scores_per_text(server) -> None:
    url, app = server
    labels = set(app.state.served.labels)
    one = httpx.post(f"{url}/v1/classify", json={"input": "the match ended in a draw"}, headers=AUTH).json()
    (result,) = one["data"]
    assert result["label"] in labels and set(result["scores"]) == labels
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    many = httpx.post(
        f"{url}/v1/classify",
        json={"input": ["a", "b b", "c c c"], "model": "tiny-classification"},
        headers=AUTH,
    ).json()
    assert [r["index"] for r in many["data"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("path", "content", "status", "code"),
    [
        ("/v1/classify", b"{not json", 400, "invalid_json"),
        ("/v1/classify", json.dumps({"input": 5}).encode(), 400, "invalid_value"),
        ("/v1/classify", json.dumps({"text": "x"}).encode(), 400, "invalid_value"),
        ("/v1/classify", json.dumps([1, 2]).encode(), 400, "invalid_value"),
        ("/v1/classify", json.dumps({"input": []}).encode(), 400, "invalid_value"),
        ("/v1/classify", json.dumps({"input": "x", "model": "gpt-4"}).encode(), 404, "model_not_found"),
        ("/v1/classify", json.dumps({"input": "x" * 10_000}).encode(), 413, "request_too_large"),
        (
            "/v1/chat/completions",
            json.dumps(
                {"model": "tiny-classification", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            400,
            "unsupported_route",
        ),
        ("/v1/nothing", b"{}", 404, "not_found"),
    ],
)
def test_malformed_requests_get_openai_shaped_4xx(
    server, path: str, content: bytes, status: int, code: str
) -> None:
    url, _ = server
    response = httpx.post(
        f"{url}{path}", content=content, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert _error(response, status)["code"] == code


def test_a_chunked_body_over_the_limit_is_refused(server) -> None:
    url, _ = server

    def chunks() -> Iterator[bytes]:
        yield b'{"input": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    response = httpx.post(
        f"{url}/v1/classify", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert _error(response, 413)["code"] == "request_too_large"


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_load_of_200_requests_at_concurrency_16_batches_them_without_errors(server) -> None:
    url, _ = server
    before = httpx.get(f"{url}/metrics", headers=AUTH).text
    texts = [f"team wins the final number {i}" for i in range(200)]

    async def load() -> list[int]:
        gate = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:

            async def one(text: str) -> int:
                async with gate:
                    response = await client.post("/v1/classify", json={"input": text})
                    return response.status_code

            return await asyncio.gather(*(one(t) for t in texts))

    statuses = asyncio.run(asyncio.wait_for(load(), timeout=120))
    assert statuses == [200] * 200
    after = httpx.get(f"{url}/metrics", headers=AUTH).text
    batches = _metric(after, "autoglm_classify_batches_total") - _metric(
        before, "autoglm_classify_batches_total"
    )
    texts_run = _metric(after, "autoglm_classify_texts_total") - _metric(
        before, "autoglm_classify_texts_total"
    )
    assert texts_run == 200
    assert batches < 200  # requests were merged into shared forward passes
    assert 'autoglm_requests_total{route="/v1/classify",status="200"}' in after
    assert "autoglm_request_seconds_bucket" in after
