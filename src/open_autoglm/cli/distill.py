"""`autoglm distill -c CFG --teacher PATH [--student-layers N]`: train a smaller student with the teacher's soft
targets (distill.alpha, distill.temperature), then compare student and teacher on the test split: quality,
parameters, size and batch-1 latency (<run>/distill_report.json)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from open_autoglm.cli.common import add_config_options, config_from_args, console, one_model_config
from open_autoglm.run_folder import MODEL_META


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(
        name, help="distil a teacher into a smaller student; compare the two", description=__doc__
    )
    add_config_options(parser)
    parser.add_argument(
        "--teacher", type=Path, help="a model folder written by train or tune (default: distill.teacher)"
    )
    parser.add_argument(
        "--student-layers",
        type=int,
        metavar="N",
        help="the student is N evenly spaced layers of the teacher (default: model.name is the student)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped with the model folder (same as model.trust_remote_code: true); a "
        f"folder's own {MODEL_META} cannot turn this on",
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.distill.job import run_distill
    from open_autoglm.run_folder import RunFolder

    if args.student_layers is not None:
        args.overrides.append(f"distill.student_layers={args.student_layers}")
    if args.trust_remote_code:  # the operator's decision, never the model folder's
        args.overrides.append("model.trust_remote_code=true")
    config = one_model_config(config_from_args(args), "distill")
    report = run_distill(config, args.teacher)
    _print_report(report)
    console.print(f"results: {RunFolder(config.run_dir).distill_report}")
    return 0


def _print_report(report: dict[str, Any]) -> None:
    metric = report["metric"]
    table = Table(title=f"teacher vs student ({report['rows']} test rows)")
    for column in ("model", metric, "parameters", "MB", "p50 b1 ms"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in report["models"]:
        table.add_row(
            row["name"],
            f"{row['metrics'][metric]:.4f}",
            f"{row['parameters']:,}",
            f"{row['size_mb']:.2f}",
            f"{row['latency_ms_p50']:.2f}",
        )
    console.print(table)
    versus = report["student_vs_teacher"]
    console.print(
        f"student: {metric} {versus['quality_delta']:+.4f}, {versus['parameter_ratio']:.0%} of the parameters, "
        f"{versus['speedup']:.1f}x as fast at batch 1"
    )
