"""What the machine did while a run trained: CPU, memory, and each GPU's use and memory.

psutil reads the CPU and memory; NVML (nvidia-ml-py) the GPUs, where a driver is present: without one
there is simply no GPU figure. The app's system line reads these live; training keeps an epoch's worth
with the run (EpochSampler), so that a slow run can be explained afterwards. No torch here: the app
imports this module.
"""

from __future__ import annotations

import functools
import time

import psutil

GIB = 2**30


class Nvml:
    """The GPUs as NVML sees them; `count` is 0 where there is no driver or no GPU."""

    def __init__(self) -> None:
        self.handles: list = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.pynvml = pynvml
        except Exception:  # no library, no driver, no permission: no GPU part, never an error
            self.handles = []

    @property
    def count(self) -> int:
        return len(self.handles)

    def read(self, index: int) -> tuple[int, float, float]:
        """(utilisation %, memory used GiB, memory total GiB) of GPU `index`."""
        handle = self.handles[index]
        memory = self.pynvml.nvmlDeviceGetMemoryInfo(handle)
        return self.pynvml.nvmlDeviceGetUtilizationRates(handle).gpu, memory.used / GIB, memory.total / GIB


@functools.cache
def shared_nvml() -> Nvml:
    """One NVML session per process, opened on first use."""
    return Nvml()


class EpochSampler:
    """One epoch of a training process, as the figures its record keeps: the process's CPU time over the
    epoch's wall time (100 = one core busy), its resident memory at the end, and on a GPU the mean of the
    utilisation NVML reported at each progress report and the most memory torch held (`gpu_index`: the
    training GPU, None on the CPU; `peak_gib`: read by the caller, which holds torch)."""

    def __init__(self, gpu_index: int | None, nvml: Nvml | None = None) -> None:
        self.process = psutil.Process()
        self.gpu_index = gpu_index
        self.nvml = nvml if gpu_index is not None else None
        self.restart()

    def restart(self) -> None:
        times = self.process.cpu_times()
        self._cpu, self._wall = times.user + times.system, time.perf_counter()
        self._gpu_use: list[int] = []

    def sample(self) -> None:
        """A reading of the GPU's use (cheap: called at the progress rate, never per step)."""
        if self.nvml is not None and self.gpu_index is not None and self.gpu_index < self.nvml.count:
            try:
                self._gpu_use.append(self.nvml.read(self.gpu_index)[0])
            except Exception:  # a driver reset: this reading is lost, the run goes on
                pass

    def record(self, peak_gib: float | None = None) -> dict[str, float]:
        """The epoch's figures, for its metrics.jsonl record."""
        times = self.process.cpu_times()
        wall = max(time.perf_counter() - self._wall, 1e-9)
        figures = {
            "cpu_percent": 100 * (times.user + times.system - self._cpu) / wall,
            "rss_gib": self.process.memory_info().rss / GIB,
        }
        if self._gpu_use:
            figures["gpu_percent"] = sum(self._gpu_use) / len(self._gpu_use)
        if peak_gib is not None:
            figures["gpu_memory_gib"] = peak_gib
        return {k: round(v, 4) for k, v in figures.items()}
