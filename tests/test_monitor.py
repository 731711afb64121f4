"""The resource monitor: samples cover the run, catch memory peaks (children's too), cost little, survive kills."""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from open_autoglm.monitor import PeakMemory, ResourceMonitor, gpu_samples, read_resources

FIELDS = {
    "time",
    "elapsed_s",
    "cpu_percent",
    "rss_mb",
    "peak_rss_mb",
    "system_memory_percent",
    "disk_read_mb",
    "disk_write_mb",
    "net_sent_mb",
    "net_recv_mb",
    "gpus",
}


def test_samples_cover_the_run(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    started = time.time()
    with ResourceMonitor(path, interval_s=0.2) as monitor:
        time.sleep(2.0)
    samples = read_resources(path)

    assert 7 <= len(samples) <= 14  # about 10; fewer when a busy machine delays the thread
    assert all(sample.keys() >= FIELDS for sample in samples)
    assert samples[0]["elapsed_s"] < 0.2 and samples[0]["time"] - started < 0.5
    assert samples[-1]["elapsed_s"] >= 2.0
    elapsed = [sample["elapsed_s"] for sample in samples]
    assert elapsed == sorted(elapsed)
    assert all(isinstance(sample["gpus"], list) for sample in samples)
    summary = monitor.summary()
    assert summary["samples"] == len(samples)
    assert summary["seconds"] == pytest.approx(2.0, abs=0.3)
    assert summary["peak_rss_mb"] == max(sample["peak_rss_mb"] for sample in samples)


def test_a_very_short_run_has_a_first_and_a_last_sample(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    with ResourceMonitor(path, interval_s=1.0):
        time.sleep(0.1)
    first, last = read_resources(path)
    assert first["elapsed_s"] < 0.1 <= last["elapsed_s"] < 1.0  # taken on exit, not an interval later


def test_peak_rss_catches_an_allocation(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    with ResourceMonitor(path, interval_s=0.1) as monitor:
        time.sleep(0.2)
        # 200 MB mapped and every page written; closing unmaps it, whatever state the process's heap is in
        # (after hundreds of tests a freed numpy array can stay in the allocator's arenas)
        block = mmap.mmap(-1, 200 * 2**20)
        for offset in range(0, len(block), mmap.PAGESIZE):
            block[offset] = 1
        time.sleep(0.5)
        block.close()
        time.sleep(0.2)
    samples = read_resources(path)
    assert samples[-1]["peak_rss_mb"] - samples[0]["rss_mb"] > 150
    assert samples[-1]["peak_rss_mb"] - samples[-1]["rss_mb"] > 150  # the peak outlives the memory
    assert monitor.summary()["peak_rss_mb"] == samples[-1]["peak_rss_mb"]


def test_a_child_process_counts(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    child_code = "import sys, time; block = b'x' * (200 * 2**20); print('ready', flush=True); time.sleep(1.0)"
    before = psutil.Process().memory_info().rss / 2**20
    child = [sys.executable, "-c", child_code]
    with (
        ResourceMonitor(path, interval_s=0.1),
        subprocess.Popen(child, stdout=subprocess.PIPE, text=True) as run,
    ):
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready"
        run.wait()
    assert max(sample["rss_mb"] for sample in read_resources(path)) - before > 150


def test_its_own_cost_is_measured_and_small(tmp_path: Path) -> None:
    with ResourceMonitor(tmp_path / "resources.jsonl", interval_s=0.2) as monitor:
        sum(i * i for i in range(3_000_000))  # keep the process busy, as a run would
        time.sleep(0.5)
    summary = monitor.summary()
    assert 0 < summary["overhead_fraction"] < 0.05  # the 1% claim is benchmarks/monitor_overhead.py's
    assert summary["mean_cpu_percent"] > 0


def test_a_resumed_run_appends(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    for _ in range(2):
        with ResourceMonitor(path, interval_s=1.0):
            pass
    samples = read_resources(path)
    assert len(samples) == 4
    assert samples[2]["time"] >= samples[1]["time"]


def test_a_torn_last_line_is_skipped_and_appending_continues_after_it(tmp_path: Path) -> None:
    path = tmp_path / "resources.jsonl"
    path.write_text(json.dumps({"time": 1.0, "elapsed_s": 0.0}) + '\n{"time": 2.0, "elaps', encoding="utf-8")
    assert read_resources(path) == [{"time": 1.0, "elapsed_s": 0.0}]

    with ResourceMonitor(path, interval_s=1.0):
        pass
    samples = read_resources(path)
    assert len(samples) == 3
    assert samples[-1].keys() >= FIELDS


def test_platforms_without_io_counters_give_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "disk_io_counters", lambda: None)
    monkeypatch.setattr(psutil, "net_io_counters", lambda: None)
    path = tmp_path / "resources.jsonl"
    with ResourceMonitor(path, interval_s=1.0):
        pass
    sample = read_resources(path)[-1]
    assert [sample[key] for key in ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb")] == [
        None
    ] * 4


def test_without_a_gpu_the_list_is_empty(tmp_path: Path) -> None:
    if gpu_samples():
        pytest.skip("this machine has a GPU")
    with ResourceMonitor(tmp_path / "resources.jsonl", interval_s=1.0) as monitor:
        pass
    assert all(sample["gpus"] == [] for sample in read_resources(tmp_path / "resources.jsonl"))
    assert monitor.summary()["gpu_peak_memory_mb"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU PeakMemory reads CUDA's allocator instead")
def test_peak_memory_sees_an_allocation() -> None:
    with PeakMemory(interval=0.05) as peak:
        block = np.ones(100 * 2**20 // 8)
        time.sleep(0.3)
        del block
    assert peak.peak_mb > 100


def test_a_failing_sampler_does_not_break_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import open_autoglm.monitor as monitor_module

    def broken() -> list:
        raise OSError("NVML fell over")

    monkeypatch.setattr(monitor_module, "gpu_samples", broken)
    with ResourceMonitor(tmp_path / "resources.jsonl", interval_s=0.05) as monitor:
        time.sleep(0.1)
    assert monitor.summary()["samples"] == 0
    assert "stopped sampling" in caplog.text
