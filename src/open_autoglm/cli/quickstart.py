"""`autoglm quickstart`: the embedded default end to end — a real search (method and hyperparameters, with
pruning) for minilm on a synthetic 4-topic headline set, against the untuned model and against the settings
most tutorials start from (LoRA r=8 with the Trainer's defaults: lr 5e-5, batch 8), in a few minutes on a
2-core CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from open_autoglm.cli.common import add_lang_option, console

# The default classification space without full fine-tuning, which takes minutes per trial on a CPU.
QUICKSTART_SPACE = {
    "method.name": ["lora", "dora", "ia3", "adapter"],
    "method.r": {"type": "categorical", "choices": [4, 8, 16], "if": {"method.name": ["lora", "dora"]}},
    "method.bottleneck_size": {"type": "categorical", "choices": [16, 64], "if": {"method.name": "adapter"}},
    "lr_peft": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-4,
        "high": 5e-3,
        "log": True,
        "if": {"method.name": ["lora", "dora", "adapter"]},
    },
    "lr_ia3": {
        "key": "train.lr",
        "type": "float",
        "low": 1e-3,
        "high": 5e-2,
        "log": True,
        "if": {"method.name": "ia3"},
    },
    "train.batch_size": [8, 16, 32],
    "train.scheduler.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="run the embedded default end to end", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    parser.add_argument("--rows", type=int, default=600, help="rows of synthetic demo data")
    parser.add_argument("--n-trials", type=int, default=8, help="trials of the search")
    parser.add_argument("--timeout", type=float, default=200, help="seconds after which no new trial starts")
    parser.add_argument(
        "--fresh", action="store_true", help="start the search over (needed when --rows changes on a re-run)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_lang_option(parser)


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_trial, print_tune_summary
    from open_autoglm.config import validate_config
    from open_autoglm.data.synthetic import write_topic_dataset
    from open_autoglm.report import write_report
    from open_autoglm.run_folder import RunFolder, read_summary
    from open_autoglm.search.job import run_tune

    source = write_topic_dataset(
        args.out / "source" / "topics.jsonl", n=args.rows, mixed=0.6, label_noise=0.05
    )
    console.print(f"demo data: {args.rows} synthetic headlines in 4 topics → {source}")
    config = validate_config(
        {
            "name": args.out.name,
            "output_dir": str(args.out.parent),
            "task": "classification",
            "model": {"name": "minilm"},
            "data": {"train": str(source), "max_length": 32, "val_ratio": 0.15, "test_ratio": 0.15},
            "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05},
            "train": {"epochs": 3, "lr": 5e-5, "batch_size": 8, "logging_steps": 10},
            "search": {
                "n_trials": args.n_trials,
                "timeout": args.timeout,
                "startup_trials": 3,
                "space": QUICKSTART_SPACE,
            },
            "quiet": True,
        },
        source="quickstart",
    )
    run_tune(config, on_trial=print_trial, fresh=args.fresh)
    folder = RunFolder(config.run_dir)
    summary = read_summary(folder.summary)
    print_tune_summary(summary)
    metric = summary.metric or ""
    best = (summary.test or {}).get(metric)
    default = (summary.sections["default"]["metrics"] or {}).get(metric)
    if best is not None and default is not None:
        console.print(
            f"best configuration: {summary.best['config']}\n"
            f"test {metric}: {best:.4f} against {default:.4f} for the default configuration "
            f"({100 * (best - default):+.1f} points)"
        )
    console.print(f"report: {write_report(config.run_dir, args.lang)}")
    contents = f"{folder.summary.name}, {folder.report.name}, {folder.model.name}/, {folder.trials.name}/, "
    console.print(f"run folder: {config.run_dir} ({contents}{folder.study_db.name})")
    return 0
