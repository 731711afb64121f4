"""How the base model's weights are held: fp32 where they train (the master copy for mixed precision), the
compute precision where a PEFT method freezes them (half the memory), and 4 or 8 bits through bitsandbytes for
QLoRA (`model.quantize`).

bitsandbytes' k-bit kernels need CUDA, so `model.quantize` is refused on any other device before anything loads.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch

from open_autoglm.config.sections import ModelConfig
from open_autoglm.models.device import Placement


@dataclass(frozen=True)
class BaseWeights:
    dtype: torch.dtype
    quantization: Any | None = None  # a transformers BitsAndBytesConfig

    def load_kwargs(self) -> dict[str, Any]:
        """What `from_pretrained` takes for these weights (a k-bit model is placed on the GPU as it loads)."""
        if self.quantization is None:
            return {"dtype": self.dtype}
        return {
            "dtype": self.dtype,
            "quantization_config": self.quantization,
            "device_map": {"": torch.cuda.current_device()},
        }


def bitsandbytes_installed() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def base_weights(model_cfg: ModelConfig, placement: Placement, method: str, frozen: bool) -> BaseWeights:
    """The weights' dtype and quantization for `method` (`frozen`: the method trains adapters, not them)."""
    quantize = model_cfg.quantize
    if quantize != "none":
        if not frozen:
            raise ValueError(
                f"model.quantize={quantize} holds frozen weights in {quantize}: it needs a PEFT method "
                f"(lora, dora, ia3, ...), not method {method!r}, whose weights train"
            )
        if placement.device != "cuda":
            raise ValueError(
                f"model.quantize={quantize} (QLoRA) needs a CUDA GPU: bitsandbytes' k-bit kernels run there "
                f"only, and this run is on {placement.device}; use model.quantize: none"
            )
        if not bitsandbytes_installed():
            raise ValueError(f"model.quantize={quantize} needs bitsandbytes: pip install bitsandbytes")
        return BaseWeights(placement.dtype, _bnb(quantize, placement))
    # Frozen weights in half precision on a GPU, or where model.precision asks for it: a CPU with native bf16
    # picks bf16 autocast by itself, and there memory is plentiful while bf16-rounded frozen weights move a
    # classifier's accuracy (an adapter trained on them is merged into the fp32 weights at export).
    if (
        frozen
        and placement.precision != "fp32"
        and (placement.device == "cuda" or model_cfg.precision != "auto")
    ):
        return BaseWeights(placement.dtype)
    return BaseWeights(torch.float32)


def _bnb(quantize: str, placement: Placement) -> Any:
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(  # QLoRA's recipe (Dettmers et al. 2023): NF4, double quantization
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=placement.dtype,
    )


def upcast_trainable(model: torch.nn.Module) -> None:
    """Weights that train are kept in fp32 even when the frozen ones are not: AdamW's small updates vanish in
    bf16's 8-bit mantissa (a new head copied from bf16 weights would otherwise train in bf16)."""
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
