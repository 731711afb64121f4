"""Config precedence: defaults < YAML file < `--set key=value`; errors name the key and what is allowed."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from open_autoglm.atomic import write_text
from open_autoglm.config.schema import Config

# Pydantic names the member of a union (or the validator) an error came from in the location:
# `data.train.list[SourceConfig].0.path`, `lax-or-strict[...]`, `function-after[...]`. The user's key has none.
_UNION_MEMBER = re.compile(r"[\w-]+\[.*\]")


class ConfigError(ValueError):
    """A config that cannot be used; raised before any work starts."""


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config (or start from defaults), apply `section.key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        raw = _read_yaml(Path(path))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    return validate_config(raw, source)


def validate_config(raw: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(_explain(err))) from None


def parse_override(item: str) -> tuple[str, Any]:
    """`train.lr=3e-4` → ("train.lr", 0.0003); the value is read as YAML so numbers, bools and lists work."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=3e-4")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and i == 0 and part == "method":
            child = {"name": child}  # `method: lora` written as a bare name
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a section")
        node[part] = child
        node = child
    node[parts[-1]] = value


def dump_config(config: Config, path: Path) -> None:
    """Write the resolved config (what actually ran) as YAML."""
    data = config.model_dump(mode="json")
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _read_yaml(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{path}:{_yaml_error_line(err, text)}: not valid YAML ({_yaml_problem(err)})"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: not a config: its YAML is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (name, task, model, data, ...)"
        )
    return data


def _read_text(path: Path) -> str:
    """The config file's text; a folder, an unreadable or a binary (non-UTF-8) file is an error naming it."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return path.read_bytes().decode("utf-8-sig")  # a BOM (some Windows editors write one) is no error
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not a YAML text file (byte 0x{err.object[err.start]:02x} at offset {err.start} is not "
            "UTF-8; save the config as UTF-8)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None


def _yaml_error_line(err: yaml.YAMLError, text: str) -> int:
    """The 1-based line of a YAML error: from its mark, or its character position (ReaderError has no mark)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(err, "position", None)
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else 1


def _yaml_problem(err: yaml.YAMLError) -> str:
    return str(getattr(err, "problem", None) or getattr(err, "reason", None) or err)


def _explain(err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"] if not _UNION_MEMBER.fullmatch(str(p)))
        if item["type"] == "extra_forbidden":
            allowed = _fields_at(item["loc"][:-1])
            hint = difflib.get_close_matches(str(item["loc"][-1]), allowed, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"  {loc}: unknown key{did_you_mean}; allowed: {', '.join(allowed)}")
            continue
        got = f" (got {item['input']!r})" if "input" in item and not isinstance(item["input"], dict) else ""
        message = item["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
        lines.append(f"  {loc or 'config'}: {message}{got}")
    return lines


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The allowed keys of the section at `loc` (for 'did you mean')."""
    model: type[BaseModel] | None = Config
    for part in loc:
        field = model.model_fields.get(str(part)) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(model.model_fields) if model else []
