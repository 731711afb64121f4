"""The canonical record of each task, built from a row's fields, with a reason naming the field when it fails.

classification → {"text": str, "label": str | int}
sft            → {"prompt": str, "response": str} (+ "system": str), or {"messages": [{"role", "content"}, ...]}
pretrain       → {"text": str}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from open_autoglm.data.readers.base import ReadOptions, RowError

ROLES = ("system", "user", "assistant")


def canonical(fields: Mapping[str, Any], options: ReadOptions) -> dict[str, Any]:
    """The canonical record of `options.task` from generic fields (JSON keys or CSV columns)."""
    if options.task == "classification":
        return {"text": required_str(fields, options.text_field), "label": label(fields, options.label_field)}
    if options.task == "pretrain":
        return {"text": required_str(fields, options.text_field)}
    if "messages" in fields:
        return {"messages": check_messages(fields["messages"], "messages")}
    return prompt_response(required_str(fields, "prompt"), required_str(fields, "response"), fields)


def prompt_response(prompt: str, response: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A single-turn SFT record, with the optional `system` field when it is set."""
    record = {"prompt": prompt, "response": response}
    system = optional_str(fields, "system")
    if system.strip():
        record["system"] = system
    return record


def required_str(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None:
        raise RowError(f"missing field {key!r}")
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"empty field {key!r}")
    return value


def optional_str(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def label(fields: Mapping[str, Any], key: str) -> str | int:
    """A class label as read: an int stays an int, a string is stripped (mapping labels is a later step)."""
    value = fields.get(key)
    if value is None:
        raise RowError(f"missing field {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RowError(f"field {key!r} must be a string or an integer, got {type(value).__name__}")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise RowError(f"empty field {key!r}")
    return value


def check_messages(messages: Any, key: str) -> list[dict[str, str]]:
    """Validated chat turns: known roles, a system turn only first, text in every turn, an assistant last."""
    if not isinstance(messages, list) or not messages:
        raise RowError(f"field {key!r} must be a non-empty list of turns")
    turns = []
    for i, turn in enumerate(messages):
        where = f"{key}[{i}]"
        if not isinstance(turn, Mapping):
            raise RowError(f"{where} must be an object, got {type(turn).__name__}")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise RowError(f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
        if role == "system" and i > 0:
            raise RowError(f"{where}: a system turn must come first")
        if not isinstance(content, str):
            raise RowError(f"{where}: the text must be a string, got {type(content).__name__}")
        if not content.strip():
            raise RowError(f"{where}: empty text")
        turns.append({"role": role, "content": content})
    if not any(turn["role"] == "user" for turn in turns):
        raise RowError(f"field {key!r} has no user turn")
    if turns[-1]["role"] != "assistant":
        raise RowError(f"field {key!r} must end with an assistant turn")
    return turns
