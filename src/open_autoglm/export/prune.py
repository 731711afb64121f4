"""Structured pruning of a BERT-family classifier: attention heads and FFN neurons scored by importance, the
least important share removed (the Linear layers shrink, so the model gets smaller and faster), the kept shapes
recorded for `load_finetuned`.

Importance is first-order Taylor, |activation x gradient| of the classification loss, summed over a sample of
train rows: per head on its slice of the attention output projection's input, per neuron on the FFN down
projection's input (Michel et al. 2019; Molchanov et al. 2019). It is scored by hand because no maintained
library prunes heads and FFN neurons of transformers 5 models (which dropped `prune_heads` and head_mask).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.atomic import staged_path
from open_autoglm.models.pruned import PRUNED_KEY, encoder_layers, pruned_record, shrink_layer
from open_autoglm.run_folder import ModelFolder, ModelMeta, write_model_meta
from open_autoglm.versions import versions

SCORING_BATCH = 16


@dataclass
class Importance:
    heads: list[torch.Tensor]  # per layer, (num_heads,)
    neurons: list[torch.Tensor]  # per layer, (intermediate_size,)


@dataclass
class PrunedModel:
    model: nn.Module  # a pruned copy; the model given to `prune_model` is left as it was
    record: dict[str, Any]  # the kept shapes (see models/pruned.py)
    heads_kept: int
    heads_total: int
    neurons_kept: int
    neurons_total: int
    parameters_before: int
    parameters_after: int


def score_importance(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    truth: Sequence[int],
    max_length: int,
) -> Importance:
    """Taylor importance of every head and FFN neuron: per row, |sum of activation x gradient| over the unit's
    inputs and tokens, summed over rows (a row's signed sum, so opposite effects across tokens cancel)."""
    layers = encoder_layers(model)
    head_size = layers[0].attention.self.attention_head_size
    importance = Importance(
        [torch.zeros(layer.attention.output.dense.in_features // head_size) for layer in layers],
        [torch.zeros(layer.output.dense.in_features) for layer in layers],
    )

    def capture(scores: torch.Tensor, group: int):  # a pre-hook on a Linear: scores its input's units
        def pre_hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            activation = args[0]  # (B, T, units * group)

            def on_grad(grad: torch.Tensor) -> None:
                per_row = (activation * grad).detach().sum(1)  # (B, units * group)
                scores.add_(per_row.view(per_row.shape[0], -1, group).sum(-1).abs().sum(0))

            activation.register_hook(on_grad)

        return pre_hook

    handles = []
    for layer, heads, neurons in zip(layers, importance.heads, importance.neurons, strict=True):
        handles.append(layer.attention.output.dense.register_forward_pre_hook(capture(heads, head_size)))
        handles.append(layer.output.dense.register_forward_pre_hook(capture(neurons, 1)))
    was_training = model.training
    model.eval()  # no dropout: the scores are the deterministic model's
    frozen = [p for p in model.parameters() if not p.requires_grad]  # a merged adapter's base comes frozen
    for parameter in frozen:  # activations have gradients only where some weight before them wants one
        parameter.requires_grad_(True)
    try:
        with torch.enable_grad():
            for start in range(0, len(texts), SCORING_BATCH):
                encoded = tokenizer(
                    list(texts[start : start + SCORING_BATCH]),
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                target = torch.tensor(truth[start : start + SCORING_BATCH])
                loss = nn.functional.cross_entropy(model(**encoded).logits, target, reduction="sum")
                loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        for parameter in frozen:
            parameter.requires_grad_(False)
        model.train(was_training)
    return importance


def choose_kept(scores: Sequence[torch.Tensor], sparsity: float) -> list[list[int]]:
    """Per layer, the units that stay when the `sparsity` share of all units goes, least important first across
    layers. A layer keeps at least one.

    Each score is divided by its layer's mean first. Layers' scales differ: on MiniLM fine-tuned on SST-2 the
    mean FFN neuron score falls tenfold from layer 0 to layer 5, and a raw global ranking keeps 45 of the last
    layer's 1,536 neurons. Measured there at sparsity 0.3 (450 test rows, fp32 accuracy 0.827), raw ranking
    scored 0.831 before and 0.804 after recovery, normalised 0.816 and 0.813: no clear winner within the noise,
    so the normalised ranking and its more even layers."""
    normalised = [s / s.mean().clamp_min(1e-12) for s in scores]
    ranked = sorted(
        ((float(value), layer, unit) for layer, s in enumerate(normalised) for unit, value in enumerate(s)),
    )
    to_remove = round(sparsity * sum(len(s) for s in scores))
    remaining = [len(s) for s in scores]
    removed: set[tuple[int, int]] = set()
    for _, layer, unit in ranked:
        if len(removed) == to_remove:
            break
        if remaining[layer] > 1:
            removed.add((layer, unit))
            remaining[layer] -= 1
    return [[u for u in range(len(s)) if (layer, u) not in removed] for layer, s in enumerate(scores)]


def prune_model(
    model: nn.Module,
    importance: Importance,
    sparsity: float,
    heads: bool = True,
    ffn: bool = True,
) -> PrunedModel:
    """A copy of `model` without the `sparsity` share of its heads (if `heads`) and FFN neurons (if `ffn`)."""
    pruned = copy.deepcopy(model)
    layers = encoder_layers(pruned)
    kept_heads = (
        choose_kept(importance.heads, sparsity) if heads else [list(range(len(s))) for s in importance.heads]
    )
    kept_neurons = (
        choose_kept(importance.neurons, sparsity)
        if ffn
        else [list(range(len(s))) for s in importance.neurons]
    )
    for layer, layer_heads, layer_neurons in zip(layers, kept_heads, kept_neurons, strict=True):
        shrink_layer(layer, layer_heads, layer_neurons)
    return PrunedModel(
        model=pruned,
        record=pruned_record(kept_heads, kept_neurons, pruned.config),
        heads_kept=sum(map(len, kept_heads)),
        heads_total=sum(len(s) for s in importance.heads),
        neurons_kept=sum(map(len, kept_neurons)),
        neurons_total=sum(len(s) for s in importance.neurons),
        parameters_before=_parameters(model),
        parameters_after=_parameters(pruned),
    )


def save_pruned(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    meta: dict[str, Any],
    record: dict[str, Any],
    out_dir: Path,
) -> None:
    """Safetensors, tokenizer, config.json and autoglm.json with the `pruned` record, which `load_finetuned`
    reads to rebuild the shapes config.json cannot express."""
    with staged_path(out_dir) as partial:  # the folder appears whole, or not at all
        partial.mkdir()
        model.save_pretrained(str(partial), safe_serialization=True)  # type: ignore[operator]
        tokenizer.save_pretrained(str(partial))
        pruned_meta = meta | {PRUNED_KEY: record, "versions": versions()}
        write_model_meta(partial, ModelMeta.from_json(pruned_meta, ModelFolder(out_dir).meta))


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
