"""`autoglm dashboard`: optuna-dashboard serves the run's study on 127.0.0.1, read-only and for its own Host names
unless told otherwise; a run without a study is refused."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from open_autoglm.cli import dashboard as dashboard_cli
from open_autoglm.report import dashboard as report_dashboard
from open_autoglm.report.dashboard import (
    allowed_hosts,
    exposure_warning,
    make_dashboard_server,
    serve_dashboard,
)

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


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, Path]]:
    """A guarded dashboard bound to a free loopback port, in this process; (port, run_dir)."""
    run_dir = run_folder(tmp_path, with_study=True)
    allow_write = getattr(request, "param", False)
    server = make_dashboard_server(run_dir, "127.0.0.1", 0, allow_write=allow_write)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], run_dir
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def call(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request to 127.0.0.1:port whose Host (and other headers) are as given, not as the URL says."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        for name, value in {"Host": f"localhost:{port}", **(headers or {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def study_names(run_dir: Path) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{run_dir / 'study.db'}")]


def test_the_dashboard_refuses_writes_by_default(served: tuple[int, Path]) -> None:
    port, run_dir = served
    status, body = call(port, "DELETE", "/api/studies/1")
    assert status == 405 and b"--allow-write" in body
    for method in ("POST", "PUT", "PATCH"):
        assert call(port, method, "/api/studies/1/note")[0] == 405
    assert study_names(run_dir) == ["demo"]  # the unauthenticated DELETE deleted it before
    assert call(port, "GET", "/api/studies")[0] == 200
    assert call(port, "HEAD", "/api/studies")[0] == 200


def test_the_dashboard_answers_only_its_own_host_names(served: tuple[int, Path]) -> None:
    port, _ = served
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert call(port, "GET", "/api/studies", {"Host": host})[0] == 200, host
    # a DNS-rebinding page reaches 127.0.0.1 under its own name, and the browser sends that name as Host
    for host in (f"attacker.example:{port}", "127.0.0.1.attacker.example", "[::1", ""):
        status, body = call(port, "GET", "/api/studies", {"Host": host})
        assert status == 400 and b"not this dashboard's" in body, host


@pytest.mark.parametrize("served", [True], indirect=True)
def test_allow_write_lets_this_machine_change_the_study_but_not_another_site(
    served: tuple[int, Path],
) -> None:
    port, run_dir = served
    status, body = call(port, "DELETE", "/api/studies/1", {"Origin": "http://attacker.example"})
    assert status == 403 and b"attacker.example" in body
    assert study_names(run_dir) == ["demo"]
    assert call(port, "DELETE", "/api/studies/1", {"Origin": f"http://localhost:{port}"})[0] in (200, 204)
    assert study_names(run_dir) == []


def test_hosts_beyond_loopback_are_allowed_by_name_and_warned_about() -> None:
    assert allowed_hosts("10.1.2.3", ["gpu-box.lan"]) == {
        "localhost",
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "gpu-box.lan",
    }
    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")
    assert exposure_warning("127.0.0.1", allow_write=False) is None
    assert exposure_warning("::1", allow_write=True) is None
    warning = exposure_warning("0.0.0.0", allow_write=True)
    assert warning is not None and "no login" in warning and "change" in warning


def test_serving_beyond_loopback_logs_the_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = run_folder(tmp_path, with_study=True)

    class Stop(Exception):
        pass

    def refuse_to_serve(*args: object, **kwargs: object) -> None:
        raise Stop

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Stop):
        patch.setattr(report_dashboard, "make_dashboard_server", refuse_to_serve)
        serve_dashboard(run_dir, "0.0.0.0", 0)
    assert any(r.levelname == "WARNING" and "no login" in r.getMessage() for r in caplog.records)


def test_the_command_is_read_only_unless_asked_and_checks_the_port() -> None:
    args = parse(["runs/demo"])
    assert (args.allow_write, args.extra_hosts) == (False, [])
    args = parse(["runs/demo", "--allow-write", "--allow-host", "box.lan", "--allow-host", "10.0.0.2"])
    assert (args.allow_write, args.extra_hosts) == (True, ["box.lan", "10.0.0.2"])
    with pytest.raises(SystemExit):
        parse(["runs/demo", "--port", "99999"])
