"""The server over a tiny SFT chat model, through the official openai client: completions, chat, streaming."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from serve_fixtures import chat_dir_fixture, running  # noqa: F401  (the chat_dir fixture)

from open_autoglm.serve import ServeLimits, build_app

MODEL = "tiny-sft"


@pytest.fixture(scope="module")
def server(chat_dir) -> Iterator[str]:
    with running(build_app(chat_dir, limits=ServeLimits(max_tokens=32))) as url:
        yield url


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60)


def test_completion_and_chat_completion_have_openai_shapes(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model=MODEL, prompt="what do cats say", max_tokens=5, temperature=0
    )
    assert completion.object == "text_completion" and isinstance(completion.choices[0].text, str)
    assert completion.usage is not None and 1 <= completion.usage.completion_tokens <= 5
    assert completion.choices[0].finish_reason in ("stop", "length")
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "what do dogs say"}], max_tokens=6, temperature=0
    )
    assert chat.choices[0].message.role == "assistant" and isinstance(chat.choices[0].message.content, str)
    assert (
        chat.usage is not None
        and chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    )
    sampled = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0.8, top_p=0.9
    )
    assert sampled.choices[0].finish_reason in ("stop", "length")


def test_streamed_chat_equals_the_whole_reply(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "name a red fruit"}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=8, temperature=0, stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_stream_ends_with_done_and_stop_strings_cut_the_reply(server: str, client: openai.OpenAI) -> None:
    body = {"model": MODEL, "prompt": "what colour is", "max_tokens": 8, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server}/v1/completions", json=body, timeout=60) as response:
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    whole = client.completions.create(model=MODEL, prompt="what colour is", max_tokens=8, temperature=0)
    text = whole.choices[0].text
    if len(text) >= 2:  # a random tiny model: stop on whatever it says second
        stop = text[1:3].strip() or text[1]
        cut = client.completions.create(
            model=MODEL, prompt="what colour is", max_tokens=8, temperature=0, stop=stop
        )
        assert cut.choices[0].text == text[: text.find(stop)] and cut.choices[0].finish_reason == "stop"


def test_bad_generation_requests_are_4xx(server: str, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10_000)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages, n=2)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=messages)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt="hi", temperature="hot")  # type: ignore[arg-type]
    response = httpx.post(f"{server}/v1/classify", json={"input": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_route"
    metrics = httpx.get(f"{server}/metrics").text
    assert "autoglm_generated_tokens_total" in metrics and "autoglm_prompt_tokens_total" in metrics
