"""The base of every config model: strict (unknown keys refused) and assignment-validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section. Unknown keys are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
