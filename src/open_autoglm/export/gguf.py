"""GGUF files for llama.cpp and Ollama: the merged causal LM as export/model-f16.gguf and model-q8_0.gguf, with its
tokenizer and chat template inside, and an Ollama Modelfile.

The gguf package writes the file (`GGUFWriter`), quantizes (`quants.quantize`) and names the tensors
(`get_tensor_name_map`). Written by hand, as llama.cpp's convert_hf_to_gguf.py does (that script is not in the pip
package): each architecture's hyperparameter keys, and the row permutation of Llama's query and key weights
(llama.cpp applies rotary embeddings to adjacent pairs, transformers to the two halves of a head; transformers'
GGUF reader undoes the permutation on load). A file is checked, not trusted: it is loaded back with transformers'
own GGUF reader before it takes its name: the f16 file's logits equal, within `GGUF_ATOL`, those of the merged
model with its matrices rounded to f16 (the file holds exactly those weights: 0.0 measured on SmolLM2), and every
file, fed the merged model's greedy continuations of a few prompts, picks the same token at each step but for ties
(see `TIE_MARGIN`: q8_0 rounding breaks near-ties of a real model, so free-running continuations may part at one
and then differ throughout). Against the fp32 merged model itself an f16
file differs by its rounding alone (SmolLM2: up to 0.17 on logits of magnitude ~37), which the report records.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from open_autoglm.atomic import staged_path, write_text
from open_autoglm.export.gguf_tokenizer import GgufRefused, add_tokenizer, modelfile
from open_autoglm.export.lm_compare import (
    TIE_MARGIN,
    Continuation,
    LmBench,
    continuations,
    greedy_disagreements,
    max_logit_diff,
    measure_lm,
)
from open_autoglm.export.merge import MergedModel

GGUF_TYPES = {  # tensor type of the 2-D weights, and the file type llama.cpp reads from general.file_type
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
MODELFILE = "Modelfile"
GGUF_ATOL = (
    1e-2  # against the f16-rounded model; a wrong layout (an unpermuted query, say) moves logits by ~0.1+
)
SPEED_NOTE = (
    "tokens/s of every variant is PyTorch on the same weights as transformers loads them (a GGUF file dequantized "
    "to fp32), so it differs by noise only; llama.cpp's own speed on the GGUF files is not measured here"
)
logger = logging.getLogger(__name__)


class GgufMismatchError(ValueError):
    """A GGUF file, loaded back, does not compute what the merged model computes."""


def gguf_name(qtype: str) -> str:
    return f"model-{qtype}.gguf"


@dataclass(frozen=True)
class GgufArchitecture:
    """What a model type needs beyond tensor names: its hyperparameter keys and any change to a tensor."""

    arch: gguf.MODEL_ARCH
    refuse: Callable[[PretrainedConfig], str | None]  # why this model cannot be written; None: it can
    hyperparameters: Callable[[gguf.GGUFWriter, PretrainedConfig], None]
    tensor: Callable[[str, np.ndarray, PretrainedConfig], np.ndarray]  # GGUF name, HF weights -> GGUF weights


def _llama_refuse(config: PretrainedConfig) -> str | None:
    """transformers' GGUF reader rebuilds a Llama config from the keys below only: anything else would load as a
    different model."""
    rope = getattr(config, "rope_parameters", None) or {}
    differences = {
        "hidden_act": (getattr(config, "hidden_act", "silu"), "silu"),
        "attention_bias": (bool(getattr(config, "attention_bias", False)), False),
        "mlp_bias": (bool(getattr(config, "mlp_bias", False)), False),
        "rope_parameters.rope_type": (rope.get("rope_type", "default"), "default"),
    }
    wrong = [
        f"{key}={value!r} (GGUF: {expected!r})"
        for key, (value, expected) in differences.items()
        if value != expected
    ]
    return ", ".join(wrong) or None


def _llama_hyperparameters(writer: gguf.GGUFWriter, config: PretrainedConfig) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_dimension_count(head_dim)  # transformers reads the head size from here
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    if head_dim * config.num_attention_heads != config.hidden_size:  # llama.cpp's own key for that case
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _llama_tensor(name: str, weights: np.ndarray, config: PretrainedConfig) -> np.ndarray:
    """Query and key rows reordered per head from two halves to interleaved pairs (convert_hf_to_gguf.py's
    `LlamaModel.permute`)."""
    if name.endswith("attn_q.weight"):
        return _permute(weights, config.num_attention_heads)
    if name.endswith("attn_k.weight"):
        return _permute(weights, config.num_key_value_heads or config.num_attention_heads)
    return weights


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    # (heads * head_dim, hidden) -> (heads, 2, head_dim / 2, hidden) -> swap the middle axes -> back
    half = weights.shape[0] // heads // 2
    return weights.reshape(heads, 2, half, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


GGUF_ARCHITECTURES = {  # model_type -> how to write it
    "llama": GgufArchitecture(gguf.MODEL_ARCH.LLAMA, _llama_refuse, _llama_hyperparameters, _llama_tensor),
}


def architecture_of(config: PretrainedConfig) -> GgufArchitecture:
    """The model type's entry, or GgufRefused naming the type (or the setting) that GGUF cannot hold."""
    entry = GGUF_ARCHITECTURES.get(config.model_type)
    if entry is None:
        raise GgufRefused(
            f"architecture {config.model_type!r} has no GGUF writer here (supported: {', '.join(GGUF_ARCHITECTURES)})"
        )
    if reason := entry.refuse(config):
        raise GgufRefused(f"architecture {config.model_type!r}: {reason} cannot be written to GGUF")
    return entry


def write_gguf(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, folder: Path, path: Path, qtype: str, name: str
) -> None:
    """Write `model` (a full causal LM; `folder` holds its saved tokenizer) to `path` as GGUF of type `qtype`."""
    config: Any = model.config
    entry = architecture_of(config)
    tensor_type, file_type = GGUF_TYPES[qtype]
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[entry.arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    entry.hyperparameters(writer, config)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(writer, tokenizer, folder, config.vocab_size)
    for tensor_name, data, raw in _tensors(model, entry, tensor_type):
        writer.add_tensor(tensor_name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _tensors(
    model: nn.Module, entry: GgufArchitecture, tensor_type: gguf.GGMLQuantizationType
) -> Iterator[tuple[str, np.ndarray, gguf.GGMLQuantizationType | None]]:
    """(GGUF name, data, raw type) per weight. Vectors (norms) stay F32, as llama.cpp keeps them; a matrix whose
    rows are not whole Q8_0 blocks falls back to F16, as llama.cpp's converter does."""
    config: Any = model.config
    names = gguf.get_tensor_name_map(entry.arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if tied and key == "lm_head.weight":  # llama.cpp reuses token_embd when output.weight is absent
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise GgufRefused(f"weight {key} of a {config.model_type} model has no GGUF tensor name")
        data = entry.tensor(name, tensor.detach().float().cpu().numpy(), config)
        if data.ndim == 1:
            yield name, data.astype(np.float32), None
        elif (
            tensor_type == gguf.GGMLQuantizationType.F16
            or data.shape[-1] % gguf.GGML_QUANT_SIZES[tensor_type][0]
        ):
            yield name, data.astype(np.float16), None
        else:
            yield name, gguf.quants.quantize(data, tensor_type), tensor_type


def export_gguf(
    merged: MergedModel, out_dir: Path, types: Sequence[str], bench: LmBench, name: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write, check and measure model-<type>.gguf for each of `types`, then the Modelfile (on q8_0 when written).
    Returns the variants' rows and the report's `gguf` section; GgufRefused before anything is written."""
    architecture_of(merged.model.config)  # type: ignore[arg-type]
    expected = continuations(merged.model, bench)
    rows, checks = [], {}
    for qtype in types:
        path = out_dir / gguf_name(qtype)
        with staged_path(path) as partial:  # the file takes its name once it has passed its checks
            write_gguf(merged.model, merged.tokenizer, merged.path, partial, qtype, name)
            model, checks[qtype] = _load_and_check(partial, path.name, qtype, merged.model, bench, expected)
        rows.append(measure_lm(f"{qtype}-gguf", "gguf", path, path.stat().st_size / 2**20, model, bench))
        del model  # one loaded file at a time
    served = "q8_0" if "q8_0" in types else types[0]
    write_text(out_dir / MODELFILE, modelfile(merged.tokenizer, gguf_name(served)))
    section = {
        "files": {qtype: str(out_dir / gguf_name(qtype)) for qtype in types},
        "modelfile": str(out_dir / MODELFILE),
        "checks": checks,
        "speed_note": SPEED_NOTE,
    }
    return rows, section


def _load_and_check(
    path: Path, name: str, qtype: str, reference: nn.Module, bench: LmBench, expected: list[Continuation]
) -> tuple[nn.Module, dict[str, Any]]:
    """Load `path` with transformers' GGUF reader; refuse it when it does not compute what `reference` does."""
    folder, file = str(path.parent), path.name
    model: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    diff = max_logit_diff(model, reference, bench)
    figures: dict[str, Any] = {"max_logit_diff": round(diff, 6)}
    if qtype == "f16":
        exact = max_logit_diff(model, _f16_weights(reference), bench)
        if exact > GGUF_ATOL:
            raise GgufMismatchError(
                f"{name}: its logits differ from the merged model's with f16 weights by {exact:.2e} (> {GGUF_ATOL:g})"
            )
        figures["max_logit_diff_to_f16_weights"] = round(exact, 6)
    steps, ties = 0, list[float]()
    for prompt, continuation in zip(bench.prompts, expected, strict=True):
        count, gaps = greedy_disagreements(model, continuation)
        steps, ties = steps + count, ties + gaps
        if gaps and max(gaps) >= TIE_MARGIN:
            raise GgufMismatchError(
                f"{name}: continuing {prompt!r} as the merged model does, it picks another token where the merged "
                f"model prefers its own by {max(gaps):.2f} logits (>= {TIE_MARGIN:g}: not a tie)"
            )
    same_ids = all(
        tokenizer(t)["input_ids"] == bench.tokenizer(t)["input_ids"] for t in bench.texts + bench.prompts
    )
    same_template = getattr(tokenizer, "chat_template", None) == getattr(
        bench.tokenizer, "chat_template", None
    )
    if not (same_ids and same_template):  # transformers' reader may lack a pre-tokenizer llama.cpp knows
        logger.warning(
            "%s: transformers rebuilds a tokenizer with %s from it",
            name,
            "other token ids" if not same_ids else "another chat template",
        )
    logger.info("%s matches the merged model (largest logit difference %.2e)", name, diff)
    return model, figures | {
        "greedy_prompts": len(expected),
        "greedy_steps": steps,
        "greedy_ties_broken": len(
            ties
        ),  # steps picked otherwise where the merged model's top two were < TIE_MARGIN
        "tokenizer_round_trip": same_ids,
        "chat_template_round_trip": same_template,
    }


def _f16_weights(model: nn.Module) -> nn.Module:
    """A copy of `model` whose matrices are rounded to f16 as the f16 file stores them (vectors stay fp32)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.ndim >= 2:
                parameter.copy_(parameter.half().float())
    return rounded
