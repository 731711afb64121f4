"""`autoglm dashboard`: optuna-dashboard serves the run's study on 127.0.0.1; a run without a study is refused."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest

from open_autoglm.cli import dashboard as dashboard_cli

STARTUP_SECONDS = 60


def run_folder(root: Path, with_study: bool) -> Path:
    run_dir = root / "demo"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: demo\nsearch:\n  storage: null\n", encoding="utf-8")
    if with_study:
        study = optuna.create_study(study_name="demo", storage=f"sqlite:///{run_dir / 'study.db'}")
        study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
    return run_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_the_dashboard_serves_the_study_of_the_run(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path, with_study=True)
    port = free_port()
    code = f"from open_autoglm.report import serve_dashboard; serve_dashboard({str(run_dir)!r}, '127.0.0.1', {port})"
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                listing = get_json(f"http://127.0.0.1:{port}/api/studies")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.communicate()[0].decode(errors="replace")
                assert time.monotonic() < deadline, f"no answer on port {port} after {STARTUP_SECONDS} s"
                time.sleep(0.3)
        studies = {s["study_name"]: s for s in listing["study_summaries"]}
        assert "demo" in studies
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{studies['demo']['study_id']}")
        assert len(detail["trials"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=10)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dashboard_cli.add_parser(parser.add_subparsers(dest="verb"), "dashboard")
    return parser.parse_args(["dashboard", *argv])


def test_the_command_binds_to_this_machine_by_default() -> None:
    args = parse(["runs/demo"])
    assert (args.host, args.port, args.run_dir) == ("127.0.0.1", 8080, Path("runs/demo"))


def test_a_run_without_a_study_gets_a_clear_error(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path, with_study=False)
    with pytest.raises(FileNotFoundError, match="has no study .*`autoglm tune` makes one"):
        dashboard_cli.run(parse([str(run_dir), "--port", str(free_port())]))
    assert not (run_dir / "study.db").exists()  # looking did not create one
