"""One line of what the machine is doing: CPU use, this process's memory, and each GPU's use and memory.

normcompress.system reads them (psutil, and NVML where a GPU driver is present: without one the line
simply has no GPU part). It is read at the app's tick (once a second), on the UI thread (each
read takes well under a millisecond), so that watching the machine costs training nothing measurable.
"""

import psutil
from rich.text import Text
from textual.widgets import Static

from normcompress.system import GIB, Nvml
from normcompress.text import pack_lines


def system_text(
    cpu_percent: float, process_percent: float, rss_bytes: int, cores: int, gpus: list[tuple[int, float, float]]
) -> str:
    """`CPU 97% · app 180% of 2 cores · RSS 1.24 GiB · GPU0 97% 5.1/79.6 GiB`."""
    parts = [
        f"CPU {cpu_percent:.0f}%",
        f"app {process_percent:.0f}% of {cores} cores",
        f"RSS {rss_bytes / GIB:.2f} GiB",
    ]
    parts += [f"GPU{i} {use}% {used:.1f}/{total:.1f} GiB" for i, (use, used, total) in enumerate(gpus)]
    return " · ".join(parts)


def pack(text: str, width: int, separator: str = " · ") -> str:
    """The parts of `text` in lines of at most `width` cells, broken between parts, never inside one."""
    return pack_lines([Text(part) for part in text.split(separator)], width, separator).plain


class SystemLine(Static):
    def __init__(self, nvml: Nvml | None = None) -> None:
        super().__init__("", id="system-line")
        self.process = psutil.Process()
        self.nvml = nvml
        self.last = ""
        self._shown = ""

    def on_mount(self) -> None:
        psutil.cpu_percent(None)  # the first call only starts the count
        self.process.cpu_percent(None)
        if self.nvml is None:
            self.nvml = Nvml()

    def sample(self) -> None:
        gpus = []
        for index in range(self.nvml.count):
            try:
                gpus.append(self.nvml.read(index))
            except Exception:  # a GPU that went away or a driver reset: leave it out this time
                continue
        self.last = system_text(
            psutil.cpu_percent(None),
            self.process.cpu_percent(None),
            self.process.memory_info().rss,
            psutil.cpu_count() or 1,
            gpus,
        )
        packed = pack(self.last, self.content_region.width or 80)
        if packed != self._shown:  # a layout pass only when the line count changes: they cost training time
            self.update(Text(packed), layout=packed.count("\n") != self._shown.count("\n"))
            self._shown = packed
