"""Fault suite, fuzzed inputs: random files through every data reader, random YAML and `--set` overrides through the
config loader, random JSON bodies through the server's request models.

Never a traceback: every input is either accepted or refused with one of the project's own errors
(DataFormatError, ConfigError, pydantic's ValidationError, which the server answers with a 400) that names the
file, the key or the field. Hypothesis runs derandomized, so a run is the same on every machine and in CI.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from open_autoglm.config import Config, ConfigError, load_config
from open_autoglm.data.readers import (
    READERS,
    DataFormatError,
    Malformed,
    ReadOptions,
    iter_records,
    json_objects,
)
from open_autoglm.serve.schemas import ChatCompletionRequest, ChatMessage, ClassifyRequest, CompletionRequest


def fuzz(examples: int) -> settings:
    return settings(
        derandomize=True,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# Any character, lone surrogates included (JSON can carry them; files cannot, so those are encoded with
# surrogatepass and arrive as undecodable bytes).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)

# --------------------------------------------------------------------------------------------------- data readers

FILE_NAMES = [
    "data.jsonl", "data.json", "data.csv", "data.tsv", "data.txt", "data.html", "data.warc", "data",
    "data.jsonl.gz", "data.json.gz", "data.csv.gz", "data.tsv.gz", "data.txt.gz", "data.html.gz", "data.warc.gz",
]  # fmt: skip
FORMATS = ["auto", *READERS.names()]
TASKS = ["classification", "sft", "pretrain"]
FIELD_NAMES = [
    "text", "label", "prompt", "response", "system", "messages", "conversations", "instruction", "input",
    "output", "history", "role", "content", "from", "value",
]  # fmt: skip

WORDS = st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT | WORDS | st.sampled_from(FIELD_NAMES),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | ANY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
turns = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": WORDS}
    ),
    max_size=4,
)
# Mostly records a reader takes, so that the checks after parsing are reached; random objects too.
records = st.one_of(
    st.fixed_dictionaries({"text": WORDS, "label": WORDS | st.integers(0, 3)}),
    st.fixed_dictionaries({"prompt": WORDS, "response": WORDS}, optional={"system": WORDS | json_values}),
    st.fixed_dictionaries({"messages": turns}),
    st.fixed_dictionaries(
        {
            "conversations": st.lists(
                st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt", "x"]), "value": WORDS})
            )
        }
    ),
    st.fixed_dictionaries(
        {"instruction": WORDS, "output": WORDS}, optional={"input": WORDS, "history": json_values}
    ),
)
json_objects_ = records | st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=5)
broken_json = st.sampled_from(
    ['{"text": ', "{", "[", "]", ",", '"', "}{", "nul", "\\", '{"a":1}}', "\x00", "[\n{"]
)


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """JSON Lines or a JSON array, pretty-printed or not, now and then with lines broken or the end cut off."""
    values = draw(st.lists(json_objects_, max_size=6))
    indent = draw(st.sampled_from([None, None, 1, 2]))
    lines = [json.dumps(v, indent=indent, ensure_ascii=draw(st.booleans())) for v in values]
    if draw(st.booleans()):
        lines = ["[", ",\n".join(lines), "]"]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        lines.insert(
            draw(st.integers(0, len(lines))), draw(broken_json | json_values.map(json.dumps) | ANY_TEXT)
        )
    text = "\n".join(lines)
    return text[: draw(st.integers(0, len(text)))] if draw(st.integers(0, 3)) == 0 else text


@st.composite
def delimited_text(draw: st.DrawFn) -> str:
    """CSV or TSV rows, mostly under a header: quotes, delimiters and line breaks inside fields."""
    delimiter = draw(st.sampled_from([",", "\t"]))
    header = draw(
        st.sampled_from([["text", "label"], ["label", "text"], ["prompt", "response"], ["text"], []])
    )
    odd = st.sampled_from(['"', '""', '"a,b"', '"x\ny"', "\t", ",", "label", "text"]) | ANY_TEXT
    field = WORDS | WORDS | odd
    width = max(len(header), 1)
    rows = draw(st.lists(st.lists(field, min_size=width - 1, max_size=width + 1), max_size=8))
    return "\n".join(delimiter.join(row) for row in [header, *rows] if row)


plain_lines = st.lists(WORDS | ANY_TEXT, max_size=6).map("\n".join)
html_pages = st.builds(
    "<html><head><title>{}</title></head><body><p>{}</p>{}</body></html>".format, WORDS, WORDS, ANY_TEXT
)


def warc_record(status: int, content_type: str, page: str) -> str:
    """A WARC response record holding one HTTP response (its Content-Length right)."""
    http = f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n\r\n{page}"
    length = len(http.encode("utf-8", errors="surrogatepass"))
    return (
        "WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.org/\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n{http}\r\n\r\n"
    )


warc_text = st.lists(
    st.builds(
        warc_record,
        st.sampled_from([200, 200, 404, 500]),
        st.sampled_from(["text/html", "text/plain", "", "application/octet-stream"]),
        html_pages | ANY_TEXT,
    ),
    max_size=3,
).map("".join)
CONTENTS = {  # content kind -> the file names such content usually has
    "json": ["data.jsonl", "data.json", "data", "data.jsonl.gz", "data.json.gz"],
    "delimited": ["data.csv", "data.tsv", "data", "data.csv.gz", "data.tsv.gz"],
    "text": ["data.txt", "data.txt.gz", "data"],
    "html": ["data.html", "data.html.gz"],
    "warc": ["data.warc", "data.warc.gz"],
}
TEXT_OF = {
    "json": json_text(),
    "delimited": delimited_text(),
    "text": plain_lines,
    "html": html_pages,
    "warc": warc_text,
}


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="surrogatepass" if encoding == "utf-8" else "replace")


@st.composite
def data_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, content): text of a kind under a name for it (or any name), sometimes with a byte damaged, or
    random bytes; `.gz` files mostly hold real gzip, whole or cut short."""
    kind = draw(st.sampled_from([*CONTENTS, "bytes"]))
    if kind == "bytes":
        name, payload = draw(st.sampled_from(FILE_NAMES)), draw(st.binary(max_size=800))
    else:
        name = draw(st.sampled_from(CONTENTS[kind]) | st.sampled_from(FILE_NAMES))
        payload = encoded(
            draw(TEXT_OF[kind]), draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "latin-1"]))
        )
        if payload and draw(st.integers(0, 4)) == 0:  # one byte damaged
            at = draw(st.integers(0, len(payload) - 1))
            payload = payload[:at] + bytes([payload[at] ^ draw(st.integers(1, 255))]) + payload[at + 1 :]
    if name.endswith(".gz") and draw(st.integers(0, 3)):
        payload = gzip.compress(payload)
        if draw(st.integers(0, 3)) == 0:
            payload = payload[: draw(st.integers(0, len(payload)))]
    return name, payload


def check_read(path: Path, task: str, fmt: str) -> None:
    """Read every row; a refusal must be a DataFormatError naming the file, every row must say where it was."""
    try:
        found = list(iter_records(path, ReadOptions(task=task), fmt))
    except DataFormatError as err:
        assert str(path) in str(err), err
        return
    for row in found:
        assert row.source == str(path) and row.line >= 1, row
        if isinstance(row, Malformed):
            assert row.reason


@fuzz(400)
@given(file=data_files(), task=st.sampled_from(TASKS), fmt=st.sampled_from(FORMATS))
def test_any_file_is_read_or_refused_naming_it(
    workdir: Path, file: tuple[str, bytes], task: str, fmt: str
) -> None:
    name, payload = file
    path = workdir / name
    path.write_bytes(payload)
    check_read(path, task, fmt)


@fuzz(60)
@given(
    values=st.lists(json_objects_, min_size=1, max_size=5),
    indent=st.sampled_from([None, 1, 4]),
    chunk=st.integers(1, 64),
)
def test_a_json_array_reads_the_same_in_any_chunk_size(
    workdir: Path, values: list[dict[str, Any]], indent: int | None, chunk: int
) -> None:
    """The array reader reads on only where a value may be cut off: any chunk size gives the same rows."""
    path = workdir / "array.json"
    path.write_text(json.dumps(values, indent=indent), encoding="utf-8", errors="surrogatepass")
    whole = list(json_objects.iter_json_rows(path))
    with mock.patch.object(json_objects, "CHUNK_CHARS", chunk):
        assert list(json_objects.iter_json_rows(path)) == whole


# -------------------------------------------------------------------------------------------------- config loader


def dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the config as `section.key`, nested sections included."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += dotted_keys(annotation, f"{prefix}{name}.")
    return keys


CONFIG_KEYS = dotted_keys(Config) + [
    "method.r",
    "method.lora_alpha",
    "train.lrr",
    "nope.deeper",
    "data.train.0",
]
YAML_SCALARS = st.sampled_from(
    [
        "true", "false", "null", "~", "-1", "0", "7", "4294967296", "1e400", ".nan", "-.inf", "3e-4", "0.5",
        "[1, 2]", "{a: 1}", "[true, 0.9]", "'x'", '"\\ud800"', "&a 1", "*a", "!!python/object/apply:os.system [x]",
        "!!binary aGk=", "2024-01-01", "0x1F", "'", "[", "{", ": :", "- a", "|", "lora", "asha", "epoch", "auto",
        "quality", "[quality, latency]", "multitask", "transfer", "x.jsonl", "[{path: a.jsonl, weight: 0}]",
    ]
) | WORDS | st.integers() | st.floats().map(str) | ANY_TEXT.filter(lambda t: len(t) < 4)  # fmt: skip


@st.composite
def yaml_text(draw: st.DrawFn) -> str:
    """`key: value` lines under their sections, mostly the config's own keys so that validation is reached;
    now and then a line indented wrong."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        parts = draw(st.sampled_from(CONFIG_KEYS)).split(".")
        lines += [f"{'  ' * depth}{part}:" for depth, part in enumerate(parts[:-1])]
        depth = len(parts) - 1 if draw(st.integers(0, 9)) else draw(st.integers(0, 3))
        lines.append(f"{'  ' * depth}{parts[-1]}: {draw(YAML_SCALARS)}")
    return "\n".join(lines)


@fuzz(250)
@given(
    content=st.binary(max_size=300)
    | st.builds(encoded, yaml_text() | ANY_TEXT, st.sampled_from(["utf-8", "latin-1"]))
)
def test_any_config_file_loads_or_is_refused_naming_it(workdir: Path, content: bytes) -> None:
    path = workdir / "config.yaml"
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as err:
        assert str(path) in str(err), err


overrides = (
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(CONFIG_KEYS), YAML_SCALARS) | ANY_TEXT
)


@fuzz(250)
@given(items=st.lists(overrides, max_size=4))
def test_any_set_override_applies_or_is_refused_naming_the_key(items: list[str]) -> None:
    try:
        load_config(None, items)
    except ConfigError as err:
        message = str(err)
        sections = [item.partition("=")[0].strip().split(".")[0] for item in items]
        assert "--set" in message or any(s and s in message for s in sections), (items, message)


# -------------------------------------------------------------------------------------------- request schemas

REQUEST_MODELS = [ClassifyRequest, CompletionRequest, ChatCompletionRequest, ChatMessage]
message_dicts = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "tool"]) | json_values,
        "content": json_values,
    },
)


@st.composite
def request_bodies(draw: st.DrawFn, model: type[BaseModel]) -> Any:
    """A JSON body as the server parses it: mostly an object with the model's fields (and an unknown one)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    fields = {name: json_values for name in model.model_fields}
    fields |= {
        "messages": st.lists(message_dicts, max_size=3) | json_values,
        "temperature": st.floats() | st.integers() | json_values,
        "prompt": ANY_TEXT | st.lists(ANY_TEXT, max_size=2) | json_values,
        "input": ANY_TEXT | st.lists(ANY_TEXT, max_size=3) | json_values,
        "stop": ANY_TEXT | st.lists(ANY_TEXT, max_size=5) | json_values,
        "logprobs": json_values,
    }
    body = draw(st.fixed_dictionaries({}, optional=fields))
    return json.loads(json.dumps(body))  # what the server hands pydantic: JSON's own types (NaN included)


@fuzz(150)
@given(data=st.data(), model=st.sampled_from(REQUEST_MODELS))
def test_any_request_body_validates_or_is_refused_naming_the_field(
    data: st.DataObject, model: type[BaseModel]
) -> None:
    body = data.draw(request_bodies(model))
    try:
        request = model.model_validate(body)
    except ValidationError as err:
        problems = err.errors()
        assert problems and str(err)
        if isinstance(body, dict):
            assert all(problem["loc"] for problem in problems), problems
        return
    if isinstance(request, CompletionRequest):
        assert request.prompt_text() and isinstance(request.stop_strings(), list)
    if isinstance(request, ChatCompletionRequest):
        assert request.messages[-1].role == "user"
