"""Device and precision choice: CUDA, then MPS, then CPU; bf16 where the hardware runs it natively."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch


@dataclass(frozen=True)
class Placement:
    device: str  # cuda | mps | cpu
    precision: str  # fp32 | bf16 | fp16

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]


def choose_placement(device: str = "auto", precision: str = "auto") -> Placement:
    """Resolve `auto` for device and precision; a forced choice the machine cannot run is an error."""
    chosen = _auto_device() if device == "auto" else device
    if chosen == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device=cuda but no CUDA device is visible (see `autoglm doctor`)")
    if chosen == "mps" and not torch.backends.mps.is_available():
        raise ValueError("model.device=mps but MPS is not available on this machine")
    if precision == "auto":
        precision = "bf16" if supports_bf16(chosen) else "fp32"
    if precision == "fp16" and chosen == "cpu":
        raise ValueError("model.precision=fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return Placement(chosen, precision)


def _auto_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def supports_bf16(device: str) -> bool:
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))  # emulated bf16 is slow
    if device == "cpu":
        return cpu_has_native_bf16()
    return False


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower than fp32."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = cpuinfo.read_text(errors="ignore")
    return "avx512_bf16" in flags or "amx_bf16" in flags
