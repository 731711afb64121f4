"""Structurally pruned BERT-family encoders: shrinking each layer's Linear layers to the heads and FFN neurons it
keeps, and the record of those per-layer shapes that config.json cannot express.

It lives beside the loader, not in export/, because `load_finetuned` must rebuild the shapes of a pruned folder
before its weights fit. transformers 5 removed `prune_heads`, so the shrinking is done here with its
`prune_linear_layer`; BERT's attention forward reshapes with `attention_head_size` and -1 heads, so a layer runs
with any head count once its projections and head count attributes agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

# Encoders whose layers have BERT's layout: attention.self.{query,key,value}, attention.output.dense,
# intermediate.dense, output.dense.
PRUNABLE_TYPES = ("bert", "roberta", "xlm-roberta")
PRUNED_KEY = "pruned"  # the record's key in autoglm.json


def encoder_layers(model: nn.Module) -> list[Any]:  # BERT layers: attribute chains mypy cannot follow
    """The encoder layers of a BERT-family model; a ValueError for an architecture whose layout is not known."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in PRUNABLE_TYPES:
        raise ValueError(
            f"structured pruning supports BERT-family encoders ({', '.join(PRUNABLE_TYPES)}), "
            f"not model type {model_type!r}"
        )
    base: Any = model.base_model
    return list(base.encoder.layer)


def shrink_layer(layer: Any, heads: Sequence[int], neurons: Sequence[int]) -> None:
    """Keep only `heads` (indices into the layer's current heads) and FFN `neurons`, in place."""
    if not heads or not neurons:
        raise ValueError("a pruned layer keeps at least one head and one FFN neuron")
    attention = layer.attention.self
    size = attention.attention_head_size
    columns: Any = torch.cat(
        [torch.arange(h * size, (h + 1) * size) for h in heads]
    )  # (len(heads) * head_dim,)
    for name in ("query", "key", "value"):
        setattr(attention, name, prune_linear_layer(getattr(attention, name), columns, dim=0))
    layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, columns, dim=1)
    attention.num_attention_heads = len(heads)
    attention.all_head_size = len(heads) * size
    kept: Any = torch.as_tensor(list(neurons), dtype=torch.long)
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, kept, dim=0)
    layer.output.dense = prune_linear_layer(layer.output.dense, kept, dim=1)


def pruned_record(heads: Sequence[Sequence[int]], neurons: Sequence[Sequence[int]], config: Any) -> dict:
    """What autoglm.json keeps of a pruning: each layer's kept heads (original numbering) and FFN width."""
    return {
        "num_attention_heads": int(config.num_attention_heads),
        "intermediate_size": int(config.intermediate_size),
        "layers": [
            {"heads": [int(h) for h in kept_heads], "ffn_neurons": len(kept_neurons)}
            for kept_heads, kept_neurons in zip(heads, neurons, strict=True)
        ],
    }


def restore_pruned_shapes(model: nn.Module, record: dict) -> None:
    """Shrink a freshly built model to the shapes of `record`, so the pruned weights load into it."""
    layers = encoder_layers(model)
    if len(record["layers"]) != len(layers):
        raise ValueError(f"the pruned record has {len(record['layers'])} layers, the model {len(layers)}")
    for layer, shape in zip(layers, record["layers"], strict=True):
        shrink_layer(layer, range(len(shape["heads"])), range(int(shape["ffn_neurons"])))
