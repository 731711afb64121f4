"""Bad input on the command line (issue 13, defect 18): one clear line naming the file, and an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from open_autoglm.cli import main


def unwrapped(text: str) -> str:
    """The text without white space: rich wraps (and folds) long lines at the console's width."""
    return "".join(text.split())


def test_a_missing_file_whose_name_looks_like_markup_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[/y]` is rich markup: the error printer crashed on it instead of naming the file."""
    missing = tmp_path / "x[" / "y].jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"name": "p", "output_dir": str(tmp_path / "runs"), "data": {"train": str(missing)}})
    )
    assert main(["data", "prepare", "-c", str(config), "-q"]) == 1  # tmp_path has no white space
    assert str(missing) in unwrapped(capsys.readouterr().err)


def test_a_binary_config_is_a_config_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(bytes(range(256)))
    assert main(["data", "prepare", "-c", str(config), "-q"]) == 2
    assert f"configerror:{config}:notaYAMLtextfile" in unwrapped(capsys.readouterr().err)
