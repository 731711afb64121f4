"""The search space: parsing with named errors, conditional sampling, the default spaces, config application."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from open_autoglm.config import ConfigError, load_config, validate_config
from open_autoglm.search.space import apply_overrides, build_space, parse_space
from open_autoglm.tasks import TASKS

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR_RANGES = {"lora": (1e-4, 5e-3), "dora": (1e-4, 5e-3), "adapter": (1e-4, 5e-3), "ia3": (1e-3, 5e-2)}
LR_RANGES["full"] = (1e-5, 5e-4)


def _config(**sections):
    return validate_config({"task": "classification", "method": {"name": "lora", "r": 8}, **sections}, "test")


@pytest.mark.parametrize("task", sorted(TASKS.names()))
def test_default_space_loads_and_checks_for_every_task(task: str) -> None:
    config = validate_config({"task": task}, "test")
    space = build_space(config)
    assert space.params and space.seeds
    assert any(p.key == "method.name" for p in space.params)
    assert {p.key for p in space.params} >= {"method.name", "train.lr"}


@pytest.mark.parametrize(
    "sampler",
    [
        optuna.samplers.RandomSampler(seed=0),
        optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=5),
    ],
)
def test_conditional_space_samples_only_valid_combinations(sampler: optuna.samplers.BaseSampler) -> None:
    config = _config()
    space = build_space(config)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    methods = set()
    for _ in range(60):
        trial = study.ask()
        sampled = space.sample(trial)
        method = sampled["method.name"]
        methods.add(method)
        assert ("method.r" in sampled) == (method in {"lora", "dora"})
        assert ("method.bottleneck_size" in sampled) == (method == "adapter")
        lr_params = [name for name in sampled if name.startswith("lr_")]
        assert len(lr_params) == 1  # exactly one learning rate, the one coupled to the method
        trial_config = apply_overrides(config, space.overrides(sampled), "trial")
        low, high = LR_RANGES[method]
        assert low <= trial_config.train.lr <= high
        assert trial_config.method.name == method
        study.tell(trial, trial_config.train.lr * (2 if method == "lora" else 1))
    assert methods == set(LR_RANGES)


def test_a_new_method_drops_the_old_methods_keys() -> None:
    config = _config()  # lora with r=8
    moved = apply_overrides(config, {"method.name": "full", "train.lr": 1e-4}, "trial")
    assert moved.method.name == "full" and moved.method.extra_params() == {}
    kept = apply_overrides(config, {"train.lr": 1e-4}, "trial")
    assert kept.method.extra_params() == {"r": 8}


def test_params_of_the_config_itself() -> None:
    space = build_space(_config(train={"lr": 1e-3, "batch_size": 16}))
    params = space.params_of(_config(train={"lr": 1e-3, "batch_size": 16}))
    assert params is not None
    assert params["method.name"] == "lora" and params["method.r"] == 8 and params["lr_peft"] == 1e-3
    assert "lr_full" not in params
    assert space.params_of(_config(train={"lr": 0.5})) is None  # outside the coupled range


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"train.lr": {"type": "float", "low": 1e-4}},
            r"search.space.train.lr: float needs `low` and `high`",
        ),
        ({"train.lr": {"type": "normal"}}, r"type must be float, int or categorical \(got 'normal'\)"),
        ({"train.lr": {"type": "float", "low": 1, "high": 0.1}}, r"search.space.train.lr"),
        ({"x": {"type": "int", "low": 1, "high": 4, "when": {}}}, r"unknown key\(s\) \['when'\]"),
        (
            {"method.r": {"type": "int", "low": 4, "high": 8, "if": {"method.name": "lora"}}},
            r"'method.name' is not an earlier parameter",
        ),
        (
            {
                "method.name": ["lora", "full"],
                "method.r": {"type": "int", "low": 4, "high": 8, "if": {"method.name": "lorra"}},
            },
            r"\['lorra'\] not among the choices of method.name",
        ),
        ({"train.lr": "fast"}, r"expected a mapping with `type`"),
    ],
)
def test_bad_space_entries_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_space(raw, "search.space")


def test_space_is_checked_against_the_config_before_any_trial() -> None:
    config = _config(search={"space": {"train.batch_size": [8, 0]}})
    with pytest.raises(ConfigError, match=r"search.space.train.batch_size = 0 makes an invalid config"):
        build_space(config)
    unknown = _config(search={"space": {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}}})
    with pytest.raises(ConfigError, match="learning_rate"):
        build_space(unknown)
    method_key = _config(search={"space": {"method.name": ["lora", "full"], "method.r": [4, 8]}})
    with pytest.raises(ConfigError, match=r"method.r = 4 makes an invalid config"):
        build_space(method_key)  # r without `if`: invalid for full, which the check finds up front


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
# multitask and transfer runs train with `autoglm train`; `tune` refuses them (tests/cli)
SEARCHABLE = [p for p in EXAMPLES if yaml.safe_load(p.read_text()).get("recipe", "single") == "single"]


@pytest.mark.parametrize("path", SEARCHABLE, ids=lambda p: p.name)
def test_every_example_search_space_builds(path: Path) -> None:
    config = load_config(path)
    space = build_space(config)
    assert any(p.key == "train.lr" for p in space.params)
