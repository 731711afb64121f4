"""Bottleneck adapters (Houlsby et al. 2019, Pfeiffer et al. 2020) as a PEFT tuner.

Each targeted FFN output projection `f` becomes `x -> f(x) + up(dropout(act(down(f(x)))))`, with `up` initialised
to zero so the adapted model starts out identical to the base. Built on PEFT's `BaseTuner`/`BaseTunerLayer` like
`ln_tuning` or `ia3`, so `PeftModel.save_pretrained` / `PeftModel.from_pretrained` work as for LoRA.

Why PEFT's mappings are filled in by hand instead of calling `peft.register_peft_method`: that function refuses any
name missing from the `PeftType` enum, and an enum cannot be extended without poking its private tables. PEFT keys
its mappings by `peft_type` and accepts a plain string there (`PeftConfig.peft_type: str | PeftType`, and
huggingface/peft#2634 fixed the one place that assumed an enum), so a string key is enough; the prefix and the
duplicate checks of `register_peft_method` are kept. Importing this module registers the tuner, so it must be
imported before `PeftModel.from_pretrained` reads a saved bottleneck adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import torch
from peft.config import PeftConfig
from peft.mapping import (
    PEFT_TYPE_TO_CONFIG_MAPPING,
    PEFT_TYPE_TO_PREFIX_MAPPING,
    PEFT_TYPE_TO_TUNER_MAPPING,
)
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from peft.utils import PeftType
from torch import nn
from transformers.pytorch_utils import Conv1D

PEFT_TYPE = "BOTTLENECK_ADAPTER"  # the `peft_type` written to adapter_config.json
PREFIX = "bottleneck_"  # every adapter parameter lives under a module whose name starts with this

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}

# The FFN's last projection per model type: a regex (full match) or a list of name suffixes, as in PEFT.
# BERT-like encoders need the regex: `layer.N.output.dense` is the FFN, `layer.N.attention.output.dense` is not.
_BERT_LIKE = r".*\.layer\.\d+\.output\.dense"
_BERT_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert", "deberta", "deberta-v2")
_LLAMA_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "glm", "glm4")
FFN_OUTPUT_MODULES: dict[str, str | list[str]] = {
    **dict.fromkeys(_BERT_TYPES, _BERT_LIKE),
    **dict.fromkeys(_LLAMA_TYPES, ["mlp.down_proj"]),
    **dict.fromkeys(("gpt_neox", "falcon", "bloom"), ["mlp.dense_4h_to_h"]),
    "distilbert": ["ffn.lin2"],
    "modernbert": ["mlp.Wo"],
    "gpt2": ["mlp.c_proj"],
    "opt": ["fc2"],
    "phi": ["mlp.fc2"],
    "t5": ["DenseReluDense.wo"],
}


@dataclass
class BottleneckAdapterConfig(PeftConfig):
    """PEFT config of a bottleneck adapter (what adapter_config.json holds)."""

    bottleneck_size: int = field(default=64, metadata={"help": "Width of the down-projection."})
    non_linearity: str = field(default="relu", metadata={"help": f"One of {sorted(ACTIVATIONS)}."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the bottleneck activations."})
    target_modules: list[str] | set[str] | str | None = field(
        default=None,
        metadata={
            "help": "FFN output projections to wrap: name suffixes or one regex. None: per model type."
        },
    )
    exclude_modules: list[str] | str | None = field(default=None, metadata={"help": "Modules never wrapped."})
    modules_to_save: list[str] | None = field(
        default=None,
        metadata={"help": "Extra modules trained and saved in full, e.g. the classification head."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if self.bottleneck_size <= 0:
            raise ValueError(f"bottleneck_size must be > 0, got {self.bottleneck_size}")
        if self.non_linearity not in ACTIVATIONS:
            raise ValueError(
                f"non_linearity must be one of {sorted(ACTIVATIONS)}, got {self.non_linearity!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)  # PEFT's convention for suffix lists


def _out_features(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, Conv1D):  # GPT-2's transposed linear, weight (in, out)
        return layer.nf
    raise ValueError(f"bottleneck adapters wrap nn.Linear or Conv1D outputs, got {type(layer).__name__}")


class BottleneckAdapterLayer(nn.Module, BaseTunerLayer):
    """Wraps one projection and adds the bottleneck of each active adapter to its output, one after the other."""

    adapter_layer_names = ("bottleneck_down", "bottleneck_up")
    other_param_names = ("bottleneck_act", "bottleneck_dropout")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: BottleneckAdapterConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.out_features = _out_features(self.get_base_layer())
        self.bottleneck_down = nn.ModuleDict()
        self.bottleneck_up = nn.ModuleDict()
        self.bottleneck_act = nn.ModuleDict()
        self.bottleneck_dropout = nn.ModuleDict()
        self.merged_adapters: list[str] = []
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: BottleneckAdapterConfig) -> None:
        """Add (or replace) the bottleneck called `adapter_name`; its up-projection starts at zero."""
        weight = next(self.get_base_layer().parameters())
        device = weight.device
        dtype = weight.dtype if weight.is_floating_point() else None  # None (float32) under a quantized base
        self.bottleneck_down[adapter_name] = nn.Linear(
            self.out_features, config.bottleneck_size, device=device, dtype=dtype
        )
        up = nn.Linear(config.bottleneck_size, self.out_features, device=device, dtype=dtype)
        nn.init.zeros_(up.weight)
        nn.init.zeros_(up.bias)
        self.bottleneck_up[adapter_name] = up
        self.bottleneck_act[adapter_name] = ACTIVATIONS[config.non_linearity]()
        self.bottleneck_dropout[adapter_name] = (
            nn.Dropout(config.dropout) if config.dropout else nn.Identity()
        )
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)  # (..., out_features)
        if self.disable_adapters:
            return result
        for name in self.active_adapters:
            if name not in self.bottleneck_down:
                continue
            down = self.bottleneck_down[name]
            h = down(result.to(down.weight.dtype))  # (..., bottleneck_size)
            h = self.bottleneck_dropout[name](self.bottleneck_act[name](h))
            result = result + self.bottleneck_up[name](h).to(result.dtype)
        return result

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise NotImplementedError(
            "a bottleneck adapter is non-linear and cannot be merged into the base weights"
        )

    def __repr__(self) -> str:
        return "bottleneck_adapter." + super().__repr__()


class BottleneckAdapterModel(BaseTuner):
    """The PEFT tuner: wraps every targeted module in a `BottleneckAdapterLayer`."""

    prefix: str = PREFIX
    tuner_layer_cls = BottleneckAdapterLayer
    # PEFT types this as name lists, but its `_prepare_adapter_config` takes a regex string too (BERT needs one)
    target_module_mapping = FFN_OUTPUT_MODULES  # type: ignore[assignment]

    def _create_and_replace(
        self,
        peft_config: PeftConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
        parameter_name: str | None = None,
    ) -> None:
        assert isinstance(peft_config, BottleneckAdapterConfig)
        if isinstance(target, BottleneckAdapterLayer):
            target.update_layer(adapter_name, peft_config)
            return
        new_module = BottleneckAdapterLayer(target, adapter_name, peft_config)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)  # an added, inactive adapter is not trained
        self._replace_module(parent, target_name, new_module, target)


def _register_in_peft() -> None:
    """`peft.register_peft_method` without its enum check (see the module docstring), duplicates still refused."""
    key = cast(PeftType, PEFT_TYPE)  # a plain string: PEFT's mappings are typed by the enum but accept it
    if key in PEFT_TYPE_TO_CONFIG_MAPPING or key in PEFT_TYPE_TO_TUNER_MAPPING:
        raise KeyError(f"PEFT already has a method called {PEFT_TYPE!r}")
    if PREFIX in PEFT_TYPE_TO_PREFIX_MAPPING.values():
        raise KeyError(f"PEFT already has a method with the prefix {PREFIX!r}")
    PEFT_TYPE_TO_CONFIG_MAPPING[key] = BottleneckAdapterConfig
    PEFT_TYPE_TO_TUNER_MAPPING[key] = BottleneckAdapterModel
    PEFT_TYPE_TO_PREFIX_MAPPING[key] = PREFIX


_register_in_peft()
