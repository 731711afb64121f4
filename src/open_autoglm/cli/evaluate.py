"""`autoglm eval -c CFG --model PATH [--baseline SUMMARY.json] [--fail-on-regression]`: score a trained model
on the test split (or --data FILE) against the pretrained model and an earlier run; eval.json in the run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from open_autoglm.cli.common import add_config_options, config_from_args, console, one_model_config
from open_autoglm.run_folder import MODEL_META, SUMMARY


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="evaluate a trained model; gate on regressions", description=__doc__)
    add_config_options(parser)
    parser.add_argument("--model", type=Path, required=True, help="a model folder written by train or tune")
    parser.add_argument("--data", type=Path, help="evaluate this file instead of the run's test split")
    parser.add_argument("--baseline", type=Path, help=f"an earlier run's {SUMMARY} to compare with")
    parser.add_argument(
        "--no-pretrained", action="store_true", help="do not score the untuned base model as a baseline"
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit with code 3 when a gated metric is worse than a baseline by more than the tolerance",
    )
    parser.add_argument(
        "--gate-metric",
        dest="gate_metrics",
        action="append",
        default=[],
        metavar="NAME",
        help="a metric the gate checks (repeatable; default: the task's primary metric)",
    )
    parser.add_argument("--tolerance", type=float, default=0.01, help="allowed drop (default 0.01)")
    parser.add_argument(
        "--relative", action="store_true", help="the tolerance is a share of the baseline value (0.05 = 5%%)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="evaluation batch size (default: train.eval_batch_size)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generation: reply length cap")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped with the model folder (same as model.trust_remote_code: true); a "
        f"folder's own {MODEL_META} cannot turn this on",
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.cli.show import print_eval
    from open_autoglm.evaluate.job import EvalOptions, run_eval
    from open_autoglm.run_folder import RunFolder

    if args.trust_remote_code:  # the operator's decision, never the model folder's
        args.overrides.append("model.trust_remote_code=true")
    config = one_model_config(config_from_args(args), "eval")
    if args.tolerance < 0:
        raise ValueError(f"--tolerance must be >= 0, got {args.tolerance}")
    options = EvalOptions(
        model=args.model,
        data=args.data,
        baseline_summary=args.baseline,
        pretrained=not args.no_pretrained,
        gate_metrics=tuple(args.gate_metrics),
        tolerance=args.tolerance,
        relative=args.relative,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
    )
    result = run_eval(config, options)
    print_eval(result)
    console.print(f"results: {RunFolder(config.run_dir).eval}")
    if args.fail_on_regression and not result["passed"]:
        return 3
    return 0
