"""`autoglm dashboard RUN_DIR [--host 127.0.0.1] [--port 8080] [--allow-write] [--allow-host NAME]`: the live
view of a search (optuna-dashboard), read-only unless --allow-write."""

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
    parser.add_argument("--port", type=_port, default=8080, help="port (default: 8080)")
    parser.add_argument(
        "--allow-write",
        action="store_true",
        help="let the page change the study (delete, rename, notes, tell trials); read-only by default",
    )
    parser.add_argument(
        "--allow-host",
        dest="extra_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="a further name or address the browser may use to reach the dashboard (repeatable); "
        "the loopback names and --host always work",
    )


def run(args: argparse.Namespace) -> int:
    from open_autoglm.report.dashboard import dashboard_storage, serve_dashboard

    dashboard_storage(args.run_dir)  # fail before printing a URL that will not answer
    mode = "read-write" if args.allow_write else "read-only"
    console.print(f"dashboard ({mode}): http://{_url_host(args.host)}:{args.port}  (Ctrl-C stops it)")
    serve_dashboard(
        args.run_dir, args.host, args.port, allow_write=args.allow_write, extra_hosts=args.extra_hosts
    )
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
