"""`autoglm quickstart`: the embedded default end to end — a real search (method and hyperparameters, with
pruning) against the untuned model and against the settings most tutorials start from (LoRA r=8 with the
Trainer's defaults: lr 5e-5, batch 8), in minutes on a 2-core CPU.

`--task classification` (the default): minilm on a synthetic 4-topic headline set. `--task sft`: smollm2 on
synthetic short instructions with one exact answer each, judged by ROUGE-L of its greedy replies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from open_autoglm.cli.common import add_lang_option, console

_PEFT_LR = {
    "key": "train.lr",
    "type": "float",
    "log": True,
    "if": {"method.name": ["lora", "dora", "adapter"]},
}
_IA3_LR = {"key": "train.lr", "type": "float", "log": True, "if": {"method.name": "ia3"}}

# The default classification space without full fine-tuning, which takes minutes per trial on a CPU.
QUICKSTART_SPACE = {
    "method.name": ["lora", "dora", "ia3", "adapter"],
    "method.r": {"type": "categorical", "choices": [4, 8, 16], "if": {"method.name": ["lora", "dora"]}},
    "method.bottleneck_size": {"type": "categorical", "choices": [16, 64], "if": {"method.name": "adapter"}},
    "lr_peft": {**_PEFT_LR, "low": 1e-4, "high": 5e-3},
    "lr_ia3": {**_IA3_LR, "low": 1e-3, "high": 5e-2},
    "train.batch_size": [8, 16, 32],
    "train.scheduler.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}
# The same for a chat model: the PEFT methods that suit a decoder, in one epoch.
QUICKSTART_SFT_SPACE = {
    "method.name": ["lora", "dora", "ia3"],
    "method.r": {"type": "categorical", "choices": [8, 16, 32], "if": {"method.name": ["lora", "dora"]}},
    "lr_peft": {**_PEFT_LR, "low": 5e-4, "high": 1e-2, "if": {"method.name": ["lora", "dora"]}},
    "lr_ia3": {**_IA3_LR, "low": 3e-3, "high": 1e-1},
    "train.batch_size": [4, 8],
    "train.scheduler.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.1},
}


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="run the embedded default end to end", description=__doc__)
    parser.add_argument(
        "--task", choices=["classification", "sft"], default="classification", help="what the demo learns"
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (runs/quickstart[-sft])")
    parser.add_argument("--rows", type=int, default=None, help="rows of synthetic demo data (600; sft: 120)")
    parser.add_argument("--n-trials", type=int, default=None, help="trials of the search (8; sft: 6)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds after which no new trial starts (200; sft: 360)"
    )
    parser.add_argument("--model", default=None, help="the model to tune (minilm; sft: smollm2)")
    parser.add_argument(
        "--fresh", action="store_true", help="start the search over (needed when --rows changes on a re-run)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_lang_option(parser)


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_trial, print_tune_summary
    from open_autoglm.config import validate_config
    from open_autoglm.report import write_report
    from open_autoglm.run_folder import RunFolder, read_summary
    from open_autoglm.search.job import run_tune

    sft = args.task == "sft"
    out = args.out or Path("runs/quickstart-sft" if sft else "runs/quickstart")
    raw = _sft_config(args, out) if sft else _classification_config(args, out)
    config = validate_config(raw, source="quickstart")
    run_tune(config, on_trial=print_trial, fresh=args.fresh)
    folder = RunFolder(config.run_dir)
    summary = read_summary(folder.summary)
    print_tune_summary(summary)
    default, best = summary.sections["default"], summary.best
    split = "validation" if sft else "test"  # sft: its generation metrics are scored on validation rows
    names = ["perplexity", summary.metric or ""] if sft else [summary.metric or ""]
    for name in names:
        tuned = (best[split] or {}).get(name)
        untuned = (default["validation" if sft else "metrics"] or {}).get(name)
        if tuned is not None and untuned is not None:
            console.print(
                f"{split} {name}: {tuned:.4f} against {untuned:.4f} for the default configuration "
                f"({tuned - untuned:+.4f})"
            )
    console.print(f"best configuration: {best['config']}")
    console.print(f"report: {write_report(config.run_dir, args.lang)}")
    contents = f"{folder.summary.name}, {folder.report.name}, {folder.model.name}/, {folder.trials.name}/, "
    console.print(f"run folder: {config.run_dir} ({contents}{folder.study_db.name})")
    return 0


def _classification_config(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from open_autoglm.data.synthetic import write_topic_dataset

    rows = args.rows or 600
    source = write_topic_dataset(out / "source" / "topics.jsonl", n=rows, mixed=0.6, label_noise=0.05)
    console.print(f"demo data: {rows} synthetic headlines in 4 topics → {source}")
    return {
        "name": out.name,
        "output_dir": str(out.parent),
        "task": "classification",
        "model": {"name": args.model or "minilm"},
        "data": {"train": str(source), "max_length": 32, "val_ratio": 0.15, "test_ratio": 0.15},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05},
        "train": {"epochs": 3, "lr": 5e-5, "batch_size": 8, "logging_steps": 10},
        "search": {
            "n_trials": args.n_trials or 8,
            "timeout": args.timeout or 200,
            "startup_trials": 3,
            "space": QUICKSTART_SPACE,
        },
        "quiet": True,
    }


def _sft_config(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from open_autoglm.data.synthetic_instructions import write_instruction_dataset

    rows = args.rows or 120
    source = write_instruction_dataset(out / "source" / "instructions.jsonl", n=rows)
    console.print(f"demo data: {rows} synthetic instructions with one exact answer each → {source}")
    return {
        "name": out.name,
        "output_dir": str(out.parent),
        "task": "sft",
        "model": {"name": args.model or "smollm2"},
        "data": {
            "train": str(source),
            "max_length": 96,
            "val_ratio": 0.1,
            "test_ratio": 0.0,
            "dedup": {"near": False},  # "What is 7 plus 5?" and "... 7 plus 6?" are different questions
        },
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05},
        "train": {"epochs": 1, "lr": 5e-5, "batch_size": 8, "logging_steps": 5},
        "search": {
            "n_trials": args.n_trials or 6,
            "timeout": args.timeout or 360,
            "startup_trials": 3,
            "space": QUICKSTART_SFT_SPACE,
            "metric": "rouge_l",
        },
        "quiet": True,
    }
