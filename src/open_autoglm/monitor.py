"""What a run costs the machine: CPU, memory, GPU, disk and network, sampled in a thread to resources.jsonl."""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import psutil
import torch

MB = 2**20

logger = logging.getLogger(__name__)


class ResourceMonitor:
    """Samples this process and its children every `interval_s` seconds, appending one JSON line per sample.

    A daemon thread takes a sample on start, then one per interval, then a last one on exit, so even a very
    short run has a first and a last sample. Each line is flushed at once: a killed run keeps what it sampled,
    and a resumed run appends to the same file. GPU figures are per device (NVML), so they include other
    processes on the same GPU; disk and network counters are system-wide, counted from the monitor's start.
    """

    def __init__(self, path: Path, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: TextIO | None = None
        self._tree = _ProcessTree()
        self._io_start: dict[str, float | None] = {}
        self._started = 0.0  # monotonic
        self._stopped: float | None = None
        self._samples = 0
        self._cpu_sum = 0.0
        self._peak_rss_mb = 0.0
        self._gpu_peak_mb: float | None = None
        self._sampler_cpu_s = 0.0

    def __enter__(self) -> ResourceMonitor:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = _ends_mid_line(self.path)
        self._file = self.path.open("a", encoding="utf-8")
        if torn:
            self._file.write("\n")  # a killed run left half a line; start ours on a line of its own
        self._io_start = _io_counters()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._stopped = time.monotonic()
        if self._file is not None:
            try:
                self._file.close()
            except OSError as err:  # a full disk: the samples are a side record, the run's own error matters
                logger.warning("resource samples not saved to %s: %s", self.path, err.strerror or err)

    def summary(self) -> dict[str, Any]:
        """Figures for summary.json; `overhead_fraction` is the sampler's own CPU time over the wall time."""
        end = self._stopped if self._stopped is not None else time.monotonic()
        seconds = end - self._started if self._started else 0.0
        return {
            "samples": self._samples,
            "seconds": round(seconds, 3),
            "peak_rss_mb": round(self._peak_rss_mb, 1),
            "mean_cpu_percent": round(self._cpu_sum / self._samples, 1) if self._samples else 0.0,
            "gpu_peak_memory_mb": self._gpu_peak_mb,
            "overhead_fraction": self._sampler_cpu_s / seconds if seconds > 0 else 0.0,
        }

    def _run(self) -> None:
        cpu_start = time.thread_time()
        stopped = False
        try:
            while True:
                self._record(self._sample())
                self._sampler_cpu_s = time.thread_time() - cpu_start
                if stopped:
                    return
                stopped = self._stop.wait(self.interval_s)  # once stopped, one more: the last sample
        except OSError as err:  # a full disk, say: the monitor must never take the run down with it
            logger.warning("the resource monitor stopped sampling to %s: %s", self.path, err.strerror or err)
        except Exception:  # anything else is a bug of ours: keep the traceback, still spare the run
            logger.warning("the resource monitor stopped sampling to %s", self.path, exc_info=True)

    def _sample(self) -> dict[str, Any]:
        cpu_percent, rss_mb = self._tree.cpu_and_rss()
        self._peak_rss_mb = max(self._peak_rss_mb, rss_mb)
        io = _io_counters()
        gpus = gpu_samples()
        sample: dict[str, Any] = {
            "time": round(time.time(), 3),
            "elapsed_s": round(time.monotonic() - self._started, 3),
            "cpu_percent": round(cpu_percent, 1),
            "rss_mb": round(rss_mb, 1),
            "peak_rss_mb": round(self._peak_rss_mb, 1),
            "system_memory_percent": psutil.virtual_memory().percent,
        }
        for key, now in io.items():
            start = self._io_start.get(key)
            sample[key] = None if now is None or start is None else round(now - start, 3)
        sample["gpus"] = gpus
        if torch.cuda.is_initialized():  # cheap once CUDA is up; never start CUDA from the monitor
            # PyTorch's allocator peak on the default device: what the model needed, where NVML's figure
            # counts the whole GPU (the allocator's cache and other processes included).
            sample["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1)
        return sample

    def _record(self, sample: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(sample) + "\n")
        self._file.flush()
        self._samples += 1
        self._cpu_sum += sample["cpu_percent"]
        for gpu in sample["gpus"]:
            self._gpu_peak_mb = max(self._gpu_peak_mb or 0.0, gpu["memory_used_mb"])


def read_resources(path: Path) -> list[dict[str, Any]]:
    """The samples in a resources.jsonl; a line a killed run left half-written is skipped, not an error."""
    samples = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                samples.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s:%d: skipped a torn sample (a killed run?)", path, number)
    return samples


class _ProcessTree:
    """CPU and resident memory of this process plus its live descendants (tune's workers, data workers)."""

    def __init__(self) -> None:
        self._root = psutil.Process()
        self._last: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, created) -> (CPU s, wall s)

    def cpu_and_rss(self) -> tuple[float, float]:
        """(CPU % of one core, summed as top shows it; resident MB) over the tree.

        CPU is measured since the previous sample; a process seen for the first time reports its average since
        it started, as top's first frame does, rather than a meaningless figure over a few microseconds.
        """
        now = time.time()
        cpu_percent, rss, seen = 0.0, 0, {}
        for process in [self._root, *self._root.children(recursive=True)]:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss += process.memory_info().rss
                    key = (process.pid, process.create_time())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # exited between listing and reading
            cpu_s = times.user + times.system
            last_cpu_s, last_time = self._last.get(key, (0.0, key[1]))
            cpu_percent += max(0.0, 100 * (cpu_s - last_cpu_s) / max(now - last_time, 1e-3))
            seen[key] = (cpu_s, now)
        self._last = seen
        return cpu_percent, rss / MB


def _io_counters() -> dict[str, float | None]:
    """System-wide disk and network MB so far; None where the platform does not count them."""
    disk = psutil.disk_io_counters()
    net = psutil.net_io_counters()
    return {
        "disk_read_mb": disk.read_bytes / MB if disk else None,
        "disk_write_mb": disk.write_bytes / MB if disk else None,
        "net_sent_mb": net.bytes_sent / MB if net else None,
        "net_recv_mb": net.bytes_recv / MB if net else None,
    }


def gpu_samples() -> list[dict[str, Any]]:
    """Utilisation and memory of every GPU NVML sees; an empty list without a driver or a GPU."""
    import pynvml

    gpus = []
    for index, handle in enumerate(_nvml_handles()):
        try:
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "utilization_percent": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                    "memory_used_mb": round(memory.used / MB, 1),
                    "memory_total_mb": round(memory.total / MB, 1),
                }
            )
        except pynvml.NVMLError as err:  # a GPU that fell off the bus, or a query the driver refuses
            logger.debug("NVML: GPU %d: %s", index, err)
    return gpus


@lru_cache(maxsize=1)
def _nvml_handles() -> tuple[Any, ...]:
    """NVML initialised once per process; no driver (a CPU machine) means no GPUs, quietly."""
    import pynvml

    try:
        pynvml.nvmlInit()
        return tuple(pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount()))
    except pynvml.NVMLError as err:
        logger.debug("NVML unavailable: %s", err)
        return ()


def _ends_mid_line(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as raw:
        raw.seek(-1, 2)
        return raw.read(1) != b"\n"


class PeakMemory:
    """Peak memory during a block: CUDA's allocator peak on a GPU, else resident memory sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cuda = torch.cuda.is_available()

    def __enter__(self) -> PeakMemory:
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda:
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB
