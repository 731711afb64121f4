"""`autoglm report RUN_DIR [--lang en|zh]`: the run's self-contained HTML report, written to RUN_DIR/report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from open_autoglm.cli.common import console

LANGUAGES = ("en", "zh")  # open_autoglm.report.labels.LANGUAGES, without importing plotly for --help


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="write the run's HTML report", description=__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder (runs/<name>)")
    parser.add_argument(
        "--lang", choices=LANGUAGES, default="en", help="language of the report (default: en)"
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.report import write_report

    path = write_report(args.run_dir, args.lang)
    console.print(f"report: {path}")
    return 0
