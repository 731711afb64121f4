"""The HTTP app: OpenAI-compatible completions and chat for causal models, /v1/classify for classifiers.

Model work runs in worker threads so the event loop keeps accepting requests; classification goes through the
dynamic batcher, generation through model.generate with the KV cache.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from open_autoglm.serve.batching import DynamicBatcher
from open_autoglm.serve.errors import APIError, install_error_handlers
from open_autoglm.serve.generation import Reply, ReplyStream, Sampling, encode_prompt, generate_replies
from open_autoglm.serve.guard import check_api_key, check_body_size
from open_autoglm.serve.limits import ServeLimits
from open_autoglm.serve.loading import load_served
from open_autoglm.serve.metrics import ServeMetrics
from open_autoglm.serve.schemas import ChatCompletionRequest, ClassifyRequest, CompletionRequest
from open_autoglm.serve.served_model import ServedModel


def build_app(
    model_dir: str | Path, api_key: str | None = None, limits: ServeLimits | None = None, device: str = "cpu"
) -> FastAPI:
    """Load the model (a folder, or an exported .onnx file) and build the app around it."""
    return app_for(load_served(model_dir, device), api_key, limits)


def app_for(served: ServedModel, api_key: str | None = None, limits: ServeLimits | None = None) -> FastAPI:
    limits = limits or ServeLimits()
    metrics = ServeMetrics()

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

    app = FastAPI(title=f"Open-AutoGLM: {served.name}", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.served, app.state.metrics, app.state.limits = served, metrics, limits
    app.state.generation_batcher = generation_batcher
    install_error_handlers(app)

    @app.middleware("http")
    async def guard_and_measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        refused = check_api_key(request, api_key) or await check_body_size(request, limits.max_body_bytes)
        response = refused or await call_next(request)
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
        scores = await batcher.submit(texts)
        results = [
            {"index": i, "label": max(row, key=row.__getitem__), "scores": row}
            for i, row in enumerate(scores)
        ]
        return {"object": "list", "model": served.name, "data": results}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        return await _generate(app, body, body.prompt_text(), "text_completion", request)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        messages = [m.model_dump() for m in body.messages]
        try:
            prompt = served.chat_prompt(messages) if served.generates else ""
        except ValueError as err:  # the tokenizer's template cannot render this conversation
            raise APIError(400, str(err), "invalid_messages") from err
        return await _generate(app, body, prompt, "chat.completion", request)

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


async def _generate(
    app: FastAPI, body: CompletionRequest | ChatCompletionRequest, prompt: str, kind: str, request: Request
) -> Any:
    """Validate what only the model can judge (its task, the context length), then answer whole (batched with
    other requests) or streamed."""
    served, metrics, limits = app.state.served, app.state.metrics, app.state.limits
    _check_model(served, body.model)
    if not served.generates:
        raise _not_served(served, request.url.path)
    max_tokens = body.max_tokens or min(limits.max_tokens, 256)
    if max_tokens > limits.max_tokens:
        raise APIError(
            400, f"max_tokens is at most {limits.max_tokens} on this server", "max_tokens_too_large"
        )
    encoded = encode_prompt(served, prompt, chat=kind == "chat.completion")
    prompt_tokens = encoded["input_ids"].shape[1]
    if served.context_length and prompt_tokens + max_tokens > served.context_length:
        raise APIError(
            400,
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) is over the model's "
            f"{served.context_length} positions",
            "context_length_exceeded",
        )
    sampling = Sampling(max_tokens, body.temperature, body.top_p, tuple(body.stop_strings()))
    metrics.prompt_tokens.inc(prompt_tokens)
    envelope = {
        "id": f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": served.name,
    }
    if body.stream:
        stream = ReplyStream(served, encoded, sampling)
        return StreamingResponse(_events(stream, metrics, kind, envelope), media_type="text/event-stream")
    [reply] = await app.state.generation_batcher.submit([(encoded["input_ids"][0].tolist(), sampling)])
    metrics.generated_tokens.inc(reply.completion_tokens)
    if kind == "chat.completion":
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
    """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`."""
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
        while (piece := await asyncio.to_thread(next, stream, None)) is not None:
            yield event(text(piece))
        metrics.generated_tokens.inc(stream.completion_tokens)
        yield event({"delta": {}} if chat else {"text": "", "logprobs": None}, stream.finish_reason)
        yield "data: [DONE]\n\n"
    finally:
        stream.cancel()  # the client left mid-stream: stop generating
