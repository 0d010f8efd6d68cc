"""What made a run, recorded in its summary: Python, the packages, and on a GPU the CUDA runtime, the
driver and the device's name, so that a result can be explained or reproduced later."""

import platform
from importlib.metadata import PackageNotFoundError, version

import torch


def package_versions(device: torch.device | None = None) -> dict[str, str]:
    """What made a run: Python and the packages, and on a GPU the CUDA runtime and the driver."""
    versions = {"python": platform.python_version()}
    for name in ("normcompress", "torch", "torchvision"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    if device is not None and device.type == "cuda":
        versions["cuda"] = torch.version.cuda or "unknown"
        versions["driver"] = _driver_version()
    return versions


def _driver_version() -> str:
    """The GPU driver's version, through NVML (nvidia-ml-py, a dependency), or 'unknown'."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            found = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return found.decode() if isinstance(found, bytes) else str(found)
    except Exception:  # no NVML library, an old driver: the run is still recorded
        return "unknown"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
