"""Text generation with the KV cache: whole replies — several requests' prompts left-padded into one generate()
call — or token by token through an AsyncTextIteratorStreamer that a generate() thread fills. Stop strings end a reply
and are cut from it, as OpenAI does."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AsyncTextIteratorStreamer, StoppingCriteria, StoppingCriteriaList

from open_autoglm.evaluate.predict import device_of
from open_autoglm.serve.served_model import ServedModel


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length"


class StopScanner:
    """Cuts streamed text at the first stop string, holding back a tail that could still begin one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops, self.buffer, self.stopped = stops, "", False
        self.hold = max((len(s) for s in stops), default=1) - 1

    def feed(self, text: str) -> str:
        """Text now safe to send."""
        if self.stopped:
            return ""
        self.buffer += text
        cut = min((i for i in (self.buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            safe, self.buffer = self.buffer[:cut], ""
            return safe
        safe_length = max(len(self.buffer) - self.hold, 0)
        safe, self.buffer = self.buffer[:safe_length], self.buffer[safe_length:]
        return safe

    def flush(self) -> str:
        rest, self.buffer = ("" if self.stopped else self.buffer), ""
        return rest


class _Cancelled(StoppingCriteria):
    """Ends generation when the client has gone, instead of computing a reply nobody reads."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )  # type: ignore[return-value]


class _StopStrings(StoppingCriteria):
    """Ends generation once the reply contains a stop string. (transformers' own `stop_strings` fails on some
    vocabularies, word-level ones among them; decoding the reply so far works for every tokenizer.)"""

    def __init__(self, served: ServedModel, prompt_tokens: int, stops: tuple[str, ...]) -> None:
        self.tokenizer, self.prompt_tokens, self.stops = served.tokenizer, prompt_tokens, stops

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        replies = self.tokenizer.batch_decode(input_ids[:, self.prompt_tokens :], skip_special_tokens=True)
        done = [any(stop in reply for stop in self.stops) for reply in replies]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class _RowLimits(StoppingCriteria):
    """Ends each row of a batch at its own max_tokens or stop string, and records how many tokens it had then:
    after a row ends, generate() pads it, and padding may be the end-of-sequence token itself."""

    def __init__(self, served: ServedModel, prompt_tokens: int, samplings: list[Sampling]) -> None:
        self.tokenizer, self.prompt_tokens, self.samplings = served.tokenizer, prompt_tokens, samplings
        self.ended_at: list[int | None] = [None] * len(samplings)
        self.by_string = [False] * len(samplings)

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_tokens :]
        for row, sampling in enumerate(self.samplings):
            if self.ended_at[row] is not None:
                continue
            if sampling.stop:
                reply = self.tokenizer.decode(new[row], skip_special_tokens=True)
                self.by_string[row] = any(stop in reply for stop in sampling.stop)
            if self.by_string[row] or new.shape[1] >= sampling.max_tokens:
                self.ended_at[row] = new.shape[1]
        done = [ended is not None for ended in self.ended_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def encode_prompt(served: ServedModel, prompt: str, chat: bool) -> dict[str, torch.Tensor]:
    """A chat prompt already carries its special tokens (as rendered in training); a raw prompt gets the
    tokenizer's usual ones."""
    encoded = served.tokenizer(prompt, add_special_tokens=not chat, return_tensors="pt")
    return {key: value.to(device_of(served.torch_model)) for key, value in encoded.items()}


def _generate_kwargs(
    served: ServedModel, encoded: dict[str, torch.Tensor], sampling: Sampling
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        **encoded,
        "max_new_tokens": sampling.max_tokens,
        "use_cache": True,
        "pad_token_id": served.tokenizer.pad_token_id,
    }
    if sampling.temperature > 0:
        kwargs |= {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
    else:
        kwargs |= {"do_sample": False, "temperature": None, "top_p": None}
    if sampling.stop:
        prompt_tokens = encoded["input_ids"].shape[1]
        kwargs["stopping_criteria"] = StoppingCriteriaList(
            [_StopStrings(served, prompt_tokens, sampling.stop)]
        )
    return kwargs


def _finish_reason(new_tokens: int, sampling: Sampling, stopped_by_string: bool) -> str:
    return "length" if new_tokens >= sampling.max_tokens and not stopped_by_string else "stop"


@torch.inference_mode()
def generate_replies(served: ServedModel, requests: list[tuple[list[int], Sampling]]) -> list[Reply]:
    """Whole replies for several requests (prompt token ids, sampling): one generate() call per distinct
    (temperature, top_p), each row stopping at its own max_tokens and stop strings. Greedy rows give what they
    would alone, as left padding is masked out."""
    groups: dict[tuple[float, float], list[int]] = defaultdict(list)
    for index, (_, sampling) in enumerate(requests):
        key = (sampling.temperature, sampling.top_p) if sampling.temperature > 0 else (0.0, 1.0)
        groups[key].append(index)
    replies: list[Reply | None] = [None] * len(requests)
    for indices in groups.values():
        for index, reply in zip(
            indices, _generate_group(served, [requests[i] for i in indices]), strict=True
        ):
            replies[index] = reply
    return replies  # type: ignore[return-value]


def _generate_group(served: ServedModel, requests: list[tuple[list[int], Sampling]]) -> list[Reply]:
    tokenizer, device = served.tokenizer, device_of(served.torch_model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(ids) for ids, _ in requests)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids, _ in requests], device=device)
    attention_mask = torch.tensor(
        [[0] * (width - len(ids)) + [1] * len(ids) for ids, _ in requests], device=device
    )
    samplings = [sampling for _, sampling in requests]
    limits = _RowLimits(served, width, samplings)
    first = samplings[0]
    kwargs = _generate_kwargs(
        served,
        {"input_ids": input_ids, "attention_mask": attention_mask},
        Sampling(max(s.max_tokens for s in samplings), first.temperature, first.top_p),
    )
    kwargs["stopping_criteria"] = StoppingCriteriaList([limits])
    with served.lock:
        output = served.torch_model.generate(**kwargs)  # type: ignore[operator]
    replies = []
    for row, ((ids, sampling), new_ids) in enumerate(zip(requests, output[:, width:], strict=True)):
        count = limits.ended_at[row] or new_ids.shape[0]
        eos = torch.isin(new_ids[:count], _end_ids(served)).nonzero()
        if len(eos):  # ended by its own end-of-sequence token: that token is the reply's last
            count = int(eos[0]) + 1
        scanner = StopScanner(sampling.stop)
        text = (
            scanner.feed(str(tokenizer.decode(new_ids[:count], skip_special_tokens=True))) + scanner.flush()
        )
        replies.append(Reply(text, len(ids), count, _finish_reason(count, sampling, scanner.stopped)))
    return replies


def _end_ids(served: ServedModel) -> torch.Tensor:
    """Tokens that end a reply: the tokenizer's end of sequence and the model's generation config's (an int or a
    list)."""
    ids = {served.tokenizer.eos_token_id}
    config_ids = getattr(getattr(served.torch_model, "generation_config", None), "eos_token_id", None)
    ids |= set(config_ids) if isinstance(config_ids, list) else {config_ids}
    return torch.tensor(
        sorted(i for i in ids if i is not None), dtype=torch.long, device=device_of(served.torch_model)
    )


class ReplyStream:
    """Async-iterate to get text pieces as they are generated; `finish_reason` and `completion_tokens` are set once
    iteration ends, and a failed generation raises from the iteration.

    `start` runs generate() on the given executor (its size bounds the generate threads); the pieces come back
    through an asyncio queue, so a reader holds no thread while it waits. `cancel()` stops generate() at its next
    token. Made in the server's event loop (the streamer posts to it).
    """

    def __init__(self, served: ServedModel, encoded: dict[str, torch.Tensor], sampling: Sampling) -> None:
        self.served, self.sampling = served, sampling
        self.prompt_tokens = encoded["input_ids"].shape[1]
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.streamer = AsyncTextIteratorStreamer(
            served.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        self.scanner = StopScanner(sampling.stop)
        self.cancelled = threading.Event()
        self.output: torch.Tensor | None = None  # (1, prompt + new)
        self.error: BaseException | None = None
        self.kwargs = _generate_kwargs(served, encoded, sampling)
        criteria = self.kwargs.setdefault("stopping_criteria", StoppingCriteriaList())
        criteria.append(_Cancelled(self.cancelled))
        self.kwargs["streamer"] = self.streamer
        self.done: asyncio.Future[None] | None = None

    def start(self, executor: Executor) -> asyncio.Future[None]:
        """Begin generating; the returned future completes when generate() has returned or failed."""
        self.done = asyncio.get_running_loop().run_in_executor(executor, self._run)
        return self.done

    @torch.inference_mode()
    def _run(self) -> None:
        try:
            with self.served.lock:
                self.output = self.served.torch_model.generate(**self.kwargs)  # type: ignore[operator]
        except Exception as err:  # raised again in the reader, which tells the client
            self.error = err
            self.streamer.end()

    def cancel(self) -> None:
        self.cancelled.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        if self.finish_reason is not None:
            raise StopAsyncIteration
        async for piece in self.streamer:
            safe = self.scanner.feed(piece)
            if self.scanner.stopped:
                self.cancel()  # the reply has ended: no need to generate on
            if safe:
                return safe
        assert self.done is not None, "start() the stream before reading it"
        await self.done
        if self.error is not None:
            raise RuntimeError(f"generation failed: {self.error}") from self.error
        if self.output is not None:
            self.completion_tokens = self.output.shape[1] - self.prompt_tokens
        self.finish_reason = _finish_reason(self.completion_tokens, self.sampling, self.scanner.stopped)
        rest = self.scanner.flush()
        if rest:
            return rest
        raise StopAsyncIteration
