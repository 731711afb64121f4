"""The search space: YAML entries → Optuna distributions, sampled define-by-run, applied to a `Config`.

An entry is named by its Optuna parameter; it sets the config key `key` (default: its name), so two entries can
set the same key under different conditions — that is how the learning rate is coupled to the method:

    method.name: {type: categorical, choices: [lora, full]}
    method.r:    {type: int, low: 4, high: 32, log: true, if: {method.name: lora}}
    lr_lora:     {key: train.lr, type: float, low: 1.0e-4, high: 3.0e-3, log: true, if: {method.name: lora}}
    lr_full:     {key: train.lr, type: float, low: 1.0e-5, high: 3.0e-4, log: true, if: {method.name: full}}

`if` names earlier parameters and the values that make this one active; a list is shorthand for categorical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import optuna
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from open_autoglm.config import Config, ConfigError, validate_config
from open_autoglm.config.loading import set_dotted

_ENTRY_KEYS = {"type", "key", "if", "low", "high", "log", "step", "choices"}


@dataclass(frozen=True)
class SearchParam:
    name: str  # the Optuna parameter
    key: str  # the dotted config key it sets
    distribution: BaseDistribution
    condition: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # param -> values that activate it

    def active(self, sampled: dict[str, Any]) -> bool:
        return all(name in sampled and sampled[name] in values for name, values in self.condition.items())


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[SearchParam, ...]
    seeds: tuple[dict[str, Any], ...] = ()  # known-good parameter sets, tried first
    source: str = "search.space"

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter in order; inactive ones are never suggested (valid combinations only)."""
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.active(sampled):
                sampled[param.name] = _suggest(trial, param.name, param.distribution)
        return sampled

    def overrides(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """Sampled parameters as config keys."""
        by_name = {p.name: p for p in self.params}
        return {by_name[name].key: value for name, value in sampled.items()}

    def params_of(self, config: Config) -> dict[str, Any] | None:
        """The config's own values as space parameters (to run it as a trial), or None if it lies outside."""
        raw = config.model_dump(mode="json")
        raw["method"] = {"name": config.method.name, **config.method.params().model_dump(mode="json")}
        sampled: dict[str, Any] = {}
        for param in self.params:
            if not param.active(sampled):
                continue
            value = _get_dotted(raw, param.key)
            dist = param.distribution
            try:
                inside = dist._contains(dist.to_internal_repr(value))
            except (ValueError, TypeError):
                inside = False
            if not inside:
                return None
            sampled[param.name] = value
        return sampled


def apply_overrides(config: Config, overrides: dict[str, Any], source: str) -> Config:
    """The config with `overrides` set; a new method drops the old method's own keys."""
    raw = config.model_dump(mode="json")
    new_method = overrides.get("method.name")
    if new_method is not None and new_method != config.method.name:
        raw["method"] = {"name": new_method}
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    return validate_config(raw, source=source)


def build_space(config: Config) -> SearchSpace:
    """The configured space (or the task's default) — checked against the config before any trial runs."""
    if config.search.space == "default":
        space = load_default_space(config.task)
    else:
        space = parse_space(config.search.space, "search.space")
    extra_seeds = tuple(config.search.seeds)
    space = SearchSpace(space.params, space.seeds + extra_seeds, space.source)
    check_space(space, config)
    return space


def load_default_space(task: str) -> SearchSpace:
    """The default space shipped for `task` (search/spaces/<task>.yaml)."""
    source = f"default space for task {task!r}"
    path = resources.files("open_autoglm.search") / "spaces" / f"{task}.yaml"
    if not path.is_file():
        raise ConfigError(f"{source}: none ships with this version (search.space must be given)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    space = parse_space(raw["space"], source)
    return SearchSpace(space.params, tuple(raw.get("seeds") or ()), source)


def parse_space(raw: Any, source: str) -> SearchSpace:
    """YAML mapping → SearchSpace, refusing what Optuna would choke on later, with the entry's name."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{source}: expected a mapping of parameter -> distribution, got {raw!r}")
    params: list[SearchParam] = []
    for name, spec in raw.items():
        where = f"{source}.{name}"
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping with `type` (float, int, categorical) or a list")
        unknown = set(spec) - _ENTRY_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
        condition = _condition(spec.get("if"), {p.name: p for p in params}, where)
        params.append(
            SearchParam(str(name), str(spec.get("key", name)), _distribution(spec, where), condition)
        )
    return SearchSpace(tuple(params), source=source)


def check_space(space: SearchSpace, config: Config) -> None:
    """Apply each parameter's extreme values to the config up front, under a condition that activates it —
    and, for a method's own key, under every method it may meet (`method.r` beside `full` needs an `if`)."""
    methods = next((p for p in space.params if p.key == "method.name"), None)
    for param in space.params:
        activation = {space_param_key(space, n): values[0] for n, values in param.condition.items()}
        contexts = [activation]
        if param.key.startswith("method.") and methods is not None and methods.name not in param.condition:
            assert isinstance(methods.distribution, CategoricalDistribution)
            contexts = [activation | {"method.name": m} for m in methods.distribution.choices]
        for context in contexts:
            for value in _extremes(param.distribution):
                try:
                    apply_overrides(
                        config, context | {param.key: value}, source=f"{space.source}.{param.name}"
                    )
                except ConfigError as err:
                    when = f" when {context}" if context else ""
                    raise ConfigError(
                        f"{space.source}.{param.name} = {value!r} makes an invalid config{when}"
                        f" (an `if:` can limit it):\n{err}"
                    ) from None
    for i, seed in enumerate(space.seeds):
        unknown = set(seed) - {p.name for p in space.params}
        if unknown:
            raise ConfigError(f"search.seeds[{i}]: {sorted(unknown)} are not parameters of {space.source}")


def space_param_key(space: SearchSpace, name: str) -> str:
    return next(p.key for p in space.params if p.name == name)


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _distribution(spec: dict[str, Any], where: str) -> BaseDistribution:
    kind = spec.get("type")
    try:
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValueError("categorical needs a non-empty `choices` list")
            return CategoricalDistribution(choices)
        if kind in ("float", "int"):
            if "low" not in spec or "high" not in spec:
                raise ValueError(f"{kind} needs `low` and `high`")
            log = bool(spec.get("log", False))
            if kind == "int":
                return IntDistribution(
                    int(spec["low"]), int(spec["high"]), log=log, step=int(spec.get("step", 1))
                )
            step = spec.get("step")
            return FloatDistribution(
                float(spec["low"]), float(spec["high"]), log=log, step=None if step is None else float(step)
            )
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None
    raise ConfigError(f"{where}: type must be float, int or categorical (got {kind!r})")


def _condition(raw: Any, earlier: dict[str, SearchParam], where: str) -> dict[str, tuple[Any, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.if: expected a mapping of earlier parameter -> value(s)")
    condition = {}
    for name, values in raw.items():
        if name not in earlier:
            raise ConfigError(f"{where}.if: {name!r} is not an earlier parameter; earlier: {sorted(earlier)}")
        values = tuple(values) if isinstance(values, list) else (values,)
        dist = earlier[name].distribution
        if isinstance(dist, CategoricalDistribution):
            missing = [v for v in values if v not in dist.choices]
            if missing:
                raise ConfigError(
                    f"{where}.if: {missing} not among the choices of {name}: {list(dist.choices)}"
                )
        condition[name] = values
    return condition


def _extremes(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    return [dist.low, dist.high]


def _get_dotted(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
