"""The HTTP app: OpenAI-compatible completions and chat for causal models, /v1/classify for classifiers.

Model work (tokenising included) runs in worker threads so the event loop keeps answering, /health among the rest;
classification goes through the dynamic batcher, generation through model.generate with the KV cache. Admission
bounds the requests doing model work and those waiting for a turn; every answer, 5xx included, is counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from open_autoglm.serve.admission import Admission
from open_autoglm.serve.batching import DynamicBatcher
from open_autoglm.serve.errors import APIError, error_body, install_error_handlers, internal_error
from open_autoglm.serve.generation import Reply, ReplyStream, Sampling, encode_prompt, generate_replies
from open_autoglm.serve.guard import check_api_key, check_body_size
from open_autoglm.serve.limits import ServeLimits
from open_autoglm.serve.loading import load_served
from open_autoglm.serve.metrics import ServeMetrics
from open_autoglm.serve.schemas import ChatCompletionRequest, ClassifyRequest, CompletionRequest
from open_autoglm.serve.served_model import ServedModel

logger = logging.getLogger(__name__)
# Prompts up to this many characters are tokenised on the event loop. Handing each one to a thread made greedy
# generation at concurrency 8 half as fast (the hop waits for the GIL behind the running batch, so the next
# batch fills less); longer prompts go to a thread, so that /health answers while a 1 MB prompt is tokenised.
INLINE_PROMPT_CHARS = 4096


def build_app(
    model_dir: str | Path,
    api_key: str | None = None,
    limits: ServeLimits | None = None,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> FastAPI:
    """Load the model (a folder, or an exported .onnx file) and build the app around it. The folder's own code
    runs only when the operator passes `trust_remote_code`."""
    check_api_key_value(api_key)  # before the model loads: a mistake costs a second, not a load
    return app_for(load_served(model_dir, device, trust_remote_code=trust_remote_code), api_key, limits)


def check_api_key_value(api_key: str | None) -> None:
    """An empty key would let an empty bearer token in while looking protected: refuse it."""
    if api_key is not None and not api_key.strip():
        raise ValueError("the API key is empty; give a non-empty key, or none to serve without one")


def app_for(served: ServedModel, api_key: str | None = None, limits: ServeLimits | None = None) -> FastAPI:
    check_api_key_value(api_key)
    limits = limits or ServeLimits()
    metrics = ServeMetrics()
    admission = Admission(limits.max_active, limits.max_queued, limits.queue_timeout_s)
    metrics.active.set_function(lambda: admission.active)
    metrics.queued.set_function(lambda: admission.queued)
    # Streams' generate() calls run here: admission lets at most max_active in, so no more threads than that.
    stream_threads = ThreadPoolExecutor(max_workers=limits.max_active, thread_name_prefix="autoglm-stream")

    def classify_batch(texts: list[str]) -> list[dict[str, float]]:
        results = served.classify(texts)
        metrics.batches.inc()
        metrics.batched_texts.inc(len(texts))
        return results

    def generate_batch(requests: list[tuple[list[int], Sampling]]) -> list[Reply]:
        replies = generate_replies(served, requests)
        metrics.generation_batches.inc()
        metrics.batched_generations.inc(len(requests))
        return replies

    batcher: DynamicBatcher[str, dict[str, float]] = DynamicBatcher(
        classify_batch, limits.max_batch, limits.max_wait_ms / 1000
    )
    generation_batcher: DynamicBatcher[tuple[list[int], Sampling], Reply] = DynamicBatcher(
        generate_batch, limits.max_generation_batch, limits.max_generation_wait_ms / 1000
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()
        await generation_batcher.close()
        stream_threads.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"Open-AutoGLM: {served.name}", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.served, app.state.metrics, app.state.limits = served, metrics, limits
    app.state.generation_batcher, app.state.admission = generation_batcher, admission
    app.state.stream_threads = stream_threads
    install_error_handlers(app)

    @app.middleware("http")
    async def guard_and_measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        try:
            refused = check_api_key(request, api_key) or await check_body_size(request, limits.max_body_bytes)
            response = refused or await call_next(request)
        except Exception as err:
            # Answered here rather than by a handler for Exception, which runs outside every middleware: so the
            # 500 is counted below like any other status.
            response = internal_error(err)
        route = request.scope.get("route")
        label = getattr(route, "path", "unmatched")  # route templates only: bounded label values
        metrics.requests.labels(label, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - started)
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": served.name}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": served.name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "open-autoglm",
            "task": served.meta.get("task"),
            "backend": served.backend,
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest) -> dict[str, Any]:
        _check_model(served, body.model)
        if not served.classifies:
            raise _not_served(served, "/v1/classify")
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not 1 <= len(texts) <= limits.max_inputs:
            raise APIError(400, f"input takes 1 to {limits.max_inputs} texts", "invalid_value")
        async with admission.turn():
            scores = await batcher.submit(texts)
        results = [
            {"index": i, "label": max(row, key=row.__getitem__), "scores": row}
            for i, row in enumerate(scores)
        ]
        return {"object": "list", "model": served.name, "data": results}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        return await _generate(app, body, body.prompt_text, "text_completion", request)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        messages = [m.model_dump() for m in body.messages]
        return await _generate(app, body, partial(_chat_prompt, served, messages), "chat.completion", request)

    return app


def _check_model(served: ServedModel, requested: str | None) -> None:
    if requested is not None and requested != served.name:
        raise APIError(
            404,
            f"model {requested!r} is not served here (this server has {served.name!r})",
            "model_not_found",
        )


def _not_served(served: ServedModel, route: str) -> APIError:
    return APIError(400, f"{route} is not served for a {served.meta.get('task')} model", "unsupported_route")


def _chat_prompt(served: ServedModel, messages: list[dict[str, str]]) -> str:
    try:
        return served.chat_prompt(messages)
    except ValueError as err:  # the tokenizer's template cannot render this conversation
        raise APIError(400, str(err), "invalid_messages") from err


def _max_tokens(requested: int | None, prompt_tokens: int, served: ServedModel, limits: ServeLimits) -> int:
    """The request's max_tokens, or when it names none, the server's default cut to what fits the context."""
    room = served.context_length - prompt_tokens if served.context_length else None
    if room is not None and room < 1:
        raise APIError(
            400,
            f"the prompt ({prompt_tokens} tokens) fills the model's {served.context_length} positions",
            "context_length_exceeded",
        )
    if requested is None:
        return min(limits.default_max_tokens, limits.max_tokens, room or limits.max_tokens)
    if room is not None and requested > room:
        raise APIError(
            400,
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({requested}) is over the model's "
            f"{served.context_length} positions",
            "context_length_exceeded",
        )
    return requested


def _prompt_chars(body: CompletionRequest | ChatCompletionRequest) -> int:
    if isinstance(body, CompletionRequest):
        return len(body.prompt_text())
    return sum(len(message.content) for message in body.messages)


def _prepare(
    served: ServedModel,
    limits: ServeLimits,
    body: CompletionRequest | ChatCompletionRequest,
    prompt_of: Callable[[], str],
    chat: bool,
) -> tuple[dict[str, torch.Tensor], Sampling]:
    """Render and tokenise the prompt and settle max_tokens: CPU work (a 1 MB prompt takes seconds to tokenise),
    run in a worker thread."""
    encoded = encode_prompt(served, prompt_of(), chat=chat)
    prompt_tokens = encoded["input_ids"].shape[1]
    if prompt_tokens == 0:
        raise APIError(
            400, "prompt: no tokens for this model's tokenizer; there is nothing to continue", "invalid_value"
        )
    max_tokens = _max_tokens(body.max_tokens, prompt_tokens, served, limits)
    return encoded, Sampling(max_tokens, body.temperature, body.top_p, tuple(body.stop_strings()))


async def _generate(
    app: FastAPI,
    body: CompletionRequest | ChatCompletionRequest,
    prompt_of: Callable[[], str],
    kind: str,
    request: Request,
) -> Any:
    """Validate what only the model can judge (its task, the context length), then answer whole (batched with
    other requests) or streamed. A stream keeps its admission turn until its generate() ends."""
    served, metrics, limits = app.state.served, app.state.metrics, app.state.limits
    _check_model(served, body.model)
    if not served.generates:
        raise _not_served(served, request.url.path)
    if body.max_tokens is not None and body.max_tokens > limits.max_tokens:
        raise APIError(
            400, f"max_tokens is at most {limits.max_tokens} on this server", "max_tokens_too_large"
        )
    chat = kind == "chat.completion"
    envelope = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": served.name,
    }
    async with app.state.admission.turn() as turn:
        if _prompt_chars(body) <= INLINE_PROMPT_CHARS:  # microseconds: a thread hop would cost more, and
            encoded, sampling = _prepare(served, limits, body, prompt_of, chat)  # batches would fill less
        else:  # a long prompt takes milliseconds to seconds to tokenise: off the event loop
            encoded, sampling = await asyncio.to_thread(_prepare, served, limits, body, prompt_of, chat)
        metrics.prompt_tokens.inc(encoded["input_ids"].shape[1])
        if body.stream:
            stream = ReplyStream(served, encoded, sampling)
            turn.hand_over(stream.start(app.state.stream_threads))
            return StreamingResponse(_events(stream, metrics, kind, envelope), media_type="text/event-stream")
        [reply] = await app.state.generation_batcher.submit([(encoded["input_ids"][0].tolist(), sampling)])
    metrics.generated_tokens.inc(reply.completion_tokens)
    if chat:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": reply.text}}
    else:
        choice = {"index": 0, "text": reply.text, "logprobs": None}
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    return {
        **envelope,
        "object": kind,
        "choices": [choice | {"finish_reason": reply.finish_reason}],
        "usage": usage,
    }


async def _events(
    stream: ReplyStream, metrics: ServeMetrics, kind: str, envelope: dict[str, Any]
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`; a generation that fails after the
    200 went out ends with an error event, as OpenAI's do, never with a silently empty stream."""
    chat = kind == "chat.completion"
    chunk_kind = "chat.completion.chunk" if chat else "text_completion"

    def event(piece: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, **piece, "finish_reason": finish_reason}
        return f"data: {json.dumps({**envelope, 'object': chunk_kind, 'choices': [choice]})}\n\n"

    def text(piece: str) -> dict[str, Any]:
        return {"delta": {"content": piece}} if chat else {"text": piece, "logprobs": None}

    try:
        if chat:
            yield event({"delta": {"role": "assistant", "content": ""}})
        async for piece in stream:
            yield event(text(piece))
        metrics.generated_tokens.inc(stream.completion_tokens)
        yield event({"delta": {}} if chat else {"text": "", "logprobs": None}, stream.finish_reason)
        yield "data: [DONE]\n\n"
    except Exception as err:
        logger.error("a streamed generation failed", exc_info=err)
        metrics.stream_errors.inc()
        failed = error_body(
            "the generation failed; the server's log has the details", "generation_failed", "server_error"
        )
        yield f"data: {json.dumps(failed)}\n\n"
    finally:
        stream.cancel()  # the client left mid-stream: stop generating
