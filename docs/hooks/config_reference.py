"""The configuration reference, generated from the pydantic models at build time so it cannot drift.

A MkDocs hook (registered under `hooks:` in mkdocs.yml): a page that holds the marker `<!-- config-reference -->`
gets, in its place, one table per section of `open_autoglm.config.Config` (key, type, default, description) and
one per fine-tuning method's params model. The walk starts at `Config.model_fields` and follows every nested model,
list of models and optional model, so a section moved between modules, or a key added anywhere, shows up without
an edit here. A model class met twice (`DataConfig` under `data`, `multitask.tasks[].data`, `transfer.second_task`)
gets one table; the other places link to it.

Only `open_autoglm.config` and `open_autoglm.methods` are imported.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

MARKER = "<!-- config-reference -->"

# Table headings and the few sentences the generator writes, per page language (descriptions stay English).
_WORDS = {
    "en": {
        "head": "| key | type | default | description |",
        "required": "required",
        "section": "section",
        "methods": "Method parameters",
        "methods_intro": "The keys beside `method.name`, one table per method (`method: {name: NAME, KEY: VALUE}`).",
        "none": "This method has no parameters of its own.",
    },
    "zh": {
        "head": "| 键 | 类型 | 默认值 | 说明 |",
        "required": "必填",
        "section": "配置节",
        "methods": "方法参数",
        "methods_intro": "与 `method.name` 并列的键，每个方法一张表（`method: {name: 方法名, 键: 值}`）。",
        "none": "该方法没有自己的参数。",
    },
}


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


@dataclass
class Section:
    """One table: the keys of one model class, at the first config path where the class appears."""

    path: str  # "" (the top level), "train.optimizer", "multitask.tasks[]", "method (lora)"
    model: type[BaseModel]
    doc: str = ""
    rows: list[Row] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.path or "(top level)"

    @property
    def anchor(self) -> str:
        return _anchor(self.path)


def _anchor(path: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in path).split()
    return "cfg-" + ("-".join(words) or "top")


def config_sections() -> list[Section]:
    """Every section of `Config`, depth first in field order; the root (top-level keys) first."""
    from open_autoglm.config import Config

    sections: list[Section] = []
    _walk(Config, "", sections, {})
    return sections


def method_sections() -> list[Section]:
    """One section per built-in method's params model (plugins installed in the environment are left out)."""
    from open_autoglm.methods import METHODS

    sections: list[Section] = []
    for name in METHODS.names():
        method = METHODS.get(name)
        if not method.__module__.startswith("open_autoglm."):
            continue
        sections.append(_section(method.params_cls, f"method ({name})", {}, register=None))
    return sections


def _walk(model: type[BaseModel], path: str, sections: list[Section], seen: dict[type, Section]) -> None:
    """Add `model`'s section (and, after it, those of the models it nests) unless it was seen already."""
    if model in seen:
        return
    _section(model, path, seen, register=sections)
    for name, info in model.model_fields.items():
        for nested, suffix in _nested_models(info.annotation):
            _walk(nested, _join(path, name) + suffix, sections, seen)


def _section(
    model: type[BaseModel], path: str, seen: dict[type, Section], register: list[Section] | None
) -> Section:
    section = Section(path=path, model=model, doc=_doc(model))
    if register is not None:
        seen[model] = section
        register.append(section)
    section.rows = [_row(name, info, path, seen) for name, info in model.model_fields.items()]
    return section


def _row(name: str, info: FieldInfo, path: str, seen: dict[type, Section]) -> Row:
    if _is_model(info.annotation):
        default = "—"  # a section: its own table gives the defaults
    elif info.is_required():
        default = "*{required}*"
    else:
        default = f"`{_value(info.get_default(call_default_factory=True))}`"
    links = []
    for model, suffix in _nested_models(info.annotation):
        # A model met before links to its table; a new one gets its table at this path, right after this one.
        target = seen[model].path if model in seen else _join(path, name) + suffix
        links.append(f"[`{target}`](#{_anchor(target)})")
    description = _escape(info.description or "")
    if links:
        description = (description + " " if description else "") + "→ " + ", ".join(links)
    return Row(
        key=f"`{name}`", type=_type(info.annotation, info.metadata), default=default, description=description
    )


def _nested_models(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """The config models inside an annotation, with the path suffix that reaches them (`[]` through a list)."""
    found: list[tuple[type[BaseModel], str]] = []
    if _is_model(annotation):
        return [(annotation, "")]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _nested_models(args[0])
    suffix = "[]" if origin in (list, tuple, set, frozenset) else "{}" if origin is dict else ""
    for arg in args[1:] if origin is dict else args:
        found += [(model, inner + suffix) for model, inner in _nested_models(arg)]
    return found


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type(annotation: Any, metadata: list[Any]) -> str:
    """A type as a user writes it in YAML, with its bounds: `int > 0`, `'auto' | 'cpu'`, `list[str] | null`."""
    text = _type_text(annotation)
    bounds = _bounds(metadata)
    text = f"{text} ({bounds})" if bounds else text
    return f"`{text}`"  # Python-Markdown's tables keep a `|` inside a code span


def _type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if _is_model(annotation):
        return "section"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(repr(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "path"
    if origin is Annotated:
        inner = _type_text(args[0])
        bounds = _bounds(list(args[1:]))
        return f"{inner} ({bounds})" if bounds else inner
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if origin in (list, set, frozenset):
        return f"list[{_type_text(args[0])}]" if args else "list"
    if origin is tuple:
        return "[" + ", ".join(_type_text(a) for a in args if a is not Ellipsis) + "]"
    if origin is dict:
        return f"map[{_type_text(args[0])}, {_type_text(args[1])}]" if args else "map"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata: list[Any]) -> str:
    marks = {
        annotated_types.Gt: ("> ", "gt"),
        annotated_types.Ge: ("≥ ", "ge"),
        annotated_types.Lt: ("< ", "lt"),
        annotated_types.Le: ("≤ ", "le"),
    }
    parts = []
    for item in metadata:
        for kind, (sign, attr) in marks.items():
            if isinstance(item, kind):
                parts.append(sign + _value(getattr(item, attr)))
        if isinstance(item, annotated_types.Interval):
            parts += [
                s + _value(getattr(item, a)) for k, (s, a) in marks.items() if getattr(item, a) is not None
            ]
    return ", ".join(parts)


def _value(value: Any) -> str:
    """A default as YAML shows it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return "{…}"
    if isinstance(value, PurePath | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return value if value else '""'
    return repr(value)


def _doc(model: type[BaseModel]) -> str:
    return _escape(model.__dict__.get("__doc__") or "")


def _escape(text: str) -> str:
    """Plain text for a Markdown table cell: one line, no HTML (`<name>` is a placeholder, not a tag)."""
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def render(lang: str = "en") -> str:
    """The whole reference as Markdown, headings and fixed words in `lang` (en or zh)."""
    words = _WORDS[lang]
    lines: list[str] = []
    for section in config_sections():
        lines += _table(section, words, level="##")
    lines += [f"## {words['methods']}", "", words["methods_intro"], ""]
    for section in method_sections():
        lines += _table(section, words, level="###")
    return "\n".join(lines)


def _table(section: Section, words: dict[str, str], level: str) -> list[str]:
    lines = [f"{level} `{section.title}` {{ #{section.anchor} }}", ""]
    if section.doc:
        lines += [section.doc, ""]
    if not section.rows:
        return [*lines, words["none"], ""]
    lines += [words["head"], "|---|---|---|---|"]
    for row in section.rows:
        kind = words["section"] if row.type == "`section`" else row.type
        default = row.default.replace("{required}", words["required"])
        lines.append(f"| {row.key} | {kind} | {default} | {row.description} |")
    return [*lines, ""]


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs hook: put the generated reference where a page asks for it."""
    if MARKER not in markdown:
        return markdown
    lang = "zh" if page.file.src_uri.startswith("zh/") else "en"
    return markdown.replace(MARKER, render(lang))
