"""The base of every config model: strict (unknown keys refused, no boolean read as a number), assignment-validated."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# A random seed as NumPy, scikit-learn and torch all take it: refused here rather than by a library minutes in.
Seed = Annotated[int, Field(ge=0, lt=2**32, description="random seed, 0 to 2**32 - 1")]

_CONTAINERS = (list, tuple, set, frozenset, dict)


class StrictModel(BaseModel):
    """A config section. Unknown keys are refused so a typo never passes silently."""

    # NaN and infinity are never meant: `epochs: .inf` would train forever, `lr: .nan` fail at the first step.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic's lax mode reads `true` as 1 for an int or float field, so `batch_size: true` would train
        with batch size 1. Full strict mode is no cure: it would also refuse "3e-4" from `--set` and YAML lists
        for tuples. So only booleans are refused where a number is wanted, inside lists and mappings too."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _bool_as_number(value, field.annotation):
            raise ValueError("a number is wanted here, not a boolean (true/false)")
        return value


def _bool_as_number(value: Any, annotation: Any) -> bool:
    """Whether `value` puts a bool where `annotation` wants a number (and no alternative takes a bool)."""
    kinds = _alternatives(annotation)
    if isinstance(value, bool):
        return any(k in (int, float) for k in kinds) and not any(_takes_bool(k) for k in kinds)
    if isinstance(value, list | tuple | set | frozenset | dict):
        shapes = [k for k in kinds if get_origin(k) in _CONTAINERS]
        return bool(shapes) and all(_bool_in_container(value, k) for k in shapes)
    return False


def _alternatives(annotation: Any) -> list[Any]:
    """The members of a union (`Annotated` metadata dropped), or the annotation alone."""
    if get_origin(annotation) is Annotated:
        return _alternatives(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [kind for member in get_args(annotation) for kind in _alternatives(member)]
    return [annotation]


def _takes_bool(kind: Any) -> bool:
    if kind in (bool, Any, object):
        return True
    return get_origin(kind) is Literal and any(isinstance(v, bool) for v in get_args(kind))


def _bool_in_container(value: Any, kind: Any) -> bool:
    """Whether an item of `value` is a bool where the container type `kind` wants a number."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is dict:
        return (
            isinstance(value, dict)
            and len(args) == 2
            and any(_bool_as_number(v, args[1]) for v in value.values())
        )
    if isinstance(value, dict) or not args:
        return False
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return any(_bool_as_number(v, a) for v, a in zip(value, args, strict=False))
    return any(_bool_as_number(v, args[0]) for v in value)
