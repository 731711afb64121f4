"""Request bodies, in OpenAI's shapes. Unknown OpenAI options are ignored (clients send many); the ones we
take are type-checked, and n must be 1. Each request is judged here, alone, before it joins a batch: an item that
could fail inside a batch (a lone surrogate, an empty prompt, an overflowing temperature) is a 400 naming its
field, not an error for everyone batched with it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# Tiny temperatures blow logits / temperature up to inf (1e-300 is 0 in float32) and sampling fails on nan; 0.01
# keeps a wide margin, half-precision logits included (vLLM clamps at it too). 0 is greedy decoding.
MIN_TEMPERATURE = 0.01


def _encodable(value: str | list[str]) -> str | list[str]:
    """JSON may carry a lone surrogate ("\\ud800"), which no tokenizer can encode: refuse it here, naming which
    text of a list holds it."""
    for index, text in enumerate([value] if isinstance(value, str) else value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            which = "the text" if isinstance(value, str) else f"text {index}"
            raise ValueError(
                f"{which} has a lone surrogate at character {err.start}, which is not valid Unicode"
            ) from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # strict: "5" is not an integer, 1 is not a string


class ClassifyRequest(_Request):
    input: str | list[str] = Field(description="one text or a list of texts to label")
    model: Text | None = None

    _valid_unicode = field_validator("input")(_encodable)


class _GenerationRequest(_Request):
    model: Text
    max_tokens: int | None = Field(
        default=None, ge=1, description="new tokens at most (server default if unset)"
    )
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, description="0 is greedy decoding")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    n: Literal[1] = 1

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and (len(stop) > 4 or not all(stop)):
            raise ValueError("stop takes at most 4 non-empty strings")
        if stop == "":
            raise ValueError("stop must not be empty")
        return stop if stop is None else _encodable(stop)

    @field_validator("temperature")
    @classmethod
    def _greedy_or_samplable(cls, temperature: float) -> float:
        if 0 < temperature < MIN_TEMPERATURE:
            raise ValueError(
                f"a sampling temperature is at least {MIN_TEMPERATURE} (0 means greedy decoding)"
            )
        return temperature

    def stop_strings(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class CompletionRequest(_GenerationRequest):
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError("only one prompt per request is served")
        if not (prompt if isinstance(prompt, str) else prompt[0]):
            raise ValueError("the prompt is empty: there is nothing to continue")
        return _encodable(prompt)

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant"]
    content: Text


class ChatCompletionRequest(_GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "user":
            raise ValueError("the last message must be the user's")
        return messages
