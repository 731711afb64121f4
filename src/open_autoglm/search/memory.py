"""Peak training memory of a trial, estimated before its model loads, and the largest batch that fits.

A trial that runs out of memory wastes its start-up and can take the study process down with it. With an
estimate the search can shrink the batch (keeping the effective batch by accumulating gradients) or record
the trial as failed without starting it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # a dependency of accelerate
import torch
from safetensors import safe_open
from transformers import AutoConfig, PretrainedConfig

from open_autoglm.config import Config
from open_autoglm.methods import METHODS, ModelShape
from open_autoglm.methods.params import method_params
from open_autoglm.models import choose_placement
from open_autoglm.tasks import TASKS

# Extra states per trainable parameter, fp32 each. SGD counts its momentum buffer (our default momentum is 0.9).
_OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 1}


def read_model_shape(
    model_path: str, trust_remote_code: bool = False, revision: str | None = None
) -> ModelShape:
    """The shape from config.json; the parameter count from the safetensors headers where the folder has them."""
    cfg = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code, revision=revision)
    hidden = _first(cfg, "hidden_size", "d_model", "n_embd")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers")
    intermediate = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
    params = count_parameters_from_headers(model_path)
    if params is None:
        params = _params_from_config(cfg, hidden, layers, intermediate)
    heads = _first(cfg, "num_attention_heads", "n_head", "num_heads")
    return ModelShape(hidden, layers, heads, intermediate, cfg.vocab_size, params)


def count_parameters_from_headers(model_path: str | Path) -> int | None:
    """Sum of the tensor shapes in a local folder's safetensors files (headers only, no data read); None if none."""
    files = sorted(Path(model_path).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            total += sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
    return total


def _first(cfg: PretrainedConfig, *names: str) -> int:
    for name in names:
        if getattr(cfg, name, None) is not None:
            return int(getattr(cfg, name))
    raise ValueError(f"{type(cfg).__name__} has none of {names}; cannot estimate its memory")


def _params_from_config(cfg: PretrainedConfig, hidden: int, layers: int, intermediate: int) -> int:
    """A hub model not downloaded yet: embeddings, four attention projections and a (gated for SiLU) MLP."""
    mlp_matrices = 3 if getattr(cfg, "hidden_act", "") == "silu" else 2
    embeddings = cfg.vocab_size * hidden * (1 if getattr(cfg, "tie_word_embeddings", True) else 2)
    return embeddings + layers * (4 * hidden * hidden + mlp_matrices * hidden * intermediate)


def trainable_parameters(method: str, params: Mapping[str, Any], shape: ModelShape) -> int:
    """How many parameters `method` trains on a model of `shape`, by the method's own formula (the task head left
    out; a method without one counts as full fine-tuning, see `BaseMethod.trainable_params`)."""
    return int(METHODS.get(method).trainable_params(shape, params))


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one training step, by what holds them."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    workspace: int  # autocast's low-precision weight copies, temporaries and allocator slack

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.workspace


def estimate_peak_bytes(
    shape: ModelShape,
    batch_size: int,
    seq_len: int,
    *,
    method: str = "full",
    method_params: Mapping[str, Any] | None = None,
    trainable: int | None = None,
    precision: str = "fp32",
    optimizer: str = "adamw",
    gradient_checkpointing: bool = False,
    lm_logits: bool = False,
) -> MemoryEstimate:
    """Peak memory of a training step; `trainable` (a count seen in an earlier trial) overrides the formula.

    Weights load in fp32 (the master copy, see `load_model`), so do gradients and optimizer states; bf16/fp16
    lowers the activations and adds autocast's weight copies. `lm_logits`: the model scores every position over the vocabulary (LM tasks).
    """
    params = method_params or {}
    if trainable is None:
        trainable = trainable_parameters(method, params, shape)
    mixed = precision in ("bf16", "fp16")
    # The reference counts 16-bit activations; fp32 doubles them. Under autocast we measured 0.78 of fp32, not
    # half (BERT on CPU): norms and softmax stay fp32, and linear inputs are kept as fp32 and as 16-bit casts.
    scale = 1.5 if mixed else 2.0
    b, s, h, i, a = batch_size, seq_len, shape.hidden, shape.intermediate, shape.heads
    # Korthikanti et al. 2022, "Reducing activation recomputation in large transformer models", eq. 1: a block
    # stores 34*s*b*h + 5*a*s^2*b bytes in 16-bit. Its 34 assumes an MLP of 4h; 16 of it is 4*s*b*i, so we
    # write 18*s*b*h + 4*s*b*i for any MLP width.
    block = int(scale * (18 * s * b * h + 4 * s * b * i + 5 * a * s * s * b))
    # Only blocks that gradients flow through keep activations (freeze trains the top N, the others all).
    kept = METHODS.get(method).blocks_with_activations(shape, params)
    # Checkpointing keeps each block's input (2*s*b*h) and recomputes one block at a time. Either way backward
    # holds one block's activation gradients on top (the embeddings' activations are in the same margin).
    checkpointed = int(kept * scale * 2 * s * b * h) + 2 * block
    activations = checkpointed if gradient_checkpointing else (kept + 1) * block
    if lm_logits:  # the logits, their fp32 log-softmax for the loss, and its gradient
        activations += b * s * shape.vocab * ((2 if mixed else 4) + 8)
    weights = 4 * shape.params
    gradients = 4 * trainable
    states = 4 * _OPTIMIZER_STATES[optimizer] * trainable
    casts = 2 * trainable if mixed else 0  # autocast caches a 16-bit copy of each trained weight
    # Temporaries and allocator slack: with 20% the estimate came to 0.77-0.95 of the peak RSS growth we measured
    # (BERT, 2-8 layers, batch 4-16, fp32 and bf16 on CPU).
    workspace = casts + (weights + gradients + states + activations) // 5
    return MemoryEstimate(weights, gradients, states, activations, workspace)


def available_bytes(device: str, safety: float = 0.9) -> int:
    """Memory a trial may take on `device`, times a margin for what the estimate misses."""
    if device.startswith("cuda"):
        index = torch.device(device).index
        free, _ = torch.cuda.mem_get_info(index)
        # what the caching allocator still holds from an earlier trial is free to this process
        free += torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    else:  # CPU, and MPS, whose memory is the machine's
        free = psutil.virtual_memory().available
    return int(free * safety)


@dataclass(frozen=True)
class BatchPlan:
    batch_size: int
    grad_accum: int
    estimated_bytes: int
    fits: bool
    reason: str


def fit_batch(
    batch_size: int, grad_accum: int, estimate_fn: Callable[[int], int], budget_bytes: int
) -> BatchPlan:
    """The largest batch up to `batch_size` whose estimate fits; more accumulation keeps the effective batch.

    Candidates are the divisors of `batch_size` (halvings where it is a power of two), so an odd size such as
    12 -> 6 -> 3 keeps batch_size * grad_accum exact.
    """
    effective = batch_size * grad_accum
    asked = estimate_fn(batch_size)
    for size in (d for d in range(batch_size, 0, -1) if batch_size % d == 0):
        needed = asked if size == batch_size else estimate_fn(size)
        if needed <= budget_bytes:
            reason = (
                "fits as asked"
                if size == batch_size
                else f"batch {batch_size} needs ~{_gib(asked)} of the {_gib(budget_bytes)} budget; "
                f"{size} x {effective // size} accumulation steps keep the effective batch {effective}"
            )
            return BatchPlan(size, effective // size, needed, True, reason)
    reason = f"even batch 1 needs ~{_gib(needed)}, over the {_gib(budget_bytes)} budget"
    return BatchPlan(1, effective, needed, False, reason)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def plan_batch(
    config: Config, model_path: str, trainable_hint: int | None = None, device: str | None = None
) -> BatchPlan:
    """One call for the search loop: the trial's batch plan against free memory on its device."""
    placement = choose_placement(device or config.model.device, config.model.precision)
    shape = read_model_shape(model_path, config.model.trust_remote_code, config.model.revision)
    params = method_params(config.method).model_dump()
    seq_len = config.data.max_length + params.get("num_virtual_tokens", 0)  # prompt methods add tokens
    train = config.train

    def estimate(batch_size: int) -> int:
        return estimate_peak_bytes(
            shape,
            batch_size,
            seq_len,
            method=config.method.name,
            method_params=params,
            trainable=trainable_hint,
            precision=placement.precision,
            optimizer=train.optimizer.name,
            gradient_checkpointing=train.gradient_checkpointing,
            lm_logits=TASKS.get(config.task).kind != "classification",
        ).total

    return fit_batch(train.batch_size, train.grad_accum, estimate, available_bytes(placement.device))
