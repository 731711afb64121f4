"""Every extension a config names — task, recipe, method, reader, cleaner, metric, objective, exporter, sampler,
pruner — checked against its family's registry in one place, once plugins can load.

config/ imports no part, so its sections hold these names unchecked; the CLI calls `require_registered` right after
reading a config, before any data is read, and `tune` calls it for each configuration it builds. A method's own
keys are checked here too, by the method's params model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from open_autoglm.config import Config, ConfigError
from open_autoglm.config.data import DataConfig
from open_autoglm.data.clean import BUILTIN_CLEANERS, CLEANERS
from open_autoglm.data.readers import READERS
from open_autoglm.export.plugins import EXPORTERS
from open_autoglm.methods import METHODS
from open_autoglm.methods.params import method_params
from open_autoglm.recipes import RECIPES
from open_autoglm.registry import Registry, UnknownNameError
from open_autoglm.search.objectives import OBJECTIVES, objective_named
from open_autoglm.search.pruners import PRUNERS
from open_autoglm.search.samplers import SAMPLERS
from open_autoglm.tasks import TASKS
from open_autoglm.tasks.classification import BUILTIN_METRICS, CLASSIFICATION_METRICS


def require_registered(config: Config, source: str = "config") -> Config:
    """`config` when every name in it is registered; else a ConfigError naming the key, the name and the known."""
    try:
        for registry, names, key in _named_extensions(config):
            registry.require(names, key=key)
        for names, built_in, key, how in _plugin_lists(config):
            _refuse_built_in(names, built_in, key, how)
        method_params(config.method)
        TASKS.get(config.task)().search_metric(config.search.metric, config.train)
        for name in config.search.objectives:
            objective_named(name)  # a plugin's objective is checked now, not after the first trial
    except (UnknownNameError, ValueError) as err:
        raise ConfigError(f"{source}: invalid config\n  {err}") from None
    return config


def with_task_default_model(config: Config) -> Config:
    """A config that names no model gets its task's default (sft: smollm2; the others: minilm)."""
    if "name" in config.model.model_fields_set:
        return config
    default = TASKS.get(config.task).default_model
    return config.model_copy(update={"model": config.model.model_copy(update={"name": default})})


def _named_extensions(config: Config) -> Iterator[tuple[Registry[Any], list[str], str]]:
    yield RECIPES, [config.recipe], "recipe"
    yield TASKS, [config.task], "task"
    yield METHODS, [config.method.name], "method.name"
    yield CLASSIFICATION_METRICS, config.train.metrics, "train.metrics"
    yield OBJECTIVES, config.search.objectives, "search.objectives"
    yield EXPORTERS, config.export.extra, "export.extra"
    yield SAMPLERS, [config.search.sampler], "search.sampler"
    yield PRUNERS, [name for name in config.search.pruner if name != "none"], "search.pruner"
    for data, key in _data_sections(config):
        yield READERS, [data.format] if data.format != "auto" else [], f"{key}.format"
        yield CLEANERS, data.clean.extra, f"{key}.clean.extra"


def _plugin_lists(config: Config) -> Iterator[tuple[list[str], tuple[str, ...], str, str]]:
    """Lists that add plugins to what always runs: (names, the built-in ones, key, how a built-in is chosen)."""
    yield config.train.metrics, BUILTIN_METRICS, "train.metrics", "always reported"
    for data, key in _data_sections(config):
        yield data.clean.extra, BUILTIN_CLEANERS, f"{key}.clean.extra", f"switched by {key}.clean.<name>"


def _refuse_built_in(names: list[str], built_in: tuple[str, ...], key: str, how: str) -> None:
    """A built-in named again would run twice (or out of its place), so it is refused, saying where it lives."""
    repeated = [name for name in names if name in built_in]
    if repeated:
        raise ValueError(f"{key}: {', '.join(repeated)} built in ({how}); {key} names plugins only")


def _data_sections(config: Config) -> Iterator[tuple[DataConfig, str]]:
    yield config.data, "data"
    for i, task in enumerate(config.multitask.tasks):
        yield task.data, f"multitask.tasks.{i}.data"
    if config.transfer.second_task is not None:
        yield config.transfer.second_task, "transfer.second_task"
