"""`autoglm quickstart`: the embedded default end to end — minilm + LoRA on a synthetic topic set, against the
untuned baseline, in a few minutes on a 2-core CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from open_autoglm.cli.common import console


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="run the embedded default end to end", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    parser.add_argument("--rows", type=int, default=800, help="rows of synthetic demo data")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_summary
    from open_autoglm.config import validate_config
    from open_autoglm.data.synthetic import write_topic_dataset
    from open_autoglm.train.job import run_train

    source = write_topic_dataset(args.out / "source" / "topics.jsonl", n=args.rows)
    console.print(f"demo data: {args.rows} synthetic headlines in 4 topics → {source}")
    config = validate_config(
        {
            "name": args.out.name,
            "output_dir": str(args.out.parent),
            "task": "classification",
            "model": {"name": "minilm"},
            "data": {"train": str(source), "max_length": 64, "val_ratio": 0.15, "test_ratio": 0.15},
            "method": {"name": "lora", "r": 8, "alpha": 16},
            "train": {"epochs": 3, "lr": 1e-3, "batch_size": 16, "scheduler": "linear", "logging_steps": 5},
            "quiet": args.quiet,
        },
        source="quickstart",
    )
    summary = run_train(config, resume=False)
    print_summary(summary, config.run_dir)
    console.print(f"run folder: {config.run_dir}")
    return 0
