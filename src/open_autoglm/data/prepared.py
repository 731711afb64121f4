"""The data a run trains on: prepared once, then reused while the inputs and the data settings stay the same.

`train` and `tune` call `load_data`. It runs the pipeline when the run folder's `data/` is missing or stale
(its fingerprint — a hash of the input files' bytes, the data settings, the task and the split seed — differs),
and reuses it otherwise. `data.train` may also point at a folder that `autoglm data prepare` made: its splits
are copied into the run folder as they are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from open_autoglm.config import Config
from open_autoglm.data.pipeline import input_files
from open_autoglm.data.splits import SPLITS, LoadedData, read_written_splits

PIPELINE_VERSION = 1  # bump when a change to the pipeline changes its output for the same input
CHUNK = 2**20
logger = logging.getLogger(__name__)


def fingerprint(config: Config) -> str:
    """A hash of everything the prepared data depends on."""
    digest = hashlib.sha256()
    settings: dict[str, Any] = {
        "pipeline": PIPELINE_VERSION,
        "task": config.task,
        "seed": config.train.seed,
        "data": config.data.model_dump(mode="json", exclude={"workers", "max_length", "text_prefix"}),
    }
    if config.data.filter.min_tokens or config.data.filter.max_tokens:
        settings["tokenizer"] = config.model.name  # token counts depend on it
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for f in input_files(config):  # checks each exists, naming its config key
        digest.update(f"{f.group}:{f.path}:{f.weight}".encode())
        with open(f.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def load_data(config: Config, out_dir: Path | None = None) -> LoadedData:
    """The run's splits in memory, prepared into `out_dir` (default: the run folder's `data/`) when needed."""
    out_dir = out_dir or config.run_dir / "data"
    source = config.data.train
    if isinstance(source, Path) and source.is_dir():
        return _copy_prepared(source, out_dir)
    if prepare_or_reuse(config, out_dir)[1]:
        logger.info("data unchanged since it was prepared: reusing %s", out_dir)
    return read_written_splits(out_dir)


def prepare_or_reuse(config: Config, out_dir: Path, force: bool = False) -> tuple[dict[str, Any], bool]:
    """The data report of `out_dir`, prepared anew unless it is up to date (or `force`); True when reused."""
    current = fingerprint(config)
    if not force and _is_prepared(out_dir, current):
        return _read_report(out_dir), True
    return _prepare(config, out_dir, current), False


def _prepare(config: Config, out_dir: Path, current: str) -> dict[str, Any]:
    """Run the pipeline (loading the tokenizer only when token-length filters need it); returns the report."""
    from open_autoglm.data.pipeline import prepare

    tokenizer = None
    if config.data.filter.enabled and (config.data.filter.min_tokens or config.data.filter.max_tokens):
        from open_autoglm.models.loading import load_tokenizer, resolve_model_path

        tokenizer = load_tokenizer(resolve_model_path(config.model.name), config.model)
    report = prepare(config, out_dir, tokenizer=tokenizer, fingerprint=current)
    return report.to_json()


def _is_prepared(out_dir: Path, current: str) -> bool:
    if not (out_dir / "train.jsonl").exists():
        return False
    return bool(_read_report(out_dir).get("fingerprint") == current)


def _read_report(out_dir: Path) -> dict[str, Any]:
    """The data report of a prepared folder ({} when there is none or it is unreadable)."""
    try:
        return dict(json.loads((out_dir / "data_report.json").read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _copy_prepared(folder: Path, out_dir: Path) -> LoadedData:
    if not (folder / "train.jsonl").exists():
        raise FileNotFoundError(
            f"data.train: {folder} is a folder without train.jsonl (not a prepared data folder)"
        )
    if folder.resolve() != out_dir.resolve():
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in [f"{s}.jsonl" for s in SPLITS] + [
            "data_report.json",
            "quarantine.jsonl",
            "removed.jsonl",
        ]:
            if (folder / name).exists():
                shutil.copyfile(folder / name, out_dir / name)
    loaded = read_written_splits(out_dir)
    if "validation" not in loaded.splits:
        raise ValueError(f"data.train: the prepared folder {folder} has no validation.jsonl")
    return loaded
