"""`autoglm doctor [--json] [--runs-dir PATH]`: check the environment and say how to fix what is missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from open_autoglm.doctor import Check, run_checks

STYLES = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(
        name, help="check Python, PyTorch, GPUs, libraries, disk and write access", description=__doc__
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="where runs will be written, for the disk and write checks (default: ./runs)",
    )


def run(args: argparse.Namespace) -> int:
    """Exit code 1 when any check fails; warnings alone leave it 0."""
    checks = run_checks(args.runs_dir)
    ok = not any(check.status == "FAIL" for check in checks)
    if args.json:
        print(json.dumps({"checks": [check.to_dict() for check in checks], "ok": ok}, ensure_ascii=False))
    else:
        print_checks(checks, ok)
    return 0 if ok else 1


def print_checks(checks: list[Check], ok: bool) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in ("status", "check", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        # Text, not markup: details quote exceptions and pip specifiers, which may hold [brackets].
        table.add_row(
            Text(check.status, STYLES[check.status]), Text(check.name), Text(check.detail), Text(check.fix)
        )
    console = Console()  # stdout: the report is the verb's output
    console.print(table)
    failed = sum(check.status == "FAIL" for check in checks)
    warned = sum(check.status == "WARN" for check in checks)
    if ok:
        console.print(f"[green]ready[/]: no failures, {warned} warning(s)")
    else:
        console.print(f"[bold red]not ready[/]: {failed} failure(s), {warned} warning(s); see the fix column")
