"""Models: aliases, loading for an objective, device and precision."""

from open_autoglm.models.device import Placement, choose_placement
from open_autoglm.models.loading import (
    AUTOGLM_META,
    load_finetuned,
    load_model,
    load_tokenizer,
    objective_for,
    resolve_model_path,
)

__all__ = [
    "AUTOGLM_META",
    "Placement",
    "choose_placement",
    "load_finetuned",
    "load_model",
    "load_tokenizer",
    "objective_for",
    "resolve_model_path",
]
