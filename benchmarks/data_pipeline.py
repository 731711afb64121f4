"""Data pipeline: deduplication speed and accuracy against plain datasketch, on a corpus with planted duplicates.

1. The corpus (deterministic from --seed): the real texts of /work/shared/data (SST-2, TREC, SMS Spam, C4 demo,
   Alpaca EN; ChnSentiCorp, TNEWS, Alpaca ZH, medical QA) are cut into passages of at most PASSAGE_CHARS
   characters at sentence ends, deduplicated (28k English passages of 112 characters on average, 17k Chinese of
   91), and 2-5 passages of one language make a document, drawn with the seed: 200k documents reuse each passage
   about 17 times, so real overlaps between documents occur too. Then, each at a random later row, planted:
   - exact duplicates (EXACT_SHARE of the rows): copies, some upper-cased or with extra spaces and punctuation,
     all equal after normalisation;
   - near-duplicates (NEAR_SHARE): a copy with ~1-6% of its words (Chinese: characters) replaced or deleted,
     ~0.5-3% of its characters edited, a sentence inserted, or two sentences swapped. Only twins whose true
     Jaccard similarity of character 5-grams with the original is at least THRESHOLD are planted (each is
     recorded); the others are drawn again, so the truth is honest;
   - PII (PII_SHARE of the documents): an e-mail address, a Chinese mobile number or a card number.
   It is written as JSONL ({"text": ...}, task pretrain) in a temporary folder.
2. The arms, each in a fresh subprocess (peak RSS = the largest sum over the process and its workers, sampled
   every 0.1 s), timed from the first line read to the last decision, worker start-up included:
   - dedup: ours, the dedup stage alone: workers (--workers, spawn) compute `normalise`, `exact_key` and
     `signatures` per batch of BATCH_ROWS rows; the main process keeps an exact-key dict and a
     `NearDuplicateIndex` (threshold 0.8, 128 permutations, character 5-grams), first occurrence kept;
   - pipeline: ours end to end, `open_autoglm.data.pipeline.prepare` (read, clean, scrub PII, filter, dedup,
     split, write; its defaults, --workers processes) on the first --pipeline-rows rows, decisions read from
     removed.jsonl. See `run_pipeline`, and HEADLINE to make it the headline.
   - datasketch: plain datasketch `MinHash` + `MinHashLSH(threshold=0.8, num_perm=128)` (its defaults
     otherwise), one process, on the same normalised character 5-grams (so the comparison is about speed, not
     shingling). Query, and insert when nothing is found; a row with any candidate is a duplicate. Used well:
     `update_batch` per document and one shared set of permutations (`MinHash(num_perm)` draws its permutations
     again for every document otherwise). The tutorials' way, one `update` per shingle, is ~10x slower still:
     it is timed on the first --per-shingle-rows rows only (`baseline_per_shingle_rows_per_s`).
3. Accuracy, against the planted truth: a flagged row is correct when the true Jaccard with the row it was
   matched to (any candidate, for datasketch) is at least THRESHOLD, planted or not. Precision counts the flagged
   rows that are not exact duplicates of an earlier row (after normalisation); recall counts the planted
   near-duplicates found with a correct match. Rows the pipeline removed for other reasons (filters) leave the
   counts, with the near-duplicates planted on them.

Run: `.venv/bin/python benchmarks/data_pipeline.py` (200k rows, about 6 minutes on 2 cores, most of it
datasketch) or `--rows 20000` for a quick run. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from open_autoglm.data.dedup import NearDuplicateIndex, exact_key, normalise, signatures

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROWS = 200_000
SEED = 0
THRESHOLD, NGRAM, NUM_PERM, MINHASH_SEED = 0.8, 5, 128, 1  # the data.dedup defaults
EXACT_SHARE, NEAR_SHARE, PII_SHARE = 0.04, 0.08, 0.03
PASSAGE_CHARS = 300
BATCH_ROWS = 512
WORKERS = 2
PER_SHINGLE_ROWS = 1000
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


# 1. The corpus -----------------------------------------------------------------------------------------------


def lines(path: Path, encoding: str = "utf-8") -> list[str]:
    with open(path, encoding=encoding) as handle:
        return handle.read().splitlines()


def real_texts() -> dict[str, list[str]]:
    """Every real text of the shared data sets, by language."""
    en: list[str] = []
    for name in ("train", "dev", "test"):  # tab-separated, quote characters are text
        en += [line.split("\t", 1)[1] for line in lines(DATA / "sst2" / f"{name}.tsv")]
    for name in ("train_5500.label", "TREC_10.label"):
        en += [line.split(" ", 1)[1] for line in lines(DATA / "trec_qc" / name, "latin-1")]
    en += [line.split("\t", 1)[1] for line in lines(DATA / "sms_spam" / "SMSSpamCollection")]
    en += [json.loads(line)["text"] for line in lines(DATA / "c4_demo" / "c4_demo.jsonl")]
    with open(DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", encoding="utf-8") as handle:
        zh = [row["review"] for row in csv.DictReader(handle)]
    for name in ("train_few_all.json", "dev_few_all.json", "test_public.json"):
        zh += [json.loads(line)["sentence"] for line in lines(DATA / "fewclue_tnews" / name)]
    for lang, texts in (("en", en), ("zh", zh)):
        alpaca = json.loads("\n".join(lines(DATA / f"alpaca_{lang}_demo" / f"alpaca_{lang}_demo.json")))
        texts += [row[k] for row in alpaca for k in ("instruction", "input", "output") if row[k]]
    for line in lines(DATA / "medical_sft_zh" / "medical_sft_1K_format.jsonl"):
        zh += [turn["value"] for turn in json.loads(line)["conversations"]]
    return {"en": en, "zh": zh}


def passages(texts: list[str]) -> list[str]:
    """Texts cut at sentence ends into pieces of at most PASSAGE_CHARS, each once (after normalisation)."""
    out, seen = [], set()
    for text in texts:
        piece = ""
        for sentence in (s.strip() for s in SENTENCE_END.split(text.strip())):
            for part in (sentence[i : i + PASSAGE_CHARS] for i in range(0, len(sentence), PASSAGE_CHARS)):
                if piece and len(piece) + len(part) + 1 > PASSAGE_CHARS:
                    out.append(piece)
                    piece = ""
                piece = f"{piece} {part}".strip()
        out.append(piece)
    return [p for p in out if len(p) >= 10 and not (normalise(p) in seen or seen.add(normalise(p)))]


def shingle_set(text: str) -> set[str]:
    norm = normalise(text)
    return {norm[i : i + NGRAM] for i in range(len(norm) - NGRAM + 1)} or {norm}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def near_twin(text: str, lang: str, pool: list[str], rng: random.Random) -> tuple[str, str]:
    """(operation, twin) — one edit of the kinds real corpora hold."""
    sep = " " if lang == "en" else ""
    op = rng.choice(["word", "char", "insert", "swap"])
    if op == "word":  # Chinese has no spaces: a "word" is a character
        words = text.split(" ") if lang == "en" else list(text)
        for _ in range(max(1, round(len(words) * rng.uniform(0.01, 0.06)))):
            i = rng.randrange(len(words))
            if rng.random() < 0.7:
                words[i] = rng.choice(words)
            else:
                del words[i]
        return op, sep.join(words)
    if op == "char":
        chars = list(text)
        for _ in range(max(1, round(len(chars) * rng.uniform(0.005, 0.03)))):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice(chars) if rng.random() < 0.6 else ""
        return op, "".join(chars)
    sentences = [s for s in SENTENCE_END.split(text) if s]
    if op == "insert" or len(sentences) < 3:
        extra = SENTENCE_END.split(rng.choice(pool))[0][:120]
        sentences.insert(rng.randrange(len(sentences) + 1), extra)
        return "insert", sep.join(sentences)
    i, j = rng.sample(range(len(sentences)), 2)
    sentences[i], sentences[j] = sentences[j], sentences[i]
    return op, sep.join(sentences)


def exact_twin(text: str, rng: random.Random) -> str:
    """A copy that normalisation makes equal: case, spacing and punctuation changed."""
    twin = rng.choice([text, text.upper(), text.replace(" ", "  "), f"{text}!!", f"“{text}”", text.lower()])
    return twin if normalise(twin) == normalise(text) else text


def with_pii(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(text with PII inserted, the PII, its type as the pipeline's report names it)."""
    kind, pii = rng.choice(
        [
            ("email", f"{rng.choice(['li.wei', 'anna', 'j.smith'])}{rng.randrange(100)}@example.com"),
            ("phone", f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"),
            ("card", "4111 1111 1111 1111"),
        ]
    )
    cut = rng.randrange(len(text) + 1)
    return f"{text[:cut]} {pii} {text[cut:]}", pii, kind


@dataclass
class Plant:
    row: int
    original: int
    kind: str  # exact, or the near-duplicate operation: word, char, insert, swap
    jaccard: float


def build_corpus(rows: int, seed: int, path: Path) -> tuple[list[str], list[Plant], list[str | None]]:
    """Write the corpus; returns its texts, the planted duplicates (final row numbers) and, per row, the type
    of the PII planted in it (None: none, or an edit broke it)."""
    rng = random.Random(seed)
    pools = {lang: passages(texts) for lang, texts in real_texts().items()}
    n_exact, n_near = round(rows * EXACT_SHARE), round(rows * NEAR_SHARE)
    base = rows - n_exact - n_near
    docs, langs, pii = [], [], {}  # pii: base document -> (the PII, its type)
    for i in range(base):
        lang = rng.choice(["en", "zh"])
        doc = (" " if lang == "en" else "").join(rng.sample(pools[lang], rng.randint(2, 5)))
        if rng.random() < PII_SHARE:
            doc, *pii[i] = with_pii(doc, rng)
        docs.append(doc)
        langs.append(lang)
    planted: list[tuple[float, str, int, str, float]] = []  # (position, text, original, kind, jaccard)
    for n in range(n_exact + n_near):
        while True:
            original = rng.randrange(base)
            if n < n_exact:
                twin, kind, similarity = exact_twin(docs[original], rng), "exact", 1.0
                break
            kind, twin = near_twin(docs[original], langs[original], pools[langs[original]], rng)
            similarity = jaccard(shingle_set(docs[original]), shingle_set(twin))
            if similarity >= THRESHOLD and normalise(twin) != normalise(docs[original]):
                break
        planted.append((rng.uniform(original + 0.5, base), twin, original, kind, similarity))
    order = sorted([(float(i), d, -1, "", 0.0) for i, d in enumerate(docs)] + planted, key=lambda x: x[0])
    final_row = {int(pos): row for row, (pos, _, original, _, _) in enumerate(order) if original < 0}
    texts = [text for _, text, _, _, _ in order]
    pii_types: list[str | None] = []
    for pos, text, original, _, _ in order:
        found = pii.get(int(pos) if original < 0 else original)
        pii_types.append(found[1] if found and found[0] in text else None)
    plants = [
        Plant(row, final_row[original], kind, round(similarity, 4))
        for row, (_, _, original, kind, similarity) in enumerate(order)
        if original >= 0
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    return texts, plants, pii_types


# 2. The arms (each in its own subprocess) ----------------------------------------------------------------------


class PeakRss:
    """Samples the RSS of this process plus its children every 0.1 s; `stop()` gives the largest sum seen (MB)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                total = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(max(self.peak, own_peak_rss()) / 2**20, 1)


def own_peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM; a spike between two samples). Not `ru_maxrss`: Linux keeps it
    across exec, so a subprocess would report its parent's peak when that was larger."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_texts(corpus: Path) -> Iterator[str]:
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)["text"]


def _fingerprints(batch: tuple[int, list[str]]) -> tuple[int, list[bytes], np.ndarray]:
    """Worker: exact keys and signatures of a batch, normalising each text once."""
    start, texts = batch
    norm = [normalise(t) for t in texts]
    keys = [exact_key(t, normalised=True) for t in norm]
    return start, keys, signatures(norm, NGRAM, NUM_PERM, MINHASH_SEED, normalised=True)


def _batches(corpus: Path) -> Iterator[tuple[int, list[str]]]:
    batch: list[str] = []
    start = 0
    for text in read_texts(corpus):
        batch.append(text)
        if len(batch) == BATCH_ROWS:
            yield start, batch
            start, batch = start + len(batch), []
    if batch:
        yield start, batch


def run_dedup(corpus: Path, rows: int, workers: int) -> dict[str, Any]:
    """Ours, the dedup stage: signatures in worker processes, exact dict + NearDuplicateIndex here."""
    matched = np.full(rows, -1, dtype=np.int64)
    seen: dict[bytes, int] = {}
    index = NearDuplicateIndex(THRESHOLD, NUM_PERM)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for start, keys, sigs in pool.imap(_fingerprints, _batches(corpus), chunksize=1):
            for i, key in enumerate(keys):
                row = start + i
                twin = seen.get(key)
                if twin is None:
                    twin = index.match_or_add(sigs[i], row)
                if twin is None:
                    seen[key] = row
                else:
                    matched[row] = twin
    return {"matched": matched, "index_bytes_per_row": round(index.nbytes / max(len(index), 1))}


def run_datasketch(corpus: Path, rows: int, per_shingle_rows: int) -> dict[str, Any]:
    """The baseline: MinHash + MinHashLSH, one process, the same shingles; candidates kept for the evaluation."""
    from datasketch import MinHash, MinHashLSH

    def shingles(text: str) -> list[bytes]:
        return [s.encode("utf-8") for s in shingle_set(text)]

    # the tutorials' way, one update per shingle (and new permutations per document), on the first rows
    started, lsh, done = time.perf_counter(), MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM), 0
    for done, text in zip(range(1, per_shingle_rows + 1), read_texts(corpus), strict=False):
        sketch = MinHash(num_perm=NUM_PERM)
        for shingle in shingles(text):
            sketch.update(shingle)
        if not lsh.query(sketch):
            lsh.insert(done, sketch)
    per_shingle_rows_per_s = done / (time.perf_counter() - started)

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    permutations = MinHash(num_perm=NUM_PERM).permutations
    candidates: dict[int, list[int]] = {}  # flagged row -> the LSH's candidates
    for row, text in enumerate(read_texts(corpus)):
        sketch = MinHash(num_perm=NUM_PERM, permutations=permutations, scheme="affine32")
        sketch.update_batch(shingles(text))
        found = lsh.query(sketch)
        if found:
            candidates[row] = sorted(found)
        else:
            lsh.insert(row, sketch)
    seconds = time.perf_counter() - started
    return {"candidates": candidates, "seconds": seconds, "per_shingle_rows_per_s": per_shingle_rows_per_s}


def run_pipeline(corpus: Path, rows: int, workers: int, out_dir: Path) -> dict[str, Any]:
    """Ours end to end: `autoglm data prepare` with its defaults; decisions from removed.jsonl.

    Rows removed for other reasons (filters) are -2 in `matched`; the report's PII counts come back too.
    """
    from open_autoglm.config import validate_config
    from open_autoglm.data.pipeline import prepare
    from open_autoglm.data.request import DataRequest

    config = validate_config(
        {
            "name": "bench",
            "output_dir": str(out_dir / "runs"),
            "quiet": True,
            "task": "pretrain",
            "data": {"train": str(corpus), "val_ratio": 0.05, "test_ratio": 0.0, "workers": workers},
        },
        "benchmark",
    )
    report = prepare(DataRequest.of(config), out_dir / "prepared")
    matched = np.full(rows, -1, dtype=np.int64)
    with open(out_dir / "prepared" / "removed.jsonl", encoding="utf-8") as handle:
        for entry in map(json.loads, handle):
            row = entry["line"] - 1
            if entry["reason"] in ("exact_duplicate", "near_duplicate"):
                matched[row] = int(entry["of"].rsplit(":", 1)[1]) - 1
            else:
                matched[row] = -2
    return {"matched": matched, "pii": dict(report.pii)}


def run_arm(arm: str, corpus: Path, rows: int, workers: int, per_shingle_rows: int, out: Path) -> None:
    """Entry point of an arm's subprocess: runs it and saves its decisions and figures to `out` (npz + json)."""
    rss = PeakRss()
    started = time.perf_counter()
    if arm == "dedup":
        result = run_dedup(corpus, rows, workers)
    elif arm == "pipeline":
        result = run_pipeline(corpus, rows, workers, out.parent / "pipeline")
    else:
        result = run_datasketch(corpus, rows, per_shingle_rows)
    seconds = result.pop("seconds", time.perf_counter() - started)
    if "candidates" in result:  # flat, with row offsets, for np.savez
        lists = [result["candidates"].get(row, []) for row in range(rows)]
        del result["candidates"]
        result["offsets"] = np.cumsum([0] + [len(c) for c in lists])
        result["flat"] = np.array([x for c in lists for x in c], dtype=np.int64)
    arrays = {k: v for k, v in result.items() if isinstance(v, np.ndarray)}
    np.savez(out.with_suffix(".npz"), **arrays)
    figures = {k: v for k, v in result.items() if k not in arrays}
    figures.update(seconds=seconds, rows_per_s=rows / seconds, peak_rss_mb=rss.stop())
    out.with_suffix(".json").write_text(json.dumps(figures))


def spawn(arm: str, corpus: Path, rows: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out = workdir / arm
    options = {"arm": arm, "corpus": corpus, "rows": rows, "workers": args.workers, "out": out}
    options["per-shingle-rows"] = args.per_shingle_rows
    command = [sys.executable, __file__] + [f"--{k}={v}" for k, v in options.items()]
    subprocess.run(command, check=True)
    figures = json.loads(out.with_suffix(".json").read_text())
    with np.load(out.with_suffix(".npz")) as arrays:
        figures.update({k: arrays[k] for k in arrays.files})
    return figures


# 3. Accuracy ---------------------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    precision: float
    recall: float
    flagged: int  # rows flagged as duplicates, exact ones included
    near_flagged: int  # flagged rows that are not exact duplicates: the precision's denominator
    true_near_unplanted: int  # correct near-duplicate detections that nobody planted (real overlaps)
    exact_recall: float
    recall_by_jaccard: dict[str, float]
    recall_by_kind: dict[str, float]


class Truth:
    def __init__(self, texts: list[str], plants: list[Plant]) -> None:
        self.texts, self.plants = texts, plants
        self._shingles: dict[int, set[str]] = {}
        seen: set[str] = set()
        self.exact_dup = np.zeros(len(texts), dtype=bool)  # the normalised text appeared in an earlier row
        for row, text in enumerate(texts):
            norm = normalise(text)
            self.exact_dup[row] = norm in seen
            seen.add(norm)

    def forget(self) -> None:
        """Drop the cached shingle sets (an arm's matches can hold a few GB of them)."""
        self._shingles.clear()

    def jaccard(self, a: int, b: int) -> float:
        for row in (a, b):
            if row not in self._shingles:
                self._shingles[row] = shingle_set(self.texts[row])
        return jaccard(self._shingles[a], self._shingles[b])

    def score(self, matches: list[list[int]], other: np.ndarray | None = None) -> Accuracy:
        """`matches[row]`: the rows a flagged row was matched to (empty: kept), for the first len(matches) rows;
        `other`: rows removed for another reason."""
        correct = [
            any(self.jaccard(row, m) >= THRESHOLD for m in ms) if ms else False
            for row, ms in enumerate(matches)
        ]
        flagged = [row for row, ms in enumerate(matches) if ms]
        near = [row for row in flagged if not self.exact_dup[row]]
        planted = {p.row for p in self.plants}
        removed = other if other is not None else np.zeros(len(matches), dtype=bool)
        plants = [  # the arm may have seen only the first rows (the pipeline)
            p for p in self.plants if p.row < len(matches) and not removed[p.row] and not removed[p.original]
        ]
        near_plants = [p for p in plants if p.kind != "exact"]
        exact_plants = [p for p in plants if p.kind == "exact"]

        def share(group: list[Plant]) -> float:
            return round(sum(correct[p.row] for p in group) / len(group), 4) if group else float("nan")

        bins = {"0.80-0.85": (0.8, 0.85), "0.85-0.90": (0.85, 0.9), "0.90-1.00": (0.9, 1.01)}
        return Accuracy(
            precision=round(sum(correct[r] for r in near) / len(near), 4) if near else float("nan"),
            recall=share(near_plants),
            flagged=len(flagged),
            near_flagged=len(near),
            true_near_unplanted=sum(correct[r] for r in near if r not in planted),
            exact_recall=share(exact_plants),
            recall_by_jaccard={
                k: share([p for p in near_plants if lo <= p.jaccard < hi]) for k, (lo, hi) in bins.items()
            },
            recall_by_kind={
                k: share([p for p in near_plants if p.kind == k]) for k in ("word", "char", "insert", "swap")
            },
        )


def matches_of(figures: dict[str, Any]) -> list[list[int]]:
    if "flat" in figures:
        flat, offsets = figures["flat"].tolist(), figures["offsets"].tolist()
        return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    return [[m] if m >= 0 else [] for m in figures["matched"].tolist()]


# 4. Main -------------------------------------------------------------------------------------------------------

# The arm whose figures are the headline (`rows_per_s`, `precision`, ...): the dedup stage, which does the work
# the baseline does. Set to "pipeline" to make `prepare` end to end the headline (it also cleans, scrubs PII,
# filters and writes the splits; see `run_pipeline`); its figures are reported as `pipeline_*` either way.
HEADLINE = "dedup"
PIPELINE_ROWS = 200_000  # the pipeline arm reads the corpus's first rows: all of them by default


def pipeline_available() -> bool:
    """Whether `open_autoglm.data.pipeline.prepare` exists (the end-to-end arm)."""
    try:
        from open_autoglm.data.pipeline import prepare  # noqa: F401
    except ImportError:
        return False
    return True


def report(arm: str, rows: int, figures: dict[str, Any], accuracy: Accuracy) -> None:
    print(
        f"{arm:>10} ({rows:,} rows): {figures['rows_per_s']:>8,.0f} rows/s {figures['seconds']:6.1f} s"
        f"  peak {figures['peak_rss_mb']:6.1f} MB  precision {accuracy.precision:.4f}"
        f"  recall {accuracy.recall:.4f}  exact recall {accuracy.exact_recall:.4f}",
        flush=True,
    )
    print(f"{'':>12}recall by true Jaccard {accuracy.recall_by_jaccard}", flush=True)
    print(f"{'':>12}recall by edit {accuracy.recall_by_kind}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="documents in the corpus")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=WORKERS, help="processes for signatures (ours)")
    parser.add_argument(
        "--per-shingle-rows", type=int, default=PER_SHINGLE_ROWS, help="rows for the slow baseline"
    )
    parser.add_argument(
        "--pipeline-rows", type=int, default=PIPELINE_ROWS, help="rows for the end-to-end arm (0: skip it)"
    )
    parser.add_argument("--keep", type=Path, help="keep the corpus and outputs in this folder")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm:
        run_arm(args.arm, args.corpus, args.rows, args.workers, args.per_shingle_rows, args.out)
        return

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        corpus = workdir / "corpus.jsonl"
        started = time.perf_counter()
        texts, plants, pii = build_corpus(args.rows, args.seed, corpus)
        kinds = {k: sum(p.kind == k for p in plants) for k in ("exact", "word", "char", "insert", "swap")}
        print(
            f"corpus: {len(texts):,} rows, {corpus.stat().st_size / 2**20:.0f} MiB, planted {kinds},"
            f" {sum(t is not None for t in pii)} rows with PII ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        truth = Truth(texts, plants)
        arms = {"dedup": len(texts), "datasketch": len(texts)}
        if args.pipeline_rows and pipeline_available():
            arms["pipeline"] = min(args.pipeline_rows, len(texts))
        results, accuracy = {}, {}
        for arm, rows in arms.items():
            data = corpus
            if rows < len(texts):
                data = workdir / f"corpus_first_{rows}.jsonl"
                with open(corpus, encoding="utf-8") as source, open(data, "w", encoding="utf-8") as head:
                    head.writelines(line for _, line in zip(range(rows), source, strict=False))
            results[arm] = figures = spawn(arm, data, rows, args, workdir)
            other = figures["matched"] == -2 if "matched" in figures else None
            accuracy[arm] = truth.score(matches_of(figures), other)
            truth.forget()
            report(arm, rows, figures, accuracy[arm])

    o, b = results[HEADLINE], results["datasketch"]
    summary: dict[str, Any] = {
        "rows": arms[HEADLINE],
        "ours": HEADLINE,
        "rows_per_s": round(o["rows_per_s"]),
        "baseline_rows_per_s": round(b["rows_per_s"]),
        "speedup": round(o["rows_per_s"] / b["rows_per_s"], 2),
        "peak_rss_mb": o["peak_rss_mb"],
        "baseline_peak_rss_mb": b["peak_rss_mb"],
        "precision": accuracy[HEADLINE].precision,
        "recall": accuracy[HEADLINE].recall,
        "baseline_precision": accuracy["datasketch"].precision,
        "baseline_recall": accuracy["datasketch"].recall,
        "exact_recall": accuracy[HEADLINE].exact_recall,
        "baseline_exact_recall": accuracy["datasketch"].exact_recall,
        "recall_by_jaccard": accuracy[HEADLINE].recall_by_jaccard,
        "baseline_recall_by_jaccard": accuracy["datasketch"].recall_by_jaccard,
        "baseline_per_shingle_rows_per_s": round(b["per_shingle_rows_per_s"]),
        "index_bytes_per_row": results["dedup"]["index_bytes_per_row"],
        "planted": kinds,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    if "pipeline" in results:
        p, rows = results["pipeline"], arms["pipeline"]
        summary.update(
            pipeline_rows=rows,
            pipeline_rows_per_s=round(p["rows_per_s"]),
            pipeline_speedup=round(p["rows_per_s"] / b["rows_per_s"], 2),
            pipeline_peak_rss_mb=p["peak_rss_mb"],
            pipeline_precision=accuracy["pipeline"].precision,
            pipeline_recall=accuracy["pipeline"].recall,
            pipeline_pii_found=p["pii"],
            pii_planted={k: sum(t == k for t in pii[:rows]) for k in ("email", "phone", "card")},
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
