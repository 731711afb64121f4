"""The search space: YAML entries → Optuna distributions, sampled define-by-run, applied to a `Config`.

An entry is named by its Optuna parameter; it sets the config key `key` (default: its name), so two entries can
set the same key under different conditions — that is how the learning rate is coupled to the method:

    method.name: {type: categorical, choices: [lora, full]}
    method.r:    {type: int, low: 4, high: 32, log: true, if: {method.name: lora}}
    lr_lora:     {key: train.lr, type: float, low: 1.0e-4, high: 3.0e-3, log: true, if: {method.name: lora}}
    lr_full:     {key: train.lr, type: float, low: 1.0e-5, high: 3.0e-4, log: true, if: {method.name: full}}

`if` names earlier parameters and the values that make this one active; a list is shorthand for categorical.

A task's default space (`BaseTask.default_space`, tasks/spaces/<task>.yaml) names the methods to search and the training knobs only;
each method declares its own entries and learning-rate range (`BaseMethod.search_spaces`), composed in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from open_autoglm.config import Config, ConfigError, validate_config
from open_autoglm.config.loading import set_dotted
from open_autoglm.methods import METHODS
from open_autoglm.methods.params import method_params
from open_autoglm.search.optuna_private import distribution_contains
from open_autoglm.tasks import TASKS

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
        raw["method"] = {"name": config.method.name, **method_params(config.method).model_dump(mode="json")}
        sampled: dict[str, Any] = {}
        for param in self.params:
            if not param.active(sampled):
                continue
            value = _get_dotted(raw, param.key)
            dist = param.distribution
            try:
                inside = distribution_contains(dist, value)
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
    config = validate_config(raw, source=source)
    try:
        method_params(config.method)  # config/ leaves the method's own keys to the method
    except (KeyError, ValueError) as err:
        raise ConfigError(f"{source}: invalid config\n  {err}") from None
    return config


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
    """The default space of `task`: the task names the methods to search and the training knobs; each method
    named adds its own parameters and learning-rate range for the task's kind (`BaseMethod.search_spaces`)."""
    source = f"default space for task {task!r}"
    raw = read_task_space(task, source)
    space = parse_space(with_method_spaces(raw["space"], TASKS.get(task).kind, source), source)
    return SearchSpace(space.params, tuple(raw.get("seeds") or ()), source)


def read_task_space(task: str, source: str) -> dict[str, Any]:
    """The task's own default space (`space:` and `seeds:`), as written."""
    raw = TASKS.get(task)().default_space()
    if raw is None:
        raise ConfigError(f"{source}: the task has none (search.space must be given)")
    return raw


def with_method_spaces(raw: dict[str, Any], task: str, source: str) -> dict[str, Any]:
    """`raw` with each chosen method's own entries inserted after `method.name`: the methods' parameters, then
    their learning rates, each conditional on the methods that declare it. Methods declaring the same entry
    share one Optuna parameter (as LoRA and DoRA share `method.r`); another distribution under its name is an
    error."""
    choices = raw.get("method.name")
    if isinstance(choices, dict):
        choices = choices.get("choices")
    if not isinstance(choices, list):
        return raw  # no choice of method (a malformed one is named by parse_space)
    params: dict[str, dict[str, Any]] = {}
    rates: dict[str, dict[str, Any]] = {}
    for name in choices:
        try:
            method = METHODS.get(name)
        except KeyError as err:
            raise ConfigError(f"{source}.method.name: {err.args[0]}") from None
        own = method.search_spaces.get(task)
        if own is None:
            raise ConfigError(
                f"{source}: method {name!r} declares no search space for task {task!r} "
                "(`search_spaces` in its module); search other methods or give search.space"
            )
        for key, spec in own.params.items():
            _share(params, f"method.{key}", _method_entry(spec, f"{source}.method.{key}"), name, source)
        low, high = own.lr
        lr = {"key": "train.lr", "type": "float", "low": low, "high": high, "log": True}
        _share(rates, method.lr_param or f"lr_{name}", lr, name, source)
    clash = sorted((params.keys() | rates.keys()) & raw.keys())
    if clash:
        raise ConfigError(
            f"{source}: {clash} are the methods' own entries; a task's space names methods only"
        )
    composed: dict[str, Any] = {}
    for key, spec in raw.items():
        composed[key] = spec
        if key == "method.name":
            composed |= params | rates
    return composed


def _method_entry(spec: Any, where: str) -> dict[str, Any]:
    if isinstance(spec, list):
        return {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict) or {"key", "if"} & set(spec):
        raise ConfigError(f"{where}: a method's entry is a distribution (or a list), without `key` or `if`")
    return dict(spec)


def _share(
    entries: dict[str, dict[str, Any]], name: str, spec: dict[str, Any], method: str, source: str
) -> None:
    """Add `method`'s entry `name`, or make the identical entry another method declared active for it too."""
    entry = entries.get(name)
    if entry is None:
        entries[name] = {**spec, "if": {"method.name": [method]}}
        return
    first = entry["if"]["method.name"]
    if {k: v for k, v in entry.items() if k != "if"} != spec:
        raise ConfigError(
            f"{source}.{name}: methods {first[0]!r} and {method!r} declare it with different distributions"
        )
    first.append(method)


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
