"""PyTorch dynamic INT8: nn.Linear weights stored as int8, activations quantized on the fly per batch.

The result is measured, not saved: its packed int8 parameters are not plain tensors, so safetensors cannot hold
them; the deployable INT8 artifacts are the ONNX ones. Its size is that of its serialised state dict.
torch.ao.quantization is deprecated in favour of torchao, which is not a dependency; it still works in torch 2.13.
"""

from __future__ import annotations

import copy
import io

import torch
from torch import nn


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A dynamically quantized copy of `model` (fp32 model left as it is); CPU only, as PyTorch's kernels are."""
    fp32 = copy.deepcopy(model).to("cpu").eval()
    return torch.ao.quantization.quantize_dynamic(fp32, {nn.Linear}, dtype=torch.qint8)


def serialised_size_mb(model: nn.Module) -> float:
    """Bytes of `torch.save(state_dict)` in MB: the size on disk the model would take."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20
