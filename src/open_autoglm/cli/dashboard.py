"""`autoglm dashboard RUN_DIR [--host 127.0.0.1] [--port 8080]`: the live view of a search (optuna-dashboard)."""

from __future__ import annotations

import argparse
from pathlib import Path

from open_autoglm.cli.common import console


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="serve the live dashboard of a search", description=__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder of `autoglm tune`")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")


def run(args: argparse.Namespace) -> int:
    from open_autoglm.report.dashboard import dashboard_storage, serve_dashboard

    dashboard_storage(args.run_dir)  # fail before printing a URL that will not answer
    console.print(f"dashboard: http://{args.host}:{args.port}  (Ctrl-C stops it)")
    serve_dashboard(args.run_dir, args.host, args.port)
    return 0
