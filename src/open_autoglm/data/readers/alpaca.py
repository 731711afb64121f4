"""The Alpaca instruction format (instruction/input/output, optional system and history), array or lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from open_autoglm.data.readers.base import (
    READERS,
    BaseReader,
    Malformed,
    ReadOptions,
    Record,
    RowError,
    to_records,
)
from open_autoglm.data.readers.canonical import optional_str, prompt_response, required_str
from open_autoglm.data.readers.json_objects import iter_json_rows


@READERS.register
class AlpacaReader(BaseReader):
    """Rows become prompt/response, or messages when they carry a dialogue `history`."""

    name = "alpaca"
    tasks = frozenset({"sft"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        return to_records(iter_json_rows(path, options.encoding), str(path), alpaca_record)


def alpaca_record(fields: dict[str, Any]) -> dict[str, Any]:
    """prompt = instruction, plus "\\n\\n" + input when the input is not empty (LLaMA-Factory's convention)."""
    instruction = required_str(fields, "instruction")
    query = optional_str(fields, "input")
    prompt = f"{instruction}\n\n{query}" if query.strip() else instruction
    response = required_str(fields, "output")
    history = fields.get("history") or []
    if not history:
        return prompt_response(prompt, response, fields)
    if not isinstance(history, list):
        raise RowError(
            f"field 'history' must be a list of [question, answer] pairs, got {type(history).__name__}"
        )
    system = optional_str(fields, "system")
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for i, pair in enumerate(history):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) and t.strip() for t in pair)
        ):
            raise RowError(f"history[{i}] must be a [question, answer] pair of non-empty strings")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return {"messages": messages}
