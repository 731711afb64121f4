"""The per-row work of the pipeline — clean, scrub, filter, hash — done in batches, in worker processes.

Everything here is a pure function of the row and the config, so batches can go to any process and come back
in order; the stateful steps (deduplication, splitting, accounting) stay in the main process.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from open_autoglm.config.data import DataConfig
from open_autoglm.data.clean import clean_text
from open_autoglm.data.dedup import exact_key, normalise, signatures
from open_autoglm.data.filters import QualityFilter
from open_autoglm.data.language import language_of
from open_autoglm.data.pii import build_scrubber

MINHASH_SEED = 1


@dataclass
class Processed:
    """One input row after the per-row steps. `removed` names the reason when a filter refused it."""

    data: dict[str, Any]  # the cleaned, scrubbed canonical record
    input_chars: int
    chars: int
    changed: bool  # cleaning or scrubbing changed the text
    pii: Counter[str]
    language: str
    removed: str | None
    normalised: str = ""  # the text as deduplication compares it (kept rows only)
    key: bytes = b""  # exact-duplicate key of the normalised text


@dataclass
class Batch:
    rows: list[Processed]
    signatures: np.ndarray | None  # (rows, num_perm) MinHash signatures; None without near-dedup


def text_fields(record: dict[str, Any]) -> list[tuple[str | int, ...]]:
    """Paths to the free-text fields of a canonical record (labels and roles are not text to clean)."""
    if "messages" in record:
        return [("messages", i, "content") for i in range(len(record["messages"]))]
    return [(k,) for k in ("text", "system", "prompt", "response") if k in record]


def joined_text(record: dict[str, Any]) -> str:
    """All the text of a record in one string: what filters, language ID and deduplication judge."""
    return "\n".join(str(_get(record, path)) for path in text_fields(record))


class RowProcessor:
    """Built once per process from the data config (and a tokenizer when token-length filters are set)."""

    def __init__(self, config: DataConfig, task: str, tokenizer: Any = None) -> None:
        self.config = config
        html = config.clean.html if config.clean.html is not None else task != "sft"
        self.clean = config.clean.model_copy(update={"html": html})
        self.scrub = build_scrubber(tuple(config.pii.types))
        self.filter = QualityFilter(config.filter, tokenizer) if config.filter.enabled else None

    def process(self, record: dict[str, Any]) -> Processed:
        config = self.config
        data = {k: (list(map(dict, v)) if k == "messages" else v) for k, v in record.items()}
        original = joined_text(record)
        pii: Counter[str] = Counter()
        for path in text_fields(data):
            field = text = str(_get(data, path))
            if config.clean.enabled:
                text = clean_text(text, self.clean)
            if config.pii.enabled:
                text, found = self.scrub(text)
                pii.update(found)
            if text != field:
                _set(data, path, text)
        text = joined_text(data)
        if self.filter is not None:
            verdict = self.filter.check(text)
            removed, language = verdict.reason, verdict.language
        else:
            removed, language = None, language_of(text)
        normalised = normalise(text) if removed is None else ""
        key = exact_key(normalised, normalised=True) if removed is None else b""
        return Processed(
            data, len(original), len(text), text != original, pii, language, removed, normalised, key
        )


_processor: RowProcessor | None = None


def init_worker(config: DataConfig, task: str, tokenizer: Any = None) -> None:
    """Pool initializer: one processor per worker process."""
    global _processor
    _processor = RowProcessor(config, task, tokenizer)


def process_batch(records: list[dict[str, Any]]) -> Batch:
    """Process a batch in this worker (after `init_worker`); signatures only for rows that were kept."""
    assert _processor is not None, "init_worker was not called in this process"
    rows = [_processor.process(r) for r in records]
    dedup = _processor.config.dedup
    sigs = None
    if dedup.near:
        texts = [r.normalised for r in rows if r.removed is None]
        kept_sigs = (
            signatures(texts, dedup.ngram, dedup.num_perm, MINHASH_SEED, normalised=True)
            if texts
            else np.zeros((0, dedup.num_perm), dtype=np.uint32)
        )
        sigs = np.zeros((len(rows), dedup.num_perm), dtype=kept_sigs.dtype)
        sigs[[i for i, r in enumerate(rows) if r.removed is None]] = kept_sigs
    for row in rows:
        row.normalised = ""  # not needed past this point: spare the pickling back to the main process
    return Batch(rows, sigs)


def _get(record: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    value: Any = record
    for part in path:
        value = value[part]
    return value


def _set(record: dict[str, Any], path: tuple[str | int, ...], text: str) -> None:
    target: Any = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = text
