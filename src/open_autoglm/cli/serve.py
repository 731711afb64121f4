"""`autoglm serve --model PATH [--host 127.0.0.1] [--port 8000] [--api-key KEY]`: an OpenAI-compatible HTTP
API over a model folder or an exported ONNX classifier (/v1/completions and /v1/chat/completions for causal
models, /v1/classify for classifiers, /health, /metrics). Loopback only by default; the API key may also come from AUTOGLM_API_KEY."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from open_autoglm.cli.common import console

API_KEY_ENV = "AUTOGLM_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"require this bearer key (default: ${API_KEY_ENV})",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument(
        "--max-tokens", type=int, default=512, help="the most new tokens one request may ask for"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from open_autoglm.serve import ServeLimits, build_app

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    app = build_app(
        args.model, api_key=args.api_key, limits=ServeLimits(max_tokens=args.max_tokens), device=device
    )
    if args.host not in LOOPBACK and not args.api_key:
        console.print(
            f"[bold yellow]warning:[/] listening on {args.host} without an API key", highlight=False
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    console.print(f"serving {app.state.served.name} at http://{host}:{args.port}/v1", highlight=False)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0
