"""Training devices: what is really there, and turning `auto`/`cpu`/`cuda`/`cuda:N` into a torch.device."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import NormcompressError, UsageError
from .text import count

if TYPE_CHECKING:  # torch is imported when a device is asked about, not when the names are read
    import torch

DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


class DeviceError(NormcompressError):
    pass


@dataclass(frozen=True)
class DeviceOption:
    key: str  # what --device takes
    label: str
    available: bool
    reason: str = ""  # why it is unavailable


def cuda_unavailable_reason() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    return "no CUDA device is visible (no GPU, or no driver)"


CPU = DeviceOption("cpu", "CPU", True)


def cpu_only_options(reason: str) -> list[DeviceOption]:
    """The CPU, and CUDA as unavailable with the reason (no CUDA here, or no way to ask)."""
    return [CPU, DeviceOption("cuda", "CUDA (unavailable)", False, reason)]


def device_options() -> list[DeviceOption]:
    """CPU, then each CUDA device by index and name; CUDA as unavailable, with the reason, when absent."""
    import torch

    reason = cuda_unavailable_reason()
    if reason:
        return cpu_only_options(reason)
    return [CPU] + [
        DeviceOption(f"cuda:{i}", f"cuda:{i} {torch.cuda.get_device_name(i)}", True)
        for i in range(torch.cuda.device_count())
    ]


def resolve_device(spec: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit CUDA request without CUDA is an error, never a fallback."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise UsageError(f"unknown device {spec!r}; use {DEVICE_FORMS}")
    reason = cuda_unavailable_reason()
    if reason:
        raise DeviceError(f"device {spec} asked for CUDA, but {reason}; use cpu or auto")
    index, visible = int(match[1] or 0), torch.cuda.device_count()
    if index >= visible:
        names = ", ".join(f"cuda:{i}" for i in range(visible))
        raise DeviceError(f"device {spec} is not there: {count(visible, 'CUDA device')} visible ({names})")
    return torch.device("cuda", index)
