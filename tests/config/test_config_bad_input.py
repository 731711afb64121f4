"""Bad config input (issue 13, defect 18): every mistake is a ConfigError naming the file or the key, up front."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from open_autoglm.cli.registered import require_registered
from open_autoglm.config import ConfigError, dump_config, load_config


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes(range(256)), "byte 0x80 at offset 128 is not UTF-8"),  # a binary file
        ("name: café\n".encode("latin-1"), "byte 0xe9 at offset 9 is not UTF-8"),
        (b"name: demo\ntrain:\n  lr: \x00\n", ":3: not valid YAML (special characters are not allowed)"),
        (b"- a\n- b\n", "the top level must be a mapping of sections"),
        (b"[" * 5000, "nested too deeply"),
    ],
    ids=["binary", "latin-1", "nul", "list", "deep"],
)
def test_an_unreadable_config_file_is_named(tmp_path: Path, data: bytes, expected: str) -> None:
    path = write_bytes(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_folder_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(tmp_path)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_config(write_bytes(tmp_path, b"\xef\xbb\xbfname: demo\n")).name == "demo"


@pytest.mark.parametrize(
    "override",
    [
        "train.batch_size=true",  # was read as batch size 1
        "train.lr=true",
        "train.epochs=false",
        "train.eval_every=true",
        "data.max_rows=true",
        "train.optimizer.betas=[true, 0.9]",
        "train.loss.class_weights=[1.0, true]",
        "search.weights={quality: true}",
    ],
)
def test_a_boolean_is_never_read_as_a_number(override: str) -> None:
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"{key}: a number is wanted here, not a boolean"):
        load_config(None, [override])


def test_a_method_param_refuses_a_boolean_for_a_number() -> None:
    with pytest.raises(ConfigError, match=r"method\.r: a number is wanted here, not a boolean"):
        require_registered(load_config(None, ["method.name=lora", "method.r=true"]))


def test_booleans_still_go_where_they_belong() -> None:
    config = load_config(
        None,
        [
            "quiet=true",
            "model.trust_remote_code=true",
            "train.gradient_checkpointing=true",
            "search.space={use_bias: {type: categorical, choices: [true, false]}}",
            "train.lr=3e-4",  # a YAML 1.1 string: numbers from --set still parse
            "train.optimizer.betas=[0.8, 0.99]",
        ],
    )
    assert config.quiet and config.model.trust_remote_code and config.train.lr == 3e-4


@pytest.mark.parametrize(("key", "value"), [("train.seed", -1), ("search.seed", -1), ("train.seed", 2**32)])
def test_a_seed_out_of_range_is_refused_up_front(key: str, value: int) -> None:
    """scikit-learn refused train.seed=-1 only when splitting the data, with no key named."""
    with pytest.raises(ConfigError, match=rf"{key}: Input should be"):
        load_config(None, [f"{key}={value}"])
    assert load_config(None, [f"{key}={2**32 - 1}"]) is not None


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_infinity_and_nan_are_not_numbers_of_a_config(value: str) -> None:
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, [f"train.epochs={value}"])


def test_the_resolved_config_is_saved_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write (disk full) leaves the earlier config.yaml whole, and no temporary file behind."""
    path = tmp_path / "config.yaml"
    dump_config(load_config(None, ["name=first"]), path)
    before = path.read_text(encoding="utf-8")

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(OSError, match="config.yaml"):
        dump_config(load_config(None, ["name=second"]), path)
    assert path.read_text(encoding="utf-8") == before
    assert yaml.safe_load(before)["name"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.clean.extra=[html]", r"data\.clean\.extra: html built in \(switched by data\.clean\.<name>\)"),
        ("train.metrics=[f1_macro]", r"train\.metrics: f1_macro built in \(always reported\)"),
    ],
)
def test_a_built_in_named_as_a_plugin_is_refused(override: str, message: str) -> None:
    """It would run twice, or out of its place among the built-ins: the error says where it is switched."""
    with pytest.raises(ConfigError, match=message):
        require_registered(load_config(None, [override]))
