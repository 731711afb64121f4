"""Depth-aware training: layer-wise learning-rate decay and freezing the bottom layers.

Lower layers hold general features that fine-tuning should move least (Howard & Ruder 2018; Clark et al. 2020).
With L transformer layers counted from 0 at the bottom and decay d, layer k trains at lr · d^(L - k), the embeddings
at lr · d^(L + 1) (one step below the bottom layer, as ELECTRA and BEiT do), and everything after the layer stack —
final norm, pooler, task head, a prompt encoder — at lr. The embeddings are the parameters registered before the
stack, which holds for BERT-family encoders and GPT/Llama-style decoders. A PEFT model's adapter parameters sit inside
the layer they adapt, so they get that layer's rate and freeze with it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from torch import nn

from open_autoglm.methods import MethodNotApplicable
from open_autoglm.methods.freeze import find_layer_stack

EMBEDDINGS = -1  # the depth of the parameters below the first layer


def parameter_depths(model: nn.Module, key: str) -> tuple[dict[str, int | None], int]:
    """Each parameter's depth — EMBEDDINGS, its layer index, or None after the stack — and the number of layers.

    `key` names the config key that asked, for the error on a model without a layer stack.
    """
    try:
        stack_name, layers = find_layer_stack(model)
    except MethodNotApplicable as err:
        raise ValueError(f"{key}: found no stack of transformer layers in {type(model).__name__}") from err
    prefix = f"{stack_name}."
    depths: dict[str, int | None] = {}
    past_stack = False
    for name, _ in model.named_parameters():
        if name.startswith(prefix):
            depths[name] = int(name[len(prefix) :].split(".", 1)[0])
            past_stack = True
        else:
            depths[name] = None if past_stack else EMBEDDINGS
    return depths, len(layers)


def lr_scale(depth: int | None, layers: int, decay: float) -> float:
    """The share of the base rate a parameter at `depth` trains at."""
    if depth is None:
        return 1.0
    if depth == EMBEDDINGS:
        return float(decay ** (layers + 1))
    return float(decay ** (layers - depth))


def layerwise_param_groups(
    model: nn.Module, lr: float, weight_decay: float, decay: float, decay_names: Collection[str]
) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters: one per (rate, weight decay or not).

    `decay_names` are the parameters weight decay applies to (the Trainer's get_decay_parameter_names: not biases
    nor norms). Groups come highest rate first, so the rate the Trainer logs (group 0's) is the head's.
    """
    depths, layers = parameter_depths(model, "train.layer_lr_decay")
    grouped: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            scale = lr_scale(depths[name], layers, decay)
            grouped.setdefault((scale, name in decay_names), []).append(parameter)
    return [
        {"params": params, "lr": lr * scale, "weight_decay": weight_decay if decayed else 0.0}
        for (scale, decayed), params in sorted(
            grouped.items(), key=lambda item: (-item[0][0], not item[0][1])
        )
    ]


def freeze_bottom_layers(model: nn.Module, count: int) -> None:
    """Stop the embeddings and the bottom `count` layers (adapter parameters there included) from training."""
    if count == 0:
        return
    depths, layers = parameter_depths(model, "train.freeze_layers")
    if count >= layers:
        raise ValueError(
            f"train.freeze_layers={count}: the model has {layers} transformer layers, "
            f"so at most {layers - 1} can be frozen"
        )
    for name, parameter in model.named_parameters():
        depth = depths[name]
        if depth is not None and depth < count:
            parameter.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            f"train.freeze_layers={count} left nothing to train: the method trains only the frozen layers"
        )
