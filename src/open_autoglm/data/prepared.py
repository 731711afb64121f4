"""The data a run trains on: prepared once, then reused while the inputs and the data settings stay the same.

`train` and `tune` call `load_data`. It runs the pipeline when the run folder's `data/` is missing or stale
(its fingerprint — a hash of the input files' bytes, the data settings, the task and the split seed — differs),
or when an output is not the file data_report.json describes (its size or hash differ: a torn or edited file),
and reuses it otherwise. `data.train` may also point at a folder that `autoglm data prepare` made: its splits
are copied into the run folder as they are, once they are checked to be whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from open_autoglm.atomic import atomic_open
from open_autoglm.config import Config
from open_autoglm.data.pipeline import OUTPUTS, REPORT, describe_output, input_files
from open_autoglm.data.splits import LoadedData, read_written_splits
from open_autoglm.run_folder import RunFolder

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
    out_dir = out_dir or RunFolder(config.run_dir).data
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
    report = _read_report(out_dir)
    if report.get("fingerprint") != current:
        return False
    problem = torn_output(out_dir, report)
    if problem:
        logger.warning("%s: preparing the data again", problem)
    return problem is None


def torn_output(folder: Path, report: dict[str, Any]) -> str | None:
    """What makes `folder`'s files differ from what its data report recorded, or None when every one is whole."""
    outputs = report.get("outputs")
    if not isinstance(outputs, dict) or "train.jsonl" not in outputs:
        return f"{folder / REPORT} records no outputs to check (an older version wrote it)"
    for name, recorded in outputs.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if describe_output(path) != recorded:
            return f"{path} is not the file data prepare wrote (its size or hash changed: torn or edited)"
    return None


def _read_report(out_dir: Path) -> dict[str, Any]:
    """The data report of a prepared folder ({} when there is none or it is unreadable: the data is prepared anew)."""
    path = out_dir / REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        logger.warning("%s is unreadable (%s): preparing the data again", path, err)
        return {}
    return report if isinstance(report, dict) else {}


def _copy_prepared(folder: Path, out_dir: Path) -> LoadedData:
    if not (folder / "train.jsonl").exists():
        raise FileNotFoundError(
            f"data.train: {folder} is a folder without train.jsonl (not a prepared data folder)"
        )
    report = _read_report(folder)
    problem = (
        torn_output(folder, report) if report.get("outputs") else None
    )  # older folders: nothing to check
    if problem:
        raise ValueError(f"data.train: {problem}; run `autoglm data prepare --force` for that folder again")
    if folder.resolve() != out_dir.resolve():
        for name in (*OUTPUTS, REPORT):
            if (folder / name).exists():
                _copy_whole(folder / name, out_dir / name)
    loaded = read_written_splits(out_dir)
    if "validation" not in loaded.splits:
        raise ValueError(f"data.train: the prepared folder {folder} has no validation.jsonl")
    return loaded


def _copy_whole(source: Path, target: Path) -> None:
    with open(source, "rb") as reading, atomic_open(target, "wb") as writing:
        shutil.copyfileobj(reading, writing)
