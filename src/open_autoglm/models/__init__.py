"""Models: aliases, loading for an objective, device and precision."""

from open_autoglm.models.device import Placement, choose_placement
from open_autoglm.models.loading import (
    AUTOGLM_META,
    has_masked_lm_head,
    load_finetuned,
    load_model,
    load_tokenizer,
    resolve_model_path,
)

__all__ = [
    "AUTOGLM_META",
    "Placement",
    "choose_placement",
    "load_finetuned",
    "load_model",
    "load_tokenizer",
    "has_masked_lm_head",
    "resolve_model_path",
]
