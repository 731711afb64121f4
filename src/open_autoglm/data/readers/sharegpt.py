"""The ShareGPT format (`conversations` of from/value turns) and OpenAI `messages` (role/content turns).

Conversations always become canonical `messages`, even single-turn ones, so their structure is kept as given.
"""

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
from open_autoglm.data.readers.canonical import check_messages, optional_str
from open_autoglm.data.readers.json_objects import iter_json_rows

# Tool turns fold into the three canonical roles: a tool result is input, a tool call is the model's output.
SPEAKER_ROLES = {
    "human": "user",
    "user": "user",
    "observation": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "assistant",
    "system": "system",
}


@READERS.register
class ShareGptReader(BaseReader):
    name = "sharegpt"
    tasks = frozenset({"sft"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        return to_records(iter_json_rows(path, options.encoding), str(path), sharegpt_record)


def sharegpt_record(fields: dict[str, Any]) -> dict[str, Any]:
    """{"messages": [...]}, with a top-level `system` field (LLaMA-Factory's) as the first turn."""
    if "conversations" in fields:
        messages = check_messages(_from_sharegpt(fields["conversations"]), "conversations")
    elif "messages" in fields:
        messages = check_messages(fields["messages"], "messages")
    else:
        raise RowError("missing field 'conversations' (or 'messages')")
    system = optional_str(fields, "system")
    if system.strip():
        if messages[0]["role"] == "system":
            raise RowError("both a 'system' field and a system turn")
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _from_sharegpt(turns: Any) -> Any:
    if not isinstance(turns, list):
        return turns  # check_messages names the wrong type
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(f"conversations[{i}] must be an object, got {type(turn).__name__}")
        speaker = turn.get("from")
        if speaker not in SPEAKER_ROLES:
            raise RowError(f"conversations[{i}]: unknown speaker 'from': {speaker!r}")
        messages.append({"role": SPEAKER_ROLES[speaker], "content": turn.get("value")})
    return messages
