"""`autoglm data prepare`: raw files in, clean train/validation/test JSONL out, every row accounted for.

Two streaming passes, so memory stays flat as the input grows:
1. read every file (training sources first, then given validation/test files); clean, scrub and filter each row
   in worker processes; deduplicate in this process (exact keys, MinHash LSH), across splits as well; stage the
   kept rows on disk. Only keys, signatures and labels stay in memory.
2. choose the splits from the staged rows' labels (stratified, seeded), apply the mix weights, stream the staged
   rows into `train.jsonl`, `validation.jsonl` and `test.jsonl`; augment the training split when asked.
Malformed rows go to `quarantine.jsonl`, removed rows to `removed.jsonl` (file, line, reason, and the kept twin
of a duplicate), the counts to `data_report.json`.

Every output is written whole or not at all (open_autoglm.atomic): a failure or a kill half-way leaves the
earlier files as they were. `data_report.json` comes last and records each output's size and hash, so that
`prepared.py` trusts a folder only when every file is the one this report describes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import random
import signal
import time
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from open_autoglm.atomic import atomic_open
from open_autoglm.config.data import DataConfig
from open_autoglm.data.accounting import DataReport
from open_autoglm.data.encoding import detect_encoding
from open_autoglm.data.process import Batch, Processed, init_worker, process_batch
from open_autoglm.data.progress import RowProgress
from open_autoglm.data.readers import (
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
    detect_format,
    iter_records,
)
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import SPLITS, assign_splits, stratified_sample
from open_autoglm.run_folder import DATA_REPORT

BATCH_ROWS = 512
PARALLEL_MIN_BYTES = 8 * 2**20  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4
SHOWN_ERRORS = 5
STAGING = "staging.jsonl"
QUARANTINE, REMOVED, REPORT = "quarantine.jsonl", "removed.jsonl", DATA_REPORT
OUTPUTS = (*(f"{s}.jsonl" for s in SPLITS), QUARANTINE, REMOVED)  # what data_report.json vouches for
KILL_AT_ENV = "AUTOGLM_FAULT_KILL_AT"  # tests/faults only: see _fault_point
PAGE_FORMATS = frozenset({"html", "warc"})  # their readers decode each page by its own charset
PAGE_ENCODING = "per page (HTTP/meta charset)"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFile:
    group: str  # the split its rows go to: train (to be split further), validation or test
    path: Path
    weight: float = 1.0


def input_files(data: DataConfig) -> list[InputFile]:
    """The configured files, training sources first; a missing one is named with its config key."""
    if data.train is None:
        raise ValueError(
            "data.train: no training file given (set data.train in the config or --set data.train=PATH)"
        )
    files = [InputFile("train", s.path, s.weight) for s in data.sources]
    files += [
        InputFile(split, getattr(data, split)) for split in ("validation", "test") if getattr(data, split)
    ]
    for f in files:
        key = "data.train" if f.group == "train" else f"data.{f.group}"
        if not f.path.exists():
            raise FileNotFoundError(f"{key}: no such file: {f.path}")
        if f.path.is_dir():  # a folder `data prepare` wrote is read by load_data before it gets here
            raise FileNotFoundError(f"{key}: {f.path} is a folder, not a data file")
    return files


def prepare(
    request: DataRequest, out_dir: Path, *, tokenizer: Any = None, fingerprint: str = ""
) -> DataReport:
    """Run the whole pipeline into `out_dir`; returns the report (also written to `data_report.json`)."""
    files = input_files(request.data)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftover_temporaries(out_dir)
    started = time.perf_counter()
    report = DataReport(task=request.task, fingerprint=fingerprint)
    try:
        with atomic_open(out_dir / REMOVED) as removed:
            with (
                atomic_open(out_dir / QUARANTINE) as quarantine,
                atomic_open(out_dir / STAGING) as staging,
                RowProgress("preparing data", enabled=not request.quiet) as progress,
            ):
                first_pass = FirstPass(request, files, report, quarantine, removed, staging)
                for batch_meta, batch in _processed_batches(request, files, report, tokenizer):
                    first_pass.take(batch_meta, batch)
                    progress.advance(len(batch_meta))
            _check_quarantine(request, report, out_dir)
            target, copies = plan_splits(request, first_pass, report)
        # removed.jsonl is in place now: it says why, when no rows are left for a split
        _check_planned(target, copies)
        _stream_into_splits(first_pass, target, copies, report, out_dir)
        if request.data.augment.enabled:
            _augment_train(request, report, out_dir)
    finally:
        (out_dir / STAGING).unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    report.outputs = {name: describe_output(out_dir / name) for name in OUTPUTS if (out_dir / name).exists()}
    _fault_point("data:before-report")
    report.write(out_dir / REPORT)
    return report


def describe_output(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a written file: what `data_report.json` records to tell a whole file from a torn one."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": digest}


def _remove_leftover_temporaries(out_dir: Path) -> None:
    """A killed run leaves its unfinished temporary files (`.train.jsonl.<random>.tmp`, see atomic_open) behind."""
    for name in (*OUTPUTS, STAGING, REPORT):
        for leftover in out_dir.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def _fault_point(name: str) -> None:
    """The fault suite kills the process here when AUTOGLM_FAULT_KILL_AT names this point.

    The one point a test cannot see from outside: the splits are in place but data_report.json is not yet.
    """
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _processed_batches(
    request: DataRequest, files: list[InputFile], report: DataReport, tokenizer: Any
) -> Iterator[tuple[list[tuple[int, Record | Malformed]], Batch]]:
    """(file index, row) of each input row with the processed batch of its good rows, in input order."""
    pending: deque[list[tuple[int, Record | Malformed]]] = deque()

    def batches() -> Iterator[list[dict[str, Any]]]:
        for meta in _read_batches(request, files, report):
            pending.append(meta)
            yield [row.data for _, row in meta if isinstance(row, Record)]

    workers = _worker_count(request.data.workers, files)
    if workers == 1:
        init_worker(request.data, request.kind, tokenizer)
        for batch in map(process_batch, batches()):
            yield pending.popleft(), batch
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started its threads
    with context.Pool(
        workers, initializer=init_worker, initargs=(request.data, request.kind, tokenizer)
    ) as pool:
        for batch in pool.imap(process_batch, batches(), chunksize=1):
            yield pending.popleft(), batch


def read_options(data: DataConfig, kind: str) -> ReadOptions:
    """How the data section says its files are read (the same for training data and evaluation files)."""
    return ReadOptions(
        task=kind,
        text_field=data.text_field,
        label_field=data.label_field,
        columns=tuple(data.columns) if data.columns else None,
    )


def _read_batches(
    request: DataRequest, files: list[InputFile], report: DataReport
) -> Iterator[list[tuple[int, Record | Malformed]]]:
    data = request.data
    options = read_options(data, request.kind)
    batch: list[tuple[int, Record | Malformed]] = []
    for index, f in enumerate(files):
        fmt = detect_format(f.path) if data.format == "auto" else data.format
        rows = iter_records(f.path, options, fmt)  # checks the format before the first row
        report.encodings[str(f.path)] = PAGE_ENCODING if fmt in PAGE_FORMATS else detect_encoding(f.path)
        for row in rows:
            batch.append((index, row))
            if len(batch) == BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def _worker_count(workers: int | None, files: list[InputFile]) -> int:
    size = sum(f.path.stat().st_size for f in files)
    if size < PARALLEL_MIN_BYTES:
        return 1
    return workers or min(os.cpu_count() or 1, MAX_WORKERS)


class FirstPass:
    """Deduplicates processed rows as they stream by and stages the kept ones; remembers only what pass 2 needs."""

    def __init__(
        self,
        request: DataRequest,
        files: list[InputFile],
        report: DataReport,
        quarantine: IO[str],
        removed: IO[str],
        staging: IO[str],
    ):
        from open_autoglm.data.dedup import NearDuplicateIndex

        self.request, self.report = request, report
        self.quarantine, self.removed, self.staging = quarantine, removed, staging
        self.files = files
        dedup = request.data.dedup
        self.classification = request.kind == "classification"
        # per group: exact key -> staged row id, and a near-duplicate index
        self.exact: dict[str, dict[bytes, int]] = {g: {} for g in SPLITS}
        self.near = (
            {g: NearDuplicateIndex(dedup.threshold, dedup.num_perm) for g in SPLITS} if dedup.near else None
        )
        # per staged row: group, file index, line, label — compact arrays, so 1M rows cost a few MB
        self.group = array("b")
        self.file_index = array("i")
        self.line = array("q")
        self.labels: list[str] = []
        self.dropped: set[int] = set()  # staged rows removed later (conflicting labels, policy drop)

    def take(self, meta: list[tuple[int, Record | Malformed]], batch: Batch) -> None:
        good = iter(enumerate(batch.rows))
        for file_index, row in meta:
            report = self.report
            report.rows_in += 1
            report.rows_per_file[row.source] += 1
            if isinstance(row, Malformed):
                report.quarantined += 1
                self._write(
                    self.quarantine,
                    {"file": row.source, "line": row.line, "reason": row.reason, "raw": row.raw},
                )
                continue
            i, processed = next(good)
            signature = batch.signatures[i] if batch.signatures is not None else None
            self._take_row(file_index, row, processed, signature)

    def _take_row(self, file_index: int, row: Record, processed: Processed, signature: Any) -> None:
        report = self.report
        report.lengths_in.add(processed.input_chars)
        report.pii.update(processed.pii)
        report.changed_by_cleaning += processed.changed
        if processed.removed is not None:
            self._remove(row, processed.removed)
            return
        group = self.files[file_index].group
        report.rows_checked_for_duplicates += 1
        twin, reason = self._find_twin(group, processed.key, signature)
        if twin is not None:
            label = str(processed.data.get("label")) if self.classification else None
            if label is not None and self.labels[twin] != label:
                report.conflicting_labels += 1
                if self.request.data.dedup.conflicting_labels == "drop":
                    self.dropped.add(twin)
                    reason = "conflicting_labels"
            self._remove(row, reason, of=twin)
            return
        row_id = len(self.group)
        self.exact[group][processed.key] = row_id
        if self.near is not None and signature is not None:
            self.near[group].match_or_add(signature, row_id)
        self.group.append(SPLITS.index(group))
        self.file_index.append(file_index)
        self.line.append(row.line)
        self.labels.append(str(processed.data.get("label", "")))
        report.languages[processed.language] += 1
        report.lengths_kept.add(processed.chars)
        self.staging.write(json.dumps(processed.data, ensure_ascii=False) + "\n")

    def _find_twin(self, group: str, key: bytes, signature: Any) -> tuple[int | None, str]:
        """The staged row this one duplicates, and the removal reason; train rows are checked first."""
        report, dedup = self.report, self.request.data.dedup
        groups = ["train", group] if group != "train" and dedup.across_splits else [group]
        for g in dict.fromkeys(groups):
            across = g != group
            twin = self.exact[g].get(key)
            if twin is not None:
                report.exact_duplicates += 1
                report.cross_split_duplicates += across
                if dedup.exact or across:
                    return twin, "duplicate_across_splits" if across else "exact_duplicate"
            if self.near is not None and signature is not None:
                twin = self.near[g].match(signature)
                if twin is not None:
                    report.near_duplicates += 1
                    report.cross_split_duplicates += across
                    return twin, "duplicate_across_splits" if across else "near_duplicate"
        return None, ""

    def _remove(self, row: Record, reason: str, of: int | None = None) -> None:
        self._write_removed(row.source, row.line, reason, of)

    def remove_staged(self, row_id: int, reason: str) -> None:
        """Remove a row staged in pass 1 (pass 2 decides: max_rows, mix weight, conflicting labels)."""
        self._write_removed(str(self.files[self.file_index[row_id]].path), self.line[row_id], reason)

    def _write_removed(self, source: str, line: int, reason: str, of: int | None = None) -> None:
        self.report.remove(reason)
        entry: dict[str, Any] = {"file": source, "line": line, "reason": reason}
        if of is not None:
            entry["of"] = f"{self.files[self.file_index[of]].path}:{self.line[of]}"
        self._write(self.removed, entry)

    @staticmethod
    def _write(handle: IO[str], entry: dict[str, Any]) -> None:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _check_quarantine(request: DataRequest, report: DataReport, out_dir: Path) -> None:
    """Stop when the malformed share passes `data.max_bad_ratio`, quoting the first bad rows."""
    if not report.rows_in:
        raise DataFormatError(f"{', '.join(report.rows_per_file) or 'data.train'}: no rows")
    share = report.quarantined / report.rows_in
    if share <= request.data.max_bad_ratio and report.quarantined < report.rows_in:
        return
    with open(out_dir / QUARANTINE, encoding="utf-8") as handle:
        shown = [json.loads(line) for _, line in zip(range(SHOWN_ERRORS), handle, strict=False)]
    lines = "\n".join(f"  {b['file']}:{b['line']}: {b['reason']}" for b in shown)
    more = f"\n  ... and {report.quarantined - len(shown)} more" if report.quarantined > len(shown) else ""
    raise DataFormatError(
        f"{report.quarantined} of {report.rows_in} rows are malformed ({share:.1%}, more than data.max_bad_ratio="
        f"{request.data.max_bad_ratio:.1%}); all are in {out_dir / QUARANTINE}:\n{lines}{more}"
    )


def plan_splits(
    request: DataRequest, first: FirstPass, report: DataReport
) -> tuple[dict[int, str], dict[int, int]]:
    """Pass 2, first half: each staged row's split and number of copies (0: removed, and written as such)."""
    data, seed = request.data, request.seed
    target: dict[int, str] = {}
    copies: dict[int, int] = {}
    train_ids = [i for i, g in enumerate(first.group) if SPLITS[g] == "train" and i not in first.dropped]
    labels = [first.labels[i] for i in train_ids] if first.classification else None
    if data.max_rows is not None and len(train_ids) > data.max_rows:
        chosen = set(stratified_sample(len(train_ids), data.max_rows, labels, seed))
        for position, row_id in enumerate(train_ids):
            if position not in chosen:
                copies[row_id] = 0
                first.remove_staged(row_id, "max_rows")
        train_ids = [r for p, r in enumerate(train_ids) if p in chosen]
        labels = [first.labels[i] for i in train_ids] if first.classification else None
    given = {SPLITS[g] for g in first.group}
    ratios = {
        s: getattr(data, "val_ratio" if s == "validation" else "test_ratio") for s in ("validation", "test")
    }
    to_split = {s: r for s, r in ratios.items() if s not in given and r > 0}
    for split, positions in assign_splits(len(train_ids), to_split, labels, seed).items():
        for position in positions:
            target[train_ids[position]] = split
    rng = random.Random(seed)
    for row_id, group in enumerate(first.group):
        if row_id in first.dropped:
            first.remove_staged(row_id, "conflicting_labels")
            copies[row_id] = 0
            continue
        target.setdefault(row_id, SPLITS[group])
        if target[row_id] == "train" and row_id not in copies:
            weight = first.files[first.file_index[row_id]].weight
            n = int(weight) + (rng.random() < weight - int(weight))
            copies[row_id] = n
            if n == 0:
                first.remove_staged(row_id, "mix_weight")
            report.repeated_by_weight += max(n - 1, 0)
    return target, copies


def _check_planned(target: dict[int, str], copies: dict[int, int]) -> None:
    written = {split for row_id, split in target.items() if copies.get(row_id, 1)}
    if "validation" not in written:
        raise ValueError("no validation rows: give data.validation or set data.val_ratio above 0")
    if "train" not in written:
        raise ValueError("no training rows left after preparing the data (removed.jsonl says why)")


def _stream_into_splits(
    first: FirstPass, target: dict[int, str], copies: dict[int, int], report: DataReport, out_dir: Path
) -> None:
    with ExitStack() as stack:  # every split file replaced on a clean exit, none on an error
        handles = {s: stack.enter_context(atomic_open(out_dir / f"{s}.jsonl")) for s in SPLITS}
        with open(out_dir / STAGING, encoding="utf-8") as staged:
            for row_id, line in enumerate(staged):
                n = copies.get(row_id, 1)
                if not n:
                    continue
                split = target[row_id]
                handles[split].write(line * n)
                report.splits[split] = report.splits.get(split, 0) + n
                if first.classification:
                    report.labels.setdefault(split, Counter())[first.labels[row_id]] += n
    for split in SPLITS:
        if split not in report.splits:
            (out_dir / f"{split}.jsonl").unlink()


def _augment_train(request: DataRequest, report: DataReport, out_dir: Path) -> None:
    from open_autoglm.data.augment import augment_rows

    if request.kind != "classification":
        raise ValueError(f"data.augment: augmentation is for classification, not task {request.task!r}")
    path = out_dir / "train.jsonl"
    rows = _read_jsonl(path)
    new_rows = augment_rows(rows, request.data.augment, seed=request.seed)
    with (
        atomic_open(path) as handle,
        open(path, encoding="utf-8") as written,
    ):  # rewritten whole, never appended
        handle.writelines(written)
        for row in new_rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    report.augmented = len(new_rows)
    report.splits["train"] += len(new_rows)
    for row in new_rows:
        report.labels["train"][str(row["label"])] += 1


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
