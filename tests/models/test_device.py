"""Device and precision choice."""

from __future__ import annotations

import pytest
import torch

from open_autoglm.models import choose_placement
from open_autoglm.models import device as device_module


def test_auto_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    placement = choose_placement()
    assert (placement.device, placement.precision, placement.dtype) == ("cpu", "fp32", torch.float32)


def test_bf16_chosen_on_a_cpu_that_runs_it_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert choose_placement().precision == "bf16"


def test_cuda_preferred_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # bf16 only where the GPU runs it natively: emulated bf16 (T4, V100) is slower than fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert choose_placement() == device_module.Placement("cuda", "bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert choose_placement() == device_module.Placement("cuda", "fp32")


def test_forced_choices_are_kept_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_placement("cpu", "fp32").precision == "fp32"
    assert choose_placement("cpu", "bf16").precision == "bf16"
    with pytest.raises(ValueError, match="model.device=cuda"):
        choose_placement("cuda")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        choose_placement("cpu", "fp16")


def test_alias_and_bad_folder(tmp_path) -> None:
    from open_autoglm.models import resolve_model_path

    assert (tmp_path / "x").mkdir() is None
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path / "x"))
    assert resolve_model_path("minilm").endswith("model")
    assert resolve_model_path("org/some-model") == "org/some-model"
