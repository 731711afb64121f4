"""The `autoglm` command: a tiny entry point; one module per verb, each with its own --help."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from open_autoglm import __version__
from open_autoglm.cli import (
    dashboard,
    data,
    distill,
    doctor,
    evaluate,
    export,
    quickstart,
    report,
    serve,
    train,
    tune,
)
from open_autoglm.cli.common import run_verb

VERBS = {
    "data": data,
    "train": train,
    "tune": tune,
    "eval": evaluate,
    "export": export,
    "distill": distill,
    "serve": serve,
    "report": report,
    "dashboard": dashboard,
    "doctor": doctor,
    "quickstart": quickstart,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoglm", description="Open-AutoGLM: automatic fine-tuning for language models."
    )
    parser.add_argument("--version", action="version", version=f"open-autoglm {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, module in VERBS.items():
        module.add_parser(verbs, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "doctor":  # it must still run when a library the other verbs import is broken
        return doctor.run(args)
    return run_verb(VERBS[args.verb].run, args)


if __name__ == "__main__":
    sys.exit(main())
