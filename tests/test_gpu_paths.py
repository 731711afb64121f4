"""The GPU code paths, run on a CPU machine with device detection faked: NVML sampling, mixed precision on CUDA,
and one GPU per search worker."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
import torch

from open_autoglm import monitor
from open_autoglm.config import validate_config
from open_autoglm.models import Placement, choose_placement
from open_autoglm.search.worker import run_worker_processes

MB = 2**20


@pytest.fixture
def two_fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML that reports two GPUs, the second of which stops answering."""
    handles = ["gpu0", "gpu1"]
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: len(handles))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: handles[i])
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", lambda h: SimpleNamespace(gpu=87))

    def memory(handle: str) -> SimpleNamespace:
        if handle == "gpu1":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return SimpleNamespace(used=30_000 * MB, total=81_559 * MB)

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", memory)
    monitor._nvml_handles.cache_clear()
    yield
    monitor._nvml_handles.cache_clear()


def test_nvml_samples_reach_the_resource_file_and_the_peak(two_fake_gpus: None, tmp_path: Path) -> None:
    assert monitor.gpu_samples() == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "utilization_percent": 87,
            "memory_used_mb": 30_000.0,
            "memory_total_mb": 81_559.0,
        }
    ]  # the lost GPU is left out, not an error
    with monitor.ResourceMonitor(tmp_path / "resources.jsonl", interval_s=1.0) as running:
        pass
    assert running.summary()["gpu_peak_memory_mb"] == 30_000.0
    assert monitor.read_resources(tmp_path / "resources.jsonl")[-1]["gpus"][0]["utilization_percent"] == 87


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


def test_cuda_trains_in_bf16_with_amp_and_not_on_the_cpu(
    fake_cuda: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from open_autoglm.train import arguments

    # the real TrainingArguments would start CUDA; what we choose is what it is given
    monkeypatch.setattr(arguments, "TrainingArguments", lambda **given: SimpleNamespace(**given))
    placement = choose_placement("auto", "auto")
    assert placement == Placement("cuda", "bf16")
    config = validate_config({"name": "gpu", "output_dir": str(tmp_path)})
    args = arguments.build_training_args(
        config.train, placement, tmp_path / "checkpoint", lm_task=False, run_name="gpu"
    )
    assert args.bf16 and not args.fp16 and not args.use_cpu
    fp16 = arguments.build_training_args(
        config.train, Placement("cuda", "fp16"), tmp_path / "ckpt", lm_task=False, run_name="gpu"
    )
    assert fp16.fp16 and not fp16.bf16 and not fp16.use_cpu
    cpu = arguments.build_training_args(
        config.train, Placement("cpu", "fp32"), tmp_path / "ckpt", lm_task=False, run_name="gpu"
    )
    assert cpu.use_cpu and not cpu.bf16 and not cpu.fp16


def test_each_search_worker_gets_its_own_gpu(
    fake_cuda: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class Recorded:
        def __init__(self, command: list[str], env: dict[str, str], **kwargs: Any) -> None:
            started.append(env)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    config = validate_config({"name": "gpus", "output_dir": str(tmp_path), "search": {"workers": 3}})
    config.run_dir.mkdir(parents=True)
    run_worker_processes(config, study=None, deadline=None)  # type: ignore[arg-type]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == ["0", "1", "0"]  # round robin over 2 GPUs
