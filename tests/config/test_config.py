"""Config: validation up front with messages that name the key, --set precedence, every shipped example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from open_autoglm.cli.registered import require_registered
from open_autoglm.config import Config, ConfigError, dump_config, load_config, validate_config
from open_autoglm.methods.params import method_params

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid() -> None:
    config = load_config(None)
    assert config.model.name == "minilm"
    assert config.method.name == "lora"
    assert config.model.trust_remote_code is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    config = load_config(path)
    assert method_params(config.method) is not None


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 4


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "train:\n  lrr: 0.1\n"))
    message = str(err.value)
    assert "train.lrr: unknown key" in message
    assert "did you mean 'lr'" in message


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "train:\n  batch_size: many\n"))
    assert "train.batch_size" in str(err.value)
    assert "'many'" in str(err.value)


def test_out_of_range_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.lr: Input should be greater than 0"):
        load_config(_write(tmp_path, "train:\n  lr: -1\n"))


def _load_checked(path: Path) -> Config:
    """As the CLI reads a config: structure by pydantic, then every extension name against its registry."""
    return require_registered(load_config(path), str(path))


def test_literal_lists_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "train:\n  optimizer: adagrad\n"))
    assert "'adamw', 'adam' or 'sgd'" in str(err.value)


def test_unknown_task_lists_the_registered_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "task: translation\n")
    with pytest.raises(ConfigError) as err:
        _load_checked(path)
    assert "task: unknown task 'translation'; known: classification, pretrain, sft" in str(err.value)
    assert str(path) in str(err.value)


def test_old_multitask_and_transfer_tasks_read_as_recipes(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "task: transfer\ntransfer:\n  domain_text: d.txt\n"))
    assert (config.recipe, config.task) == ("transfer", "classification")
    with pytest.raises(ConfigError, match="recipe: multitask trains classifiers"):
        load_config(_write(tmp_path, "task: sft\nrecipe: multitask\n"))


def test_unknown_method_lists_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load_checked(_write(tmp_path, "method:\n  name: lorax\n"))
    assert "unknown method 'lorax'" in str(err.value)
    assert "dora" in str(err.value)


def test_unknown_method_param_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load_checked(_write(tmp_path, "method:\n  name: lora\n  rank: 8\n"))
    assert "method.rank: unknown key for method 'lora'" in str(err.value)
    assert "r," in str(err.value)


def test_method_param_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"method\.r"):
        _load_checked(_write(tmp_path, "method:\n  name: lora\n  r: 0\n"))


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml:2"):
        load_config(_write(tmp_path, "train:\n\tlr: 1\n"))


def test_set_overrides_yaml_and_parses_types(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.1\n  epochs: 1\nmethod: lora\n")
    config = load_config(
        path, ["train.lr=3e-4", "train.group_by_length=false", "method.r=4", "data.columns=[a, b]"]
    )
    assert config.train.lr == pytest.approx(3e-4)
    assert config.train.epochs == 1
    assert config.train.group_by_length is False
    assert method_params(config.method).r == 4  # type: ignore[attr-defined]
    assert config.data.columns == ["a", "b"]


def test_set_without_equals_is_refused() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["train.lr"])


def test_bare_names_for_named_nodes() -> None:
    config = validate_config({"train": {"scheduler": "cosine", "optimizer": "sgd"}, "method": "ia3"})
    assert config.train.scheduler.name == "cosine"
    assert config.train.optimizer.name == "sgd"
    assert config.method.name == "ia3"


def test_ratios_must_leave_training_rows() -> None:
    with pytest.raises(ConfigError, match="val_ratio"):
        validate_config({"data": {"val_ratio": 0.6, "test_ratio": 0.5}})


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["method.name=dora", "method.r=4", "train.scheduler.name=step"])
    dump_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
