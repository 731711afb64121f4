"""Loading models by alias, Hugging Face id or local folder, for the objective a task needs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import torch
from pydantic import ValidationError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from open_autoglm.config.sections import ModelConfig
from open_autoglm.models.aliases import ALIASES
from open_autoglm.models.gguf import dequantized_folder, is_gguf
from open_autoglm.models.pruned import PRUNED_KEY, restore_pruned_shapes
from open_autoglm.models.weights import BaseWeights
from open_autoglm.run_folder import MODEL_META as AUTOGLM_META
from open_autoglm.run_folder import ModelFolderError, ModelMeta, read_model_meta

GENERATION_CONFIG = "generation_config.json"
AUTO_CLASSES: dict[str, Any] = {
    "seq_cls": AutoModelForSequenceClassification,
    "causal_lm": AutoModelForCausalLM,
    "masked_lm": AutoModelForMaskedLM,
}

logger = logging.getLogger(__name__)


class _NoLoadReport(logging.Filter):
    """transformers prints a table of missing keys on every load; we expect them (new heads) and log one line,
    which matters in a search that loads the model once per trial."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


logging.getLogger("transformers.modeling_utils").addFilter(_NoLoadReport())


def resolve_model_path(name: str) -> str:
    """An alias or a GGUF file becomes its folder (a GGUF file dequantized once, then cached); a local folder or
    a hub id is returned as given."""
    if name in ALIASES:
        return ALIASES[name].path(name)
    if is_gguf(name):
        return str(dequantized_folder(name))
    path = Path(name).expanduser()
    if path.exists() and not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        raise FileNotFoundError(
            f"model.name={name!r}: the folder has no config.json (not a Hugging Face model)"
        )
    return str(path) if path.exists() else name


def has_masked_lm_head(model_path: str, model_cfg: ModelConfig) -> bool:
    """Whether the architecture has a masked-LM head class (encoders do; decoders pretrain as causal LMs)."""
    config = AutoConfig.from_pretrained(model_path, **_hub_kwargs(model_cfg))
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_tokenizer(model_path: str, model_cfg: ModelConfig) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(model_path, **_hub_kwargs(model_cfg))
    if tokenizer.pad_token is None:
        # Decoder tokenizers often ship without a pad token; padding is masked out, so eos (or unk) serves.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_model(
    model_path: str,
    model_cfg: ModelConfig,
    objective: str,
    labels: list[str] | None = None,
    pad_token_id: int | None = None,
    weights: BaseWeights | None = None,
) -> tuple[nn.Module, tuple[str, ...]]:
    """Load for an objective; weights as `weights` says (default fp32, the master copy: mixed precision comes
    from the trainer's autocast).

    Returns the model and the modules whose weights the checkpoint lacked (randomly initialised: a new
    classifier, or a pooler the checkpoint never had). Those must train and be saved with any adapter, or the
    adapter could not reproduce the model.
    """
    weights = weights or BaseWeights(torch.float32)
    kwargs: dict[str, Any] = {**_hub_kwargs(model_cfg), **weights.load_kwargs(), "output_loading_info": True}
    if objective == "seq_cls":
        if not labels:
            raise ValueError("classification needs at least one label")
        kwargs |= {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    if objective not in AUTO_CLASSES:
        raise ValueError(f"unknown objective {objective!r}")
    model, info = cast(
        tuple[Any, dict[str, Any]], AUTO_CLASSES[objective].from_pretrained(model_path, **kwargs)
    )
    if pad_token_id is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad_token_id  # decoders classify on the last non-pad token
    new_modules = sorted({key.rsplit(".", 1)[0] for key in info.get("missing_keys", ())})
    if new_modules:
        logger.info("new (randomly initialised) modules that will train: %s", ", ".join(new_modules))
    if info.get("unexpected_keys"):
        logger.info("checkpoint weights the model does not use: %d", len(info["unexpected_keys"]))
    return model, tuple(new_modules)


def read_meta(folder: str | Path) -> ModelMeta:
    """autoglm.json of a model folder, checked for what loading needs (an objective this version loads).

    A truncated file, another version's layout or a hand-edited one must fail with the file's name and what is
    wrong, not as a KeyError deep inside loading. Unknown keys are left alone (artifacts load leniently).
    """
    meta = read_model_meta(Path(folder))
    if meta.objective not in AUTO_CLASSES:
        raise ModelFolderError(
            f"{Path(folder) / AUTOGLM_META}: objective {meta.objective!r} is not one of {', '.join(AUTO_CLASSES)}"
        )
    return meta


def saved_model_config(meta: dict[str, Any], folder: str | Path, trust_remote_code: bool) -> ModelConfig:
    """The `model` section of a folder's autoglm.json, with `trust_remote_code` decided by the caller.

    A folder must not decide to run its own code: a downloaded one could say `trust_remote_code: true`. Only
    the person running the command decides (`--trust-remote-code`, or the config they wrote). Keys this
    version does not know are dropped (the folder may come from a newer one).
    """
    saved = dict(meta.get("model") or {})
    if saved.get("trust_remote_code") and not trust_remote_code:
        logger.warning(
            "%s asks to run the model's own code; it is not run unless you pass --trust-remote-code "
            "(or set model.trust_remote_code: true in your config)",
            Path(folder) / AUTOGLM_META,
        )
    known = {key: value for key, value in saved.items() if key in ModelConfig.model_fields}
    if unknown := sorted(set(saved) - set(known)):
        logger.warning("%s: ignoring model keys unknown to this version: %s", folder, ", ".join(unknown))
    try:
        return ModelConfig(**(known | {"trust_remote_code": trust_remote_code}))
    except ValidationError as err:
        problems = "; ".join(f"model.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ModelFolderError(f"{Path(folder) / AUTOGLM_META}: {problems}") from None


def load_finetuned(
    path: str | Path, device: str = "cpu", *, trust_remote_code: bool = False
) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
    """Load what `train` saved in `model/`: a full model, or an adapter on its base. Returns (model, tokenizer, meta).

    `trust_remote_code` alone decides whether Python code shipped with the folder (or its base model) runs; the
    folder's own autoglm.json cannot turn it on. The returned meta's `model` section holds the settings the
    model was loaded with, so whatever loads its base model again follows the same decision.
    """
    path = Path(path)
    meta = read_meta(path).to_json()
    model_cfg = saved_model_config(meta, path, trust_remote_code)
    meta = meta | {"model": model_cfg.model_dump(mode="json")}
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    objective = meta["objective"]
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        import open_autoglm.methods  # noqa: F401  (registers custom peft methods before loading)

        if "base_model" not in meta:
            raise ModelFolderError(f"{path / AUTOGLM_META}: missing key 'base_model' (the adapter's base)")
        base, _ = load_model(
            meta["base_model"], model_cfg, objective, meta.get("labels"), tokenizer.pad_token_id
        )
        model: nn.Module = PeftModel.from_pretrained(base, str(path))
    elif PRUNED_KEY in meta:
        model = _load_pruned(path, objective, meta[PRUNED_KEY], trust_remote_code)
    else:
        model, _ = load_model(str(path), model_cfg, objective, meta.get("labels"), tokenizer.pad_token_id)
    if (path / GENERATION_CONFIG).is_file():  # where generation stops (an adapter's base has its own)
        from transformers import GenerationConfig

        cast(Any, model).generation_config = GenerationConfig.from_pretrained(str(path))
    return model.to(device).eval(), tokenizer, meta


def _load_pruned(path: Path, objective: str, record: dict, trust_remote_code: bool) -> nn.Module:
    """A structurally pruned model: built from config.json, shrunk to the record's per-layer shapes (which
    config.json cannot express, so from_pretrained would refuse the weights), then given its weights."""
    from safetensors.torch import load_file

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    model = AUTO_CLASSES[objective].from_config(
        config, dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    restore_pruned_shapes(model, record)
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        weights |= load_file(str(shard))
    model.load_state_dict(weights, strict=True)
    return model


def _hub_kwargs(model_cfg: ModelConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": model_cfg.trust_remote_code}
    if model_cfg.revision:
        kwargs["revision"] = model_cfg.revision
    return kwargs
