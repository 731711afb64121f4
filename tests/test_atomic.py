"""The atomic writer: a failed write leaves the earlier file whole and names the file."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from open_autoglm.atomic import ArtifactWriteError, atomic_open, write_json, write_text


def test_a_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "summary.json"
    write_json(target, {"a": 1, "名": "值"})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_an_exception_midway_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed halfway")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_a_file_size_limit_raises_an_error_naming_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_text(target, "complete report\n")
    script = (
        "import sys\n"
        "from open_autoglm.atomic import write_text, signal_file_size_exceeded_as_error, ArtifactWriteError\n"
        "signal_file_size_exceeded_as_error()\n"
        "try:\n"
        f"    write_text({str(target)!r}, 'x' * 1_000_000)\n"
        "except ArtifactWriteError as err:\n"
        "    print(err); sys.exit(3)\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))

    done = subprocess.run(
        [sys.executable, "-c", script], preexec_fn=limit, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert str(target) in done.stdout
    assert target.read_text(encoding="utf-8") == "complete report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_only_whole_file_modes_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass
    assert issubclass(ArtifactWriteError, OSError)


def test_an_artifact_gets_the_permissions_a_plain_write_would_give(tmp_path: Path) -> None:
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    write_text(atomic, "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
