"""Reconstruct images of any size and mode with a model trained on fixed-size crops, by tiling.

The image is padded (edge replication) to a multiple of the tile size, cut into tiles, passed
through the model as one batch, stitched and cropped back. Gray images come back gray and RGBA
images keep their alpha; errors are measured on the colour channels the output keeps.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import open_image, save_png
from .metrics import psnr_from_mse, to_float


@dataclass
class Reconstruction:
    source: Path
    output: Path
    size: tuple[int, int]
    mode: str
    psnr: float
    max_error: int  # in pixel levels, 0-255


def to_tiles(image: torch.Tensor, tile: int = 32) -> tuple[torch.Tensor, int, int]:
    """uint8 (3, H, W) -> float tiles (rows * cols, 3, tile, tile), edge-padded, and the grid's rows and cols."""
    _, height, width = image.shape
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    padded = torch.nn.functional.pad(
        to_float(image.unsqueeze(0)), (0, cols * tile - width, 0, rows * tile - height), mode="replicate"
    )
    tiles = padded.unfold(2, tile, tile).unfold(3, tile, tile)  # 1, 3, rows, cols, tile, tile
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, tile, tile), rows, cols


def from_tiles(tiles: torch.Tensor, rows: int, cols: int, height: int, width: int) -> torch.Tensor:
    """The inverse of to_tiles: float tiles -> uint8 (3, height, width)."""
    tile = tiles.shape[-1]
    image = tiles.float().cpu().reshape(rows, cols, 3, tile, tile).permute(2, 0, 3, 1, 4)
    image = image.reshape(3, rows * tile, cols * tile)[:, :height, :width]
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


TILE_BATCH = 1024  # tiles a network sees at once (the decoder of a file sees the same batches on both sides)


def in_batches(function, tiles: torch.Tensor, device: torch.device, batch: int = TILE_BATCH) -> torch.Tensor:
    return torch.cat([function(tiles[i : i + batch].to(device)).float().cpu() for i in range(0, len(tiles), batch)])


@torch.no_grad()
def reconstruct_tensor(model: torch.nn.Module, image: torch.Tensor, tile: int = 32) -> torch.Tensor:
    """uint8 (3, H, W) -> uint8 (3, H, W), tile by tile."""
    tiles, rows, cols = to_tiles(image, tile)
    return from_tiles(in_batches(model, tiles, next(model.parameters()).device), rows, cols, *image.shape[1:])


def read_image(source: Path) -> tuple[Image.Image, torch.Tensor]:
    """An image file as opened (upright) and as uint8 RGB (3, H, W); NormcompressError if unreadable."""
    original = open_image(source)
    return original, torch.from_numpy(np.asarray(original.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


def reconstruct_file(model: torch.nn.Module, source: Path, output: Path, tile: int = 32) -> Reconstruction:
    """Reconstruct one image file into `output` (a PNG, written atomically); NormcompressError if unreadable."""
    original, rgb = read_image(source)
    recon = reconstruct_tensor(model, rgb, tile)
    picture = Image.fromarray(recon.permute(1, 2, 0).numpy(), "RGB")
    gray = original.mode in ("L", "LA", "I", "I;16", "F", "1")
    if gray:
        picture = picture.convert("L")
        target = torch.from_numpy(np.asarray(original.convert("L"), dtype=np.uint8).copy()).float()
        produced = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy()).float()
    else:
        target, produced = rgb.float(), recon.float()
    if "A" in original.getbands():
        picture.putalpha(original.getchannel("A"))
    save_png(picture, output)
    error = (produced - target).abs()
    return Reconstruction(
        source,
        output,
        original.size,
        original.mode,
        psnr_from_mse(error.div(255).pow(2).mean().item()),
        int(error.max().item()),
    )
