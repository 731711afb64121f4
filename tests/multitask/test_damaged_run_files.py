"""Files a multitask or transfer run reads back on resume or load: a torn or other-version file is named, with
what is wrong and the way out, instead of a KeyError or a bare JSON error."""

from __future__ import annotations

from pathlib import Path

import pytest

from open_autoglm.multitask.model import load_multitask
from open_autoglm.transfer.job import _step


def test_a_torn_step_record_is_named_not_trusted(tmp_path: Path) -> None:
    step_dir = tmp_path / "pretrain"
    step_dir.mkdir()
    (step_dir / "step.json").write_text('{"metrics": {"accuracy": 0.', encoding="utf-8")
    with pytest.raises(ValueError, match=r"step\.json: not a step record .*delete it"):
        _step(step_dir, True, lambda d: {"never": "run"})
    (step_dir / "step.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"step\.json: not a step record \(a JSON list, not an object\)"):
        _step(step_dir, True, lambda d: {"never": "run"})


def test_an_other_version_multitask_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "multitask.json").write_text('{"tasks": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"multitask\.json: no backbone, heads_file"):
        load_multitask(tmp_path)
    (tmp_path / "multitask.json").write_text('{"tasks": [', encoding="utf-8")
    with pytest.raises(ValueError, match=r"multitask\.json: not .*\(not valid JSON"):
        load_multitask(tmp_path)
