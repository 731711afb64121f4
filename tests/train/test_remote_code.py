"""A model folder never runs its own code because its autoglm.json says so: only the operator's flag or config
does (load_finetuned, eval, export, distill). A damaged or other-version autoglm.json is named with what is wrong."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml

from open_autoglm.cli import main
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.models.loading import (
    AUTOGLM_META,
    ModelFolderError,
    load_finetuned,
    read_meta,
    saved_model_config,
)

_SERIAL = (
    itertools.count()
)  # each folder gets its own model type: transformers registers remote classes globally


def _planted_folder(root: Path, encoder: Path) -> tuple[Path, Path]:
    """A fine-tuned classifier folder whose config.json points at its own modeling code, which writes a marker
    file when imported, and whose autoglm.json says trust_remote_code: true. Returns (folder, marker)."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    # a name of its own: transformers copies the code to a cache folder named after the model folder
    model_type = f"planted-bert-{next(_SERIAL)}-{abs(hash(str(root)))}"
    folder, marker = root / model_type, root / "code-ran.txt"
    labels = sorted({r["label"] for r in make_topic_rows(16, seed=0)})
    model = BertForSequenceClassification.from_pretrained(
        str(encoder), num_labels=len(labels), id2label=dict(enumerate(labels))
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(encoder)).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "configuration_planted.PlantedConfig",
        "AutoModelForSequenceClassification": "modeling_planted.PlantedModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    side_effect = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (folder / "configuration_planted.py").write_text(
        side_effect + "from transformers import BertConfig\n\n"
        f"class PlantedConfig(BertConfig):\n    model_type = {model_type!r}\n"
    )
    (folder / "modeling_planted.py").write_text(
        side_effect + "from transformers import BertForSequenceClassification\n"
        "from .configuration_planted import PlantedConfig\n\n"
        "class PlantedModel(BertForSequenceClassification):\n    config_class = PlantedConfig\n"
    )
    meta = {
        "task": "classification",
        "objective": "seq_cls",
        "method": "full",
        "base_model": str(encoder),
        "labels": labels,
        "text_prefix": "",
        "max_length": 16,
        "model": {"name": str(encoder), "trust_remote_code": True},
    }
    (folder / AUTOGLM_META).write_text(json.dumps(meta))
    return folder, marker


def test_load_finetuned_runs_a_folders_code_only_when_the_caller_asks(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    folder, marker = _planted_folder(tmp_path, tiny_encoder)
    with pytest.raises(ValueError, match="custom code"):
        load_finetuned(folder)
    assert not marker.exists(), "the folder's own autoglm.json turned remote code on"

    model, _, meta = load_finetuned(folder, trust_remote_code=True)
    assert marker.exists() and type(model).__name__ == "PlantedModel"
    assert meta["model"]["trust_remote_code"] is True  # what it was loaded with, for whatever loads it next


def _verb_config(tmp_path: Path, encoder: Path) -> Path:
    data = tmp_path / "topics.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(120, seed=3)))
    config = {
        "name": "run",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(encoder)},
        "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.2},
        "method": {"name": "lora"},
        "train": {"max_steps": 2, "batch_size": 8},
        "quiet": True,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("verb", "extra"),
    [
        ("eval", ["--no-pretrained", "--model"]),
        ("export", ["--merge", "--model"]),
        ("distill", ["--teacher"]),
    ],
)
def test_eval_export_and_distill_run_a_folders_code_only_with_the_flag(
    verb: str, extra: list[str], tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, marker = _planted_folder(tmp_path, tiny_encoder)
    command = [verb, "-c", str(_verb_config(tmp_path, tiny_encoder)), *extra, str(folder)]
    assert main(command) == 1
    assert "custom code" in capsys.readouterr().err
    assert not marker.exists(), f"autoglm {verb} ran the folder's code without --trust-remote-code"

    assert main([*command, "--trust-remote-code"]) == 0
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"task": "classification", "objective": "seq', "not valid JSON at line 1"),  # cut short by a kill
        ('{"task": "classification"}', "missing key 'objective'"),  # another version's layout
        ('["seq_cls"]', "a JSON list, not an object"),
        ('{"task": "classification", "objective": "seq2seq"}', "objective 'seq2seq'"),
        ('{"task": "classification", "objective": "seq_cls", "model": "minilm"}', "'model' must be"),
        (b'{"task": "\xff"}', "not UTF-8"),
    ],
)
def test_a_damaged_autoglm_json_is_named_with_what_is_wrong(
    content: str | bytes, expected: str, tmp_path: Path
) -> None:
    meta_file = tmp_path / AUTOGLM_META
    meta_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ModelFolderError) as err:
        load_finetuned(tmp_path)
    assert str(meta_file) in str(err.value) and expected in str(err.value)


def test_model_keys_of_another_version_are_dropped_and_bad_values_named(tmp_path: Path) -> None:
    meta = {"model": {"name": "minilm", "trust_remote_code": True, "from_the_future": 1}}
    loaded = saved_model_config(meta, tmp_path, trust_remote_code=False)
    assert loaded.name == "minilm" and loaded.trust_remote_code is False
    with pytest.raises(ModelFolderError, match=r"model\.device"):
        saved_model_config({"model": {"device": "tpu9"}}, tmp_path, trust_remote_code=False)
    with pytest.raises(FileNotFoundError, match="no autoglm.json"):
        read_meta(tmp_path / "missing")


def test_eval_names_a_truncated_autoglm_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / AUTOGLM_META).write_text('{"task": "classification", "objective": ')
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "runs"), "quiet": True}))
    assert main(["eval", "-c", str(config), "--model", str(tmp_path / "model")]) == 1
    err = capsys.readouterr().err.replace("\n", "")
    assert str(tmp_path / "model" / AUTOGLM_META) in err and "not valid JSON at line 1" in err
