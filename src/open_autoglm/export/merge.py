"""Merge a LoRA-family adapter into its base model and save the result as a full model (`export/merged/`).

The merged folder loads with `load_finetuned` like any full model: safetensors weights, the tokenizer, and
autoglm.json with train's keys (no adapter_config.json). Merging is checked, not trusted: the merged model's
logits must equal base+adapter's on a few rows.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.atomic import staged_path
from open_autoglm.models import load_finetuned
from open_autoglm.run_folder import ModelFolder, ModelMeta, write_model_meta
from open_autoglm.versions import versions

# fp32 merging reorders a few additions, so the logits move by a few ulps of their size: 1e-4 for a classifier's
# logits (about 1-10); an LLM's reach 30-40 (SmolLM2 + LoRA: 1.03e-4). Anything larger means the merge changed it.
MERGE_ATOL = 1e-4
MERGE_RTOL = 1e-5  # of the largest logit
logger = logging.getLogger(__name__)


class MergeMismatchError(ValueError):
    """The merged model does not compute what base+adapter computed."""


@dataclass
class MergedModel:
    model: nn.Module  # the full fp32 model, in eval mode
    tokenizer: PreTrainedTokenizerBase
    meta: dict[str, Any]
    path: Path
    max_abs_diff: float  # largest logit difference against base+adapter (0.0 for a full model)


@torch.inference_mode()
def logits_of(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> torch.Tensor:
    """(N, num_labels) logits of a sequence classifier for `texts`, in one padded batch."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )
    return model(**encoded).logits.float()


def merge_model(
    model_dir: Path, out_dir: Path, check_texts: Sequence[str], *, trust_remote_code: bool = False
) -> MergedModel:
    """Write `model_dir` as a full model to `out_dir`: an adapter is merged into its base, a full model copied.
    The folder's own code runs only with `trust_remote_code` (the operator's decision, see `load_finetuned`)."""
    model, tokenizer, meta = load_finetuned(model_dir, trust_remote_code=trust_remote_code)
    max_length = int(meta.get("max_length", 128))
    shutil.rmtree(out_dir, ignore_errors=True)
    if not (model_dir / "adapter_config.json").exists():
        with staged_path(out_dir) as partial:
            shutil.copytree(model_dir, partial)  # a full fine-tune is already one model
        return MergedModel(model, tokenizer, meta, out_dir, 0.0)

    if not hasattr(model, "merge_and_unload"):
        raise ValueError(f"{model_dir}: method {meta.get('method')!r} has no merge into the base model")
    texts = [meta.get("text_prefix", "") + t for t in check_texts]
    reference = logits_of(model, tokenizer, texts, max_length)  # base+adapter, before merging changes weights
    try:
        merged = model.merge_and_unload()  # type: ignore[operator]
    except (AttributeError, NotImplementedError, ValueError) as err:
        raise ValueError(
            f"{model_dir}: method {meta.get('method')!r} cannot be merged into the base model ({err}); "
            "only LoRA-family adapters (lora, dora, adalora, ia3) merge"
        ) from err
    merged.eval()
    diff = float((logits_of(merged, tokenizer, texts, max_length) - reference).abs().max())
    tolerance = MERGE_ATOL + MERGE_RTOL * float(reference.abs().max())
    if diff > tolerance:
        raise MergeMismatchError(
            f"the merged model's logits differ from base+adapter's by {diff:.2e} (> {tolerance:.2e}); "
            "the merge is not exact for this method, so it was not saved"
        )
    logger.info("merged %s into its base (largest logit difference %.2e)", meta.get("method"), diff)
    _save_full(merged, tokenizer, meta, out_dir)
    return MergedModel(merged, tokenizer, meta, out_dir, diff)


def _save_full(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, meta: dict[str, Any], out_dir: Path
) -> None:
    with staged_path(out_dir) as partial:  # the folder appears whole, or not at all
        partial.mkdir()
        model.save_pretrained(str(partial), safe_serialization=True)  # type: ignore[operator]
        tokenizer.save_pretrained(str(partial))
        merged_meta = meta | {"merged_from": meta.get("method"), "versions": versions()}
        write_model_meta(partial, ModelMeta.from_json(merged_meta, ModelFolder(out_dir).meta))
