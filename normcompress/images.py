"""Picture grids of originals, reconstructions and error maps, written as PNG."""

import io
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from .runs import atomic_write

ERROR_MAP_FULL_SCALE = 0.25  # mean |error| over channels that the error map shows as white


def error_map(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean |error| in matplotlib's 'hot' colours (black, red, yellow, white) on a fixed scale.

    A fixed scale, not one per image, so that maps from different norms can be compared by eye.
    """
    e = ((output - target).abs().mean(1, keepdim=True) / ERROR_MAP_FULL_SCALE).clamp(0, 1)
    return torch.cat([(3 * e).clamp(0, 1), (3 * e - 1).clamp(0, 1), (3 * e - 2).clamp(0, 1)], dim=1)


def comparison_grid(target: torch.Tensor, output: torch.Tensor, scale: int = 3) -> torch.Tensor:
    """Rows: originals, reconstructions, error maps; float images in [0, 1], shape (N, 3, H, W) each."""
    rows = torch.cat([target, output.clamp(0, 1), error_map(output, target)]).float().cpu()
    if scale > 1:
        rows = torch.nn.functional.interpolate(rows, scale_factor=scale, mode="nearest")
    return make_grid(rows, nrow=len(target), padding=2, pad_value=1.0)


def write_png(image: torch.Tensor, path: Path) -> None:
    buffer = io.BytesIO()
    save_image(image, buffer, format="png")
    atomic_write(path, buffer.getvalue())
