"""A run's image history: its reconstructions of the same few validation images at every epoch.

One PNG per run (history.png): a row of the originals on top, then one row of reconstructions per
epoch kept, each tile at most TILE_MOST pixels a side, PADDING white between tiles as in recon.png; the
epochs the rows stand for are in the PNG's own text (`epochs: 1,2,3`). It is rewritten whole (and
atomically) each epoch. At most MOST_ROWS epochs are kept: past that the first, the latest and every
2nd (then 4th, 8th...) epoch stay, evenly spaced, so a run of any length holds a bounded strip.

Reading is hostile-safe (open_image's limits, no symlinks, the text checked against the rows) and needs
no torch: the app steps through the frames. Writing takes uint8 arrays (N, H, W, 3).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .files import atomic_write
from .images import ERROR_MAP_FULL_SCALE, PADDING, ImageFileError, open_image

HISTORY_FILE = "history.png"
MOST_ROWS = 64  # epochs kept; see the module's docstring for what goes past it
TILE_MOST = 32  # pixels: larger validation images are shrunk to this for the history
MAX_HISTORY_BYTES = 16 << 20
EPOCHS = re.compile(rf"^[0-9]{{1,7}}(,[0-9]{{1,7}}){{0,{MOST_ROWS - 1}}}$")  # at most MOST_ROWS epochs


class HistoryError(ImageFileError):
    pass


@dataclass
class History:
    epochs: list[int]
    originals: np.ndarray  # (N, side, side, 3) uint8
    reconstructions: np.ndarray  # (rows, N, side, side, 3) uint8

    @property
    def side(self) -> int:
        return self.originals.shape[1]


def _tile_side(height: int, width: int) -> int:
    return min(max(height, width), TILE_MOST)


def _shrink(images: np.ndarray, side: int) -> np.ndarray:
    if images.shape[1] == side and images.shape[2] == side:
        return images
    return np.stack([np.asarray(Image.fromarray(i).resize((side, side), Image.Resampling.BOX)) for i in images])


def _row(images: np.ndarray) -> np.ndarray:
    """Tiles side by side with PADDING white around each: (side + 2P, N (side + P) + P, 3)."""
    count, side = images.shape[0], images.shape[1]
    step = side + PADDING
    row = np.full((side + 2 * PADDING, count * step + PADDING, 3), 255, np.uint8)
    for index, image in enumerate(images):
        row[PADDING : PADDING + side, PADDING + index * step :][:, :side] = image
    return row


def _split(row: np.ndarray, count: int, side: int) -> np.ndarray:
    step = side + PADDING
    return np.stack([row[PADDING : PADDING + side, PADDING + i * step :][:, :side] for i in range(count)])


def add_epoch(path: Path, originals: np.ndarray, reconstructions: np.ndarray, epoch: int) -> int:
    """Add one epoch's reconstructions to the history at `path` (a history that cannot be read, or of
    other images, is started again; the rows of this epoch and later, left by a run that is resumed, are
    replaced). Return the bytes written."""
    side = _tile_side(originals.shape[1], originals.shape[2])
    originals, reconstructions = _shrink(originals, side), _shrink(reconstructions, side)
    try:
        history = read_history(path)
    except HistoryError:
        history = None
    if history is None or history.originals.shape != originals.shape:
        history = History([], originals, np.empty((0, *originals.shape), np.uint8))
    kept = [i for i, e in enumerate(history.epochs) if e < epoch]
    epochs = [history.epochs[i] for i in kept] + [epoch]
    rows = np.concatenate([history.reconstructions[kept], reconstructions[None]])
    chosen = _evenly_kept(epochs)
    epochs, rows = [epochs[i] for i in chosen], rows[chosen]
    picture = np.concatenate([_row(originals), *(_row(r) for r in rows)])
    info = PngImagePlugin.PngInfo()
    info.add_text("epochs", ",".join(map(str, epochs)))
    buffer = io.BytesIO()
    Image.fromarray(picture, "RGB").save(buffer, format="png", pnginfo=info, optimize=True)
    atomic_write(path, buffer.getvalue())
    return buffer.tell()


def _evenly_kept(epochs: list[int]) -> list[int]:
    """Which rows stay: the first, the latest, and the multiples of the smallest power of two that keeps
    at most MOST_ROWS epochs up to the latest (so the rows are evenly spaced, and a row once dropped is
    never wanted again)."""
    stride = 1
    while epochs[-1] // stride + 2 > MOST_ROWS:
        stride *= 2
    return [i for i, e in enumerate(epochs) if i in (0, len(epochs) - 1) or e % stride == 0]


def read_history(path: Path) -> History | None:
    """The history at `path`, None when there is none; HistoryError (one line) for a file that is not
    one this program wrote (its text and its rows disagree, tiles of no size it writes)."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        picture = open_image(path, 4 * 2**20, MAX_HISTORY_BYTES, follow_symlinks=False)
    except HistoryError:
        raise
    except ImageFileError as exc:
        raise HistoryError(path, exc.reason) from None
    text = picture.info.get("epochs")
    if not isinstance(text, str) or not EPOCHS.match(text):
        raise HistoryError(path, "it holds no list of the epochs its rows show")
    epochs = [int(e) for e in text.split(",")]
    if epochs != sorted(set(epochs)):
        raise HistoryError(path, "its epochs are not in order")
    pixels = np.asarray(picture.convert("RGB"))
    rows = len(epochs) + 1
    side, extra = divmod(pixels.shape[0], rows)
    side -= 2 * PADDING
    count, rest = divmod(pixels.shape[1] - PADDING, side + PADDING) if side > 0 else (0, 1)
    if extra or rest or not 0 < side <= TILE_MOST or count < 1:
        raise HistoryError(path, f"its {pixels.shape[1]}x{pixels.shape[0]} pixels are not {rows} rows of tiles")
    height = side + 2 * PADDING
    parts = [_split(pixels[r * height : (r + 1) * height], count, side) for r in range(rows)]
    return History(epochs, parts[0], np.stack(parts[1:]))


def error_map(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """images.error_map on uint8 arrays: mean |error| over channels in black-red-yellow-white, on the
    same fixed scale (so a history frame's map reads as recon.png's)."""
    error = np.abs(output.astype(np.float32) - target.astype(np.float32)).mean(-1, keepdims=True) / 255
    level = np.clip(error / ERROR_MAP_FULL_SCALE, 0, 1)
    rgb = np.concatenate([np.clip(3 * level - k, 0, 1) for k in range(3)], axis=-1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def frame(history: History, index: int) -> Image.Image:
    """Row `index` of the history as recon.png lays out an epoch: originals, reconstructions, error maps."""
    output = history.reconstructions[index]
    rows = [history.originals, output, error_map(output, history.originals)]
    grid = np.concatenate([_row(rows[0]), *(_row(r)[PADDING:] for r in rows[1:])])
    return Image.fromarray(grid, "RGB")


def strip(history: History) -> Image.Image:
    """The whole history as one picture: the originals, then a row per epoch kept."""
    return Image.fromarray(np.concatenate([_row(history.originals), *(_row(r) for r in history.reconstructions)]))


def write_previews(model, preview, recon_path: Path, epoch: int) -> None:
    """After an epoch: recon.png (originals, reconstructions, error maps of the preview images) and the
    epoch's row of the history beside it."""
    import torch

    from .images import comparison_grid, write_png
    from .metrics import to_float

    was_training = model.training
    model.eval()
    with torch.no_grad():
        target = to_float(preview)
        output = model(target).float().clamp(0, 1)
    model.train(was_training)
    write_png(comparison_grid(target, output), recon_path)

    def pixels(images: torch.Tensor) -> np.ndarray:
        return images.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    add_epoch(recon_path.parent / HISTORY_FILE, pixels(target), pixels(output), epoch)
