"""`autoglm export -c CFG --model PATH [--merge] [--onnx] [--quantize dynamic|static] [--prune]`: merge an
adapter, export to ONNX, quantize to INT8, prune heads and FFN neurons, and compare the variants (size, latency,
quality) in <run>/export/export_report.json.

With none of --merge/--onnx/--quantize/--prune, everything is made. The merged model is always written (every other
variant is made from it); --merge alone stops there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from open_autoglm.cli.common import add_config_options, config_from_args, console, one_model_config
from open_autoglm.run_folder import MODEL_META


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(
        name, help="merge, quantize and export a model; compare the variants", description=__doc__
    )
    add_config_options(parser)
    parser.add_argument("--model", type=Path, required=True, help="a model folder written by train or tune")
    parser.add_argument(
        "--merge", action="store_true", help="merge an adapter into its base (export/merged/)"
    )
    parser.add_argument("--onnx", action="store_true", help="export to ONNX (export/model.onnx)")
    parser.add_argument(
        "--quantize",
        action="append",
        choices=("dynamic", "static"),
        default=[],
        help="INT8: dynamic (PyTorch, and ONNX with --onnx) or static (ONNX, calibrated); repeatable",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="prune attention heads and FFN neurons (export.prune.*), fine-tune to recover (export/pruned/); "
        "with --onnx --quantize dynamic also as INT8 ONNX",
    )
    parser.add_argument("--latency-rows", type=int, default=50, help="texts timed one at a time (default 50)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped with the model folder (same as model.trust_remote_code: true); a "
        f"folder's own {MODEL_META} cannot turn this on",
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.export.job import ExportOptions, run_export
    from open_autoglm.run_folder import RunFolder

    if args.trust_remote_code:  # the operator's decision, never the model folder's
        args.overrides.append("model.trust_remote_code=true")
    config = one_model_config(config_from_args(args), "export")
    everything = not (args.merge or args.onnx or args.quantize or args.prune)
    options = ExportOptions(
        model=args.model,
        onnx=everything or args.onnx,
        quantize=("dynamic", "static") if everything else tuple(dict.fromkeys(args.quantize)),
        latency_rows=args.latency_rows,
        prune=everything or args.prune,
    )
    report = run_export(config, options)
    _print_report(report)
    console.print(f"results: {RunFolder(config.run_dir).export_report}")
    return 0


def _print_report(report: dict[str, Any]) -> None:
    if "metric" not in report:  # a language model: the merged model, and its GGUF files where written
        console.print(
            f"merged into {report['merged']} ({report['size_mb']:.1f} MB; largest logit difference against "
            f"base + adapter {report['merge_max_abs_diff']:.1e})"
        )
        if report["variants"]:
            table = Table(title="export variants (causal LM)")
            for column in ("variant", "MB", "tokens/s", "perplexity"):
                table.add_column(column, justify="left" if column == "variant" else "right")
            for row in report["variants"]:
                table.add_row(
                    row["name"],
                    f"{row['size_mb']:.1f}",
                    f"{row['generation_tokens_per_s']:.1f}",
                    f"{row['perplexity']:.3f}",
                )
            console.print(table)
        return
    metric = report["metric"]
    table = Table(title=f"export variants ({metric}; tolerance {report['tolerance']:g})")
    for column in ("variant", "MB", "p50 b1 ms", "p95 b1 ms", "p50 b32 ms", "rows/s", metric, "drop", ""):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in report["variants"]:
        flag = "[red]breaks the tolerance[/]" if not row["within_tolerance"] else ""
        name = f"[bold]{row['name']}[/]" if row["name"] == report["best"] else row["name"]
        table.add_row(
            name,
            f"{row['size_mb']:.2f}",
            f"{row['latency_ms_p50_b1']:.2f}",
            f"{row['latency_ms_p95_b1']:.2f}",
            f"{row['latency_ms_p50_b32']:.2f}",
            f"{row['throughput_per_s']:.0f}",
            f"{row[metric]:.4f}",
            f"{row['quality_drop']:+.4f}",
            flag,
        )
    console.print(table)
    console.print(f"best (fastest at batch 1 within the tolerance): {report['best'] or 'none'}")
    if pruning := report.get("pruning"):
        recovery = pruning["recovery"]
        console.print(
            f"pruned at sparsity {pruning['sparsity']:g}: heads {pruning['heads_kept']}/{pruning['heads_total']}, "
            f"FFN neurons {pruning['ffn_neurons_kept']}/{pruning['ffn_neurons_total']}, "
            f"parameters {pruning['parameters_after']:,}/{pruning['parameters_before']:,}; "
            f"recovery {recovery['epochs']:g} epochs at lr {recovery['lr']:g} ({recovery['steps']} steps)"
        )
