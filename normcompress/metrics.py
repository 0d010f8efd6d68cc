"""Validation metrics common to every norm: what makes runs trained under different norms comparable."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .text import figures

if TYPE_CHECKING:  # the registry of metrics is read without torch (the CLI's --help, the app's chart)
    import torch
    from torch import nn


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    column: str  # a table column's header
    format: str = ".4g"  # how a table shows one value
    ideal: float | None = None  # the best value, for a metric where both directions are worse
    bounds: tuple[float, float] = (0.0, 1.0)  # every value the metric can take, for images in [0, 1]

    def possible(self, value: object) -> bool:
        """Whether a value read from a file is one this metric can take (a poisoned cache's 99999 dB is not)."""
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and self.bounds[0] <= value <= self.bounds[1]
        )

    def text(self, value: float | None) -> str:
        return "-" if value is None else f"{value:{self.format}}"

    def cells(self, values: list[float | None]) -> list[str]:
        """A table's column of this metric: a general format (".4g") keeps its significant digits but
        shares one number of decimals down the column (0.051 over 0.04077 read as the larger)."""
        if self.format.endswith("g"):
            return figures(values, int(self.format[1:-1]))
        return [self.text(v) for v in values]

    def score(self, value: float) -> float:
        """Larger is better, whatever the metric's direction: what picks a table's best value."""
        if self.ideal is not None:
            return -abs(value - self.ideal)
        return value if self.higher_is_better else -value


METRICS: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric("psnr", "val PSNR (dB)", True, "PSNR dB", ".2f", bounds=(0.0, 100.0)),  # see psnr_from_mse
        Metric("mse", "val MSE", False, "MSE"),
        Metric("mae", "val MAE", False, "MAE"),
        Metric("ssim", "val SSIM", True, "SSIM", ".3f", bounds=(-1.0, 1.0)),
        Metric("ms_ssim", "val MS-SSIM", True, "MS-SSIM", ".3f", bounds=(-1.0, 1.0)),
        Metric("maxabs_mean", "val mean per-image max-abs error", False, "max|e| mean", ".3f"),
        Metric("maxabs_worst", "val worst max-abs error", False, "max|e| worst", ".3f"),
        # Mean gradient magnitude of the reconstructions over the originals': below 1 blurrier, above 1 noisier.
        Metric(
            "sharpness",
            "val sharpness (gradient ratio, 1 = as sharp)",
            True,
            "sharpness",
            ".3f",
            ideal=1.0,
            bounds=(0.0, 1e12),
        ),  # a ratio of sums, the original's at least 1e-12
        # Codec models only (and the quantised PCA they are measured against): the entropy model's bits for
        # the rounded latents, per pixel, without a file's container (`normcompress rd` counts whole files).
        Metric("bpp", "val rate (bits per pixel, entropy model's estimate)", False, "bpp", ".3f", bounds=(0.0, 1e4)),
    ]
}
# What the machine did in each epoch (normcompress.system): kept per epoch, never a final metric.
SYSTEM_METRICS: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric("images_per_s", "training speed (images/s)", True, "img/s", ",.0f", bounds=(0.0, 1e12)),
        Metric("cpu_percent", "training process CPU (% of one core)", False, "CPU %", ".0f", bounds=(0.0, 1e6)),
        Metric("rss_gib", "training process memory (GiB resident)", False, "RSS GiB", ".2f", bounds=(0.0, 1e6)),
        Metric("gpu_percent", "GPU use (% of time busy, NVML)", True, "GPU %", ".0f", bounds=(0.0, 100.0)),
        Metric("gpu_memory_gib", "GPU memory (GiB, most torch held)", False, "GPU GiB", ".2f", bounds=(0.0, 1e6)),
    ]
}
MS_SSIM_MIN_SIZE = 161  # five scales of an 11-pixel window: pytorch-msssim needs sides over 160
# The training loss is in the run's own norm, so it only compares runs of the same norm.
TRAIN_LOSS = Metric("loss", "training loss (the run's norm)", False, "loss")
ALL_METRICS: dict[str, Metric] = {TRAIN_LOSS.key: TRAIN_LOSS, **METRICS, **SYSTEM_METRICS}
# The metrics every table and study reports (MS-SSIM only exists for images over 160 px).
TABLE_METRICS = ("psnr", "mse", "mae", "ssim", "maxabs_mean", "maxabs_worst", "sharpness")
# Beside them where a run has it: the rate of a codec model (a model with OWN_RATE).
RATE_METRICS = ("bpp",)
EPOCH_METRICS = ("loss", *TABLE_METRICS)  # a run's per-epoch table


def epoch_table(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """A run's per-epoch table, headers and rows: the metrics every run has, then the machine's figures
    its records hold (no GPU columns for a run on the CPU), each column with one number of decimals."""
    keys = EPOCH_METRICS + tuple(k for k in SYSTEM_METRICS if any(r.get(k) is not None for r in records))
    columns = [[str(r["epoch"]) for r in records], *(ALL_METRICS[k].cells([r.get(k) for r in records]) for k in keys)]
    return ["epoch", *(ALL_METRICS[k].column for k in keys)], [list(row) for row in zip(*columns, strict=True)]


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for images in [0, 1]; a perfect reconstruction is reported as 100 dB, not infinity."""
    return 100.0 if mse <= 1e-10 else 10 * math.log10(1 / mse)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1], the one conversion used by training and evaluation."""
    return images.float().div_(255)


def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Each image's mean absolute difference between neighbouring pixels (horizontal and vertical, every
    channel): the edge energy that blurring removes. (N, C, H, W) -> (N,)."""
    across = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).sum(1)
    down = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).sum(1)
    count = images[0, :, :, 1:].numel() + images[0, :, 1:, :].numel()
    return (across + down) / count


CPU_VALIDATION_BATCH = 128  # both faster and lighter than 512 on the CPU (27 MB against 131 MB of peak memory)
GPU_VALIDATION_VALUES = 1024 * 3 * 32 * 32  # a GPU's batch: 1,024 CIFAR-10 images' worth of values (12 MiB)


def validation_batch(image_shape: tuple[int, ...], device_type: str) -> int:
    """Images per validation batch: 128 on the CPU; on a GPU, where a batch of 128 leaves it waiting on
    kernel launches, as many as hold GPU_VALIDATION_VALUES values (1,024 of 32 px, 16 of 256 px)."""
    if device_type == "cpu":
        return CPU_VALIDATION_BATCH
    return max(1, GPU_VALIDATION_VALUES // math.prod(image_shape))


def per_image_errors(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """Each image's MSE, MAE, max-abs error, SSIM and the gradient magnitudes of its reconstruction and of
    itself (1-D CPU tensors), evaluated batch by batch (validation_batch's size unless given); for a model
    with its own rate (OWN_RATE), its bits per pixel too."""
    import torch

    if batch_size is None:
        batch_size = validation_batch(tuple(images.shape[1:]), next(model.parameters()).device.type)
    with torch.no_grad():
        return _per_image_errors(model, images, batch_size)


def _per_image_errors(model: nn.Module, images: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    import torch
    from pytorch_msssim import ms_ssim, ssim

    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {
        "mse": [],
        "mae": [],
        "maxabs": [],
        "ssim": [],
        "gradient": [],
        "target_gradient": [],
    }
    if min(images.shape[-2:]) >= MS_SSIM_MIN_SIZE:
        parts["ms_ssim"] = []
    rated = getattr(model, "OWN_RATE", False)
    if rated:
        parts["bpp"] = []
    was_training = model.training
    model.eval()
    for start in range(0, len(images), batch_size):
        target = to_float(images[start : start + batch_size].to(device, non_blocking=True))
        output = model(target).float()
        error = (output - target).flatten(1)
        parts["mse"].append(error.pow(2).mean(1))
        parts["mae"].append(error.abs().mean(1))
        parts["maxabs"].append(error.abs().amax(1))
        parts["ssim"].append(ssim(output, target, data_range=1.0, size_average=False))
        parts["gradient"].append(gradient_magnitude(output))
        parts["target_gradient"].append(gradient_magnitude(target))
        if "ms_ssim" in parts:
            parts["ms_ssim"].append(ms_ssim(output, target, data_range=1.0, size_average=False))
        if rated:
            parts["bpp"].append(model.image_bits(target).float() / (target.shape[-2] * target.shape[-1]))
    model.train(was_training)
    return {k: torch.cat(v).cpu() for k, v in parts.items()}


def summarize(errors: dict[str, torch.Tensor]) -> dict[str, float]:
    """Reduce per-image errors to the validation metrics; PSNR comes from the split's mean MSE."""
    mse = errors["mse"].double().mean().item()
    extra: dict[str, float] = {k: errors[k].double().mean().item() for k in ("ms_ssim", "bpp") if k in errors}
    return {
        "psnr": psnr_from_mse(mse),
        "mse": mse,
        "mae": errors["mae"].double().mean().item(),
        "ssim": errors["ssim"].double().mean().item(),
        "maxabs_mean": errors["maxabs"].double().mean().item(),
        "maxabs_worst": errors["maxabs"].max().item(),
        # A ratio of sums, not a mean of ratios: a flat image (gradient near 0) cannot dominate it.
        "sharpness": errors["gradient"].double().sum().item()
        / max(errors["target_gradient"].double().sum().item(), 1e-12),
        **extra,
    }


def evaluate(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> dict[str, float]:
    return summarize(per_image_errors(model, images, batch_size))
