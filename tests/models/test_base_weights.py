"""How base weights are held: fp32 where they train, the compute precision where a PEFT method freezes them, and
4 / 8 bits for QLoRA on CUDA only (CUDA faked here, as the other GPU paths are)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BitsAndBytesConfig

from open_autoglm.config.sections import ModelConfig
from open_autoglm.models import Placement
from open_autoglm.models import weights as weights_module
from open_autoglm.models.weights import BaseWeights, base_weights


def test_weights_that_train_stay_fp32_and_frozen_ones_take_the_compute_precision() -> None:
    bf16, fp32 = Placement("cpu", "bf16"), Placement("cpu", "fp32")
    assert base_weights(ModelConfig(), bf16, "full", frozen=False) == BaseWeights(torch.float32)
    assert base_weights(ModelConfig(precision="bf16"), bf16, "lora", frozen=True) == BaseWeights(
        torch.bfloat16
    )
    assert base_weights(ModelConfig(), fp32, "lora", frozen=True) == BaseWeights(torch.float32)
    # bf16 chosen by itself on a CPU: frozen weights stay fp32 there; asked for, or on a GPU, they follow it
    assert base_weights(ModelConfig(precision="auto"), bf16, "lora", frozen=True) == BaseWeights(
        torch.float32
    )
    cuda = Placement("cuda", "bf16")
    assert base_weights(ModelConfig(precision="auto"), cuda, "lora", frozen=True) == BaseWeights(
        torch.bfloat16
    )


def test_qlora_on_cuda_loads_nf4_with_double_quantization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_module, "bitsandbytes_installed", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    chosen = base_weights(ModelConfig(quantize="4bit"), Placement("cuda", "bf16"), "lora", frozen=True)
    config = chosen.quantization
    assert isinstance(config, BitsAndBytesConfig)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    kwargs = chosen.load_kwargs()
    assert kwargs["quantization_config"] is config and kwargs["device_map"] == {"": 0}
    eight = base_weights(ModelConfig(quantize="8bit"), Placement("cuda", "fp16"), "dora", frozen=True)
    assert eight.quantization.load_in_8bit and eight.dtype == torch.float16


def test_qlora_is_refused_off_cuda_for_trained_weights_and_without_bitsandbytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    four = ModelConfig(quantize="4bit")
    monkeypatch.setattr(weights_module, "bitsandbytes_installed", lambda: True)
    with pytest.raises(ValueError, match="needs a CUDA GPU.*this run is on cpu"):
        base_weights(four, Placement("cpu", "fp32"), "lora", frozen=True)
    with pytest.raises(ValueError, match="needs a PEFT method .*not method 'full'"):
        base_weights(four, Placement("cuda", "bf16"), "full", frozen=False)
    monkeypatch.setattr(weights_module, "bitsandbytes_installed", lambda: False)
    with pytest.raises(ValueError, match="pip install bitsandbytes"):
        base_weights(four, Placement("cuda", "bf16"), "lora", frozen=True)


def test_lora_in_bf16_holds_the_base_in_bf16_and_trains_the_adapters_in_fp32(
    tmp_path: Path, tiny_decoder: Path, sft_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from open_autoglm.config import validate_config
    from open_autoglm.train.job import fit

    config = validate_config(
        {
            "output_dir": str(tmp_path),
            "task": "sft",
            "model": {"name": str(tiny_decoder), "device": "cpu", "precision": "bf16"},
            "data": {"train": str(sft_file), "max_length": 32, "dedup": {"exact": False, "near": False}},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 2, "lr": 5e-3, "batch_size": 8},
            "quiet": True,
        }
    )
    result = fit(config, tmp_path / "trial")
    dtypes = {(p.requires_grad, p.dtype) for p in result.trainer.model.parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}
    assert result.metrics["validation"]["loss"] < result.baseline["loss"]
