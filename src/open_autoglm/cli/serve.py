"""`autoglm serve --model PATH [--host 127.0.0.1] [--port 8000] [--api-key KEY]`: an OpenAI-compatible HTTP
API over a model folder or an exported ONNX classifier (/v1/completions and /v1/chat/completions for causal
models, /v1/classify for classifiers, /health, /metrics). Loopback only by default; the API key may also come from
AUTOGLM_API_KEY. A model folder's own code runs only with --trust-remote-code."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from open_autoglm.cli.common import console

API_KEY_ENV = "AUTOGLM_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535 (0 would bind a random port that the printed URL cannot name)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to 65535)")
    return port


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(
        name, help="serve a model over an OpenAI-compatible HTTP API", description=__doc__
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a model folder written by train, tune or export (merged/), or an export's .onnx file (e.g. INT8)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=_port, default=8000, help="port to bind, 1 to 65535 (default: 8000)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"require this bearer key (default: ${API_KEY_ENV}); an empty key is refused",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument(
        "--max-tokens", type=_at_least(1), default=512, help="the most new tokens one request may ask for"
    )
    parser.add_argument(
        "--max-active",
        type=_at_least(1),
        default=32,
        help="requests doing model work at once, streams included (default: 32)",
    )
    parser.add_argument(
        "--max-queued",
        type=_at_least(0),
        default=128,
        help="requests waiting for a turn; beyond it the answer is 503 with Retry-After (default: 128)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model folder's own Python code (modeling_*.py); off unless given, whatever the folder says",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def check_address(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (an unknown host, an address in use), or None. Checked before
    the model loads, so that a typo costs a second and one clear line, not a traceback after the load."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        return f"--host {host}: not an address this machine can listen on ({err})"
    family, _, _, _, address = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as err:
        return f"cannot listen on {host} port {port}: {err.strerror or err}"
    return None


def run(args: argparse.Namespace) -> int:
    if args.api_key is not None and not args.api_key.strip():
        console.print(
            f"[bold red]error:[/] the API key (--api-key or ${API_KEY_ENV}) is empty: it would let in anyone who "
            f"sends an empty bearer token; give a key, or neither to serve without one",
            highlight=False,
        )
        return 2
    problem = check_address(args.host, args.port)
    if problem:
        console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
        return 2

    import torch
    import uvicorn

    from open_autoglm.serve import ServeLimits, build_app

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    limits = ServeLimits(max_tokens=args.max_tokens, max_active=args.max_active, max_queued=args.max_queued)
    app = build_app(
        args.model,
        api_key=args.api_key,
        limits=limits,
        device=device,
        trust_remote_code=args.trust_remote_code,
    )
    if args.host not in LOOPBACK and not args.api_key:
        console.print(
            f"[bold yellow]warning:[/] listening on {args.host} without an API key", highlight=False
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    console.print(f"serving {app.state.served.name} at http://{host}:{args.port}/v1", highlight=False)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0
