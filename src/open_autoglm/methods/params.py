"""A config's `method` section read through the chosen method's own params model.

`MethodConfig` (in config/) holds the method's name and its own keys unchecked, because config/ imports no part:
the method, which owns the params model, validates them here.
"""

from __future__ import annotations

from pydantic import ValidationError

from open_autoglm.config.base import StrictModel
from open_autoglm.config.sections import MethodConfig
from open_autoglm.methods.base import METHODS


def method_params(method: MethodConfig) -> StrictModel:
    """The validated params model of the chosen method, defaults filled in; a wrong key or value is named."""
    params_cls = METHODS.get(method.name).params_cls
    try:
        return params_cls(**method.extra_params())
    except ValidationError as err:
        raise ValueError(_explain(method.name, params_cls, err)) from None


def _explain(method: str, params_cls: type[StrictModel], err: ValidationError) -> str:
    allowed = ", ".join(["name", *sorted(params_cls.model_fields)])
    problems = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"method.{key}: unknown key for method {method!r}; allowed: {allowed}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"method.{key}: {message} (got {item.get('input')!r})")
    return "; ".join(problems)
