"""Recipes: how one `autoglm train` run goes from data to model, named by the config's `recipe`.

`single` fine-tunes one model on one task (`train/job.py`); `multitask` trains one backbone with a head per task
(`multitask/`); `transfer` adapts a model to domain text, then fine-tunes it (`transfer/`). A recipe is a job, so
an entry names its function by module and attribute and imports it only when run: reading a config (and
`autoglm --help`) stays free of torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from open_autoglm.registry import Registry

if TYPE_CHECKING:
    from open_autoglm.config import Config

RunRecipe = Callable[..., dict[str, Any]]  # (config, resume=...) -> the run's summary


@dataclass(frozen=True)
class Recipe:
    name: str
    target: str  # "module:function" of the job that runs it
    tunable: bool  # whether `autoglm tune` can search it (it runs many trials of one model)
    description: str
    needs: tuple[str, ...]  # config keys that must be set, beyond those with defaults

    def missing(self, config: Config) -> list[str]:
        """The keys of `needs` the config leaves unset (None or empty), in order."""
        missing = []
        for key in self.needs:
            value: Any = config
            for part in key.split("."):
                value = getattr(value, part)
            if value is None or value == []:
                missing.append(key)
        return missing

    def load(self) -> RunRecipe:
        module, _, attribute = self.target.partition(":")
        job: RunRecipe = getattr(import_module(module), attribute)
        return job


RECIPES: Registry[Recipe] = Registry("recipe")
RECIPES.register(
    Recipe("single", "open_autoglm.train.job:run_train", True, "one model, one task", ("data.train",))
)
RECIPES.register(
    Recipe(
        "multitask",
        "open_autoglm.multitask.job:run_multitask",
        False,
        "a head per task",
        (),  # the config itself refuses fewer than two multitask.tasks
    )
)
RECIPES.register(
    Recipe(
        "transfer",
        "open_autoglm.transfer.job:run_transfer",
        False,
        "adapt, then fine-tune",
        ("data.train", "transfer.domain_text"),
    )
)


def run_recipe(config: Config, resume: bool = True) -> dict[str, Any]:
    """Run the config's recipe; return the run's summary."""
    return RECIPES.get(config.recipe).load()(config, resume=resume)
