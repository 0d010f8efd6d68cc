"""Image files in and out: opening hostile files safely, and picture grids of originals,
reconstructions and error maps written as PNG.

Built with plain torch and Pillow: importing torchvision for two helpers would cost a training
process about 160 MB of resident memory.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import NormcompressError
from .files import FileError, atomic_write, read_regular

# The largest image any command decodes: 4096x4096. The size is read from the header and checked
# before the pixels are (a 140 KB PNG can claim 12000x12000 and take 10 GB to decode).
if TYPE_CHECKING:  # opening an image file (the app's preview) does not need torch; the grids do
    import torch

MAX_PIXELS = 16 * 2**20
MAX_FILE_BYTES = 256 * 2**20  # above any 16-megapixel image file, even uncompressed 16-bit RGBA


class ImageFileError(NormcompressError):
    def __init__(self, source: Path, reason: str) -> None:
        super().__init__(f"cannot read {source}: {reason}")
        self.reason = reason


def open_image(
    source: Path, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES, follow_symlinks: bool = True
) -> Image.Image:
    """An image file decoded and turned upright; ImageFileError (one line) for anything that is not a
    readable regular image file of at most `max_bytes` and `max_pixels` pixels.

    The bytes are read once through files.read_regular (no FIFO, no device, bounded), so what is checked
    is what is decoded."""
    try:
        data = read_regular(source, max_bytes, follow_symlinks, what="the file")
    except FileError as exc:
        raise ImageFileError(source, str(exc)) from None
    try:
        with warnings.catch_warnings():  # Pillow only warns below 2x its own limit; ours is far lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
        with opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageFileError(
                    source, f"{width}x{height} is more than the {max_pixels:,} pixels an image may have here"
                )
            frames = getattr(opened, "n_frames", 1)
            if frames > 1:  # coding or training on its first frame alone would pass over the rest unsaid
                raise ImageFileError(source, f"it is an animation of {frames} frames; give single images")
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except UnidentifiedImageError:
        raise ImageFileError(
            source, "it is not an image file this program can read (PNG, JPEG, WebP, GIF, BMP, TIFF ...)"
        ) from None
    except Image.DecompressionBombError:
        raise ImageFileError(source, "it claims more pixels than an image may have here") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageFileError(source, f"its image data is damaged or cut off ({_reason(exc)})") from None
    return picture


def _reason(exc: Exception) -> str:
    """Pillow's own words for a damaged file (\"image file is truncated\"), or its kind when it has none."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text[:80] if text else type(exc).__name__


def save_png(picture: Image.Image, path: Path) -> None:
    """A picture as a PNG file, written atomically (whole or not at all)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="png")
    atomic_write(path, buffer.getvalue())


PADDING = 2

ERROR_MAP_FULL_SCALE = 0.25  # mean |error| over channels that the error map shows as white


def error_map(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean |error| in matplotlib's 'hot' colours (black, red, yellow, white) on a fixed scale.

    A fixed scale, not one per image, so that maps from different norms can be compared by eye.
    """
    e = ((output - target).abs().mean(1, keepdim=True) / ERROR_MAP_FULL_SCALE).clamp(0, 1)
    import torch

    return torch.cat([(3 * e).clamp(0, 1), (3 * e - 1).clamp(0, 1), (3 * e - 2).clamp(0, 1)], dim=1)


def comparison_grid(target: torch.Tensor, output: torch.Tensor, scale: int = 3) -> torch.Tensor:
    """Rows: originals, reconstructions, error maps; float images in [0, 1], shape (N, 3, H, W) each."""
    import torch

    rows = torch.cat([target, output.clamp(0, 1), error_map(output, target)]).float().cpu()
    if scale > 1:
        rows = torch.nn.functional.interpolate(rows, scale_factor=scale, mode="nearest")
    columns = len(target)
    _, channels, height, width = rows.shape
    step_y, step_x = height + PADDING, width + PADDING
    grid = torch.ones(channels, 3 * step_y + PADDING, columns * step_x + PADDING)  # white lines between images
    for index, image in enumerate(rows):
        row, column = divmod(index, columns)
        grid[:, PADDING + row * step_y :][:, :height, PADDING + column * step_x :][:, :, :width] = image
    return grid


def write_png(image: torch.Tensor, path: Path) -> None:
    """A float (3, H, W) image in [0, 1] as a PNG, written atomically."""
    import torch

    pixels = image.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    save_png(Image.fromarray(pixels, "RGB"), path)
