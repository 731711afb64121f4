"""The data a run trains on: prepared once, then reused while the inputs and the data settings stay the same.

`train` and `tune` call `load_data`. It runs the pipeline when the run folder's `data/` is missing or stale
(its fingerprint — a hash of the input files' bytes, the data settings, the task and the split seed — differs),
or when an output is not the file data_report.json describes (its size or hash differ: a torn or edited file),
and reuses it otherwise. `data.train` may also point at a folder that `autoglm data prepare` made: its splits
are copied into the run folder as they are, once they are checked to be whole.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from open_autoglm.atomic import atomic_open
from open_autoglm.data.pipeline import OUTPUTS, REPORT, describe_output, input_files
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData, read_written_splits

PIPELINE_VERSION = 1  # bump when a change to the pipeline changes its output for the same input
CHUNK = 2**20
logger = logging.getLogger(__name__)


def fingerprint(request: DataRequest) -> str:
    """A hash of everything the prepared data depends on."""
    data = request.data
    settings: dict[str, Any] = {
        "pipeline": PIPELINE_VERSION,
        "task": request.task,
        "seed": request.seed,
        "data": data.model_dump(mode="json", exclude={"workers", "max_length", "text_prefix"}),
    }
    if data.filter.min_tokens or data.filter.max_tokens:
        settings["tokenizer"] = request.model.name  # token counts depend on it
    files = tuple(  # checks each exists, naming its config key
        (f.group, str(f.path), f.weight, f.path.stat().st_size, f.path.stat().st_mtime_ns)
        for f in input_files(data)
    )
    return _hash_inputs(json.dumps(settings, sort_keys=True), files)


@functools.lru_cache(maxsize=16)
def _hash_inputs(settings: str, files: tuple[tuple[str, str, float, int, int], ...]) -> str:
    """The settings and every input file's bytes, hashed. Cached by each file's size and modification time, so a
    resumed run reads its inputs once (the resume check and the data both ask) and a changed file is read again."""
    digest = hashlib.sha256(settings.encode())
    for group, path, weight, _size, _mtime in files:
        digest.update(f"{group}:{path}:{weight}".encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def load_data(request: DataRequest, out_dir: Path) -> LoadedData:
    """The splits in memory, prepared into `out_dir` (a run folder's `data/`) when needed."""
    source = request.data.train
    if isinstance(source, Path) and source.is_dir():
        return _copy_prepared(source, out_dir)
    if prepare_or_reuse(request, out_dir)[1]:
        logger.info("data unchanged since it was prepared: reusing %s", out_dir)
    return read_written_splits(out_dir)


def prepare_or_reuse(request: DataRequest, out_dir: Path, force: bool = False) -> tuple[dict[str, Any], bool]:
    """The data report of `out_dir`, prepared anew unless it is up to date (or `force`); True when reused."""
    current = fingerprint(request)
    if not force and _is_prepared(out_dir, current):
        return _read_report(out_dir), True
    return _prepare(request, out_dir, current), False


def _prepare(request: DataRequest, out_dir: Path, current: str) -> dict[str, Any]:
    """Run the pipeline (loading the tokenizer only when token-length filters need it); returns the report."""
    from open_autoglm.data.pipeline import prepare

    tokenizer = None
    filters = request.data.filter
    if filters.enabled and (filters.min_tokens or filters.max_tokens):
        from open_autoglm.models.loading import load_tokenizer, resolve_model_path

        tokenizer = load_tokenizer(resolve_model_path(request.model.name), request.model)
    report = prepare(request, out_dir, tokenizer=tokenizer, fingerprint=current)
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
