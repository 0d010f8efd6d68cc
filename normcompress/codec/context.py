"""A learned context model for the near-lossless and lossless residual layer (files without latents).

Each sub-pixel's value is predicted from pixels already decoded: twelve causal neighbours of its own
channel and, in colour, of the channels decoded before it (green, then red, then blue), with those
channels' values at the same pixel. A small MLP per channel turns them into a Laplace's mean and scale
(LOCO-I's median edge detector is its starting point: the features are relative to it). It was trained
on the embedded sample's training images (scripts/train_context_model.py) and ships as
context_model.npz; a file names the version it was coded with.

Decoding goes in wavefronts t = 2y + x: every neighbour read lies on an earlier front, so a whole front
is predicted at once. Encoding predicts front by front too, from the same arrays, so both sides compute
the same numbers; the means and scales are then snapped to a grid (1/16 of a level; 64 log-spaced
scales, scales.py) that a last-bit difference between machines is unlikely to cross.
"""

import functools
from importlib import resources

import constriction
import numpy as np
import torch

from .format import CONTEXT_MODEL_VERSION, check_stream_end, residual_section
from .scales import ScaleTable

OFFSETS = (
    (0, -1),
    (-1, 0),
    (-1, -1),
    (-1, 1),
    (0, -2),
    (-2, 0),
    (-1, -2),
    (-2, -1),
    (-2, 1),
    (-2, 2),
    (0, -3),
    (-3, 0),
)  # all on earlier wavefronts: 2·dy + dx < 0
PAD = 3
OUTSIDE = 128  # the value of pixels outside the image
FEATURE_SCALE = 32.0
SCALES = ScaleTable(0.2, 64.0, 64)  # each Laplace's scale, in pixel levels
ORDERS = {1: (0,), 3: (1, 0, 2)}  # gray; colour: green first


def wavefronts(height: int, width: int):
    """(ys, xs) of each front t = 2y + x, in decoding order."""
    for t in range(2 * (height - 1) + width):
        ys = np.arange(max(0, (t - width + 2) // 2), min(height - 1, t // 2) + 1)
        yield ys, t - 2 * ys


@functools.lru_cache(maxsize=8)
def fronts(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Each front's (ys, xs), its positions in the flattened padded planes, and their neighbours'
    (computed once per image size: decoding a folder of 32x32 images reuses them)."""
    return [(ys, xs, *positions(ys, xs, width)) for ys, xs in wavefronts(height, width)]


def positions(ys: np.ndarray, xs: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (ys, xs) of an image `width` wide as indexes into its flattened padded planes, and their
    neighbours' (one row per pixel, one column per offset)."""
    stride = width + 2 * PAD
    at = (ys + PAD) * stride + xs + PAD
    return at, at[:, None] + np.array([dy * stride + dx for dy, dx in OFFSETS])


def padded(planes: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H + PAD, W + 2 PAD) float32 with OUTSIDE above, left and right."""
    out = np.full((planes.shape[0], planes.shape[1] + PAD, planes.shape[2] + 2 * PAD), OUTSIDE, np.float32)
    out[:, PAD:, PAD:-PAD] = planes
    return out


def features(flat: np.ndarray, slot: int, order: tuple[int, ...], at: np.ndarray, around: np.ndarray) -> tuple:
    """The MLP's input for channel order[slot] at the positions `at` of the flattened padded planes
    (their neighbours at `around`; fronts()), and the MED prediction it is relative to: the neighbours
    of that channel and of the channels before it, and those channels' values at the pixel itself,
    minus the MED, over FEATURE_SCALE."""
    own = flat[order[slot]][around]
    west, north, corner = own[:, 0], own[:, 1], own[:, 2]
    high, low = np.maximum(west, north), np.minimum(west, north)
    med = np.where(corner >= high, low, np.where(corner <= low, high, west + north - corner))
    columns = [flat[c][around] for c in order[:slot]] + [own] + [flat[c][at][:, None] for c in order[:slot]]
    return (np.concatenate(columns, 1) - med[:, None]) / FEATURE_SCALE, med


def feature_count(slot: int) -> int:
    return len(OFFSETS) * (slot + 1) + slot


class ContextModel:
    """The MLPs (one per channel slot: two hidden ReLU layers) in float32 numpy."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.layers = [[(weights[f"s{slot}.w{i}"], weights[f"s{slot}.b{i}"]) for i in range(3)] for slot in range(3)]

    def predict(self, flat, slot, order, at, around) -> tuple[np.ndarray, np.ndarray]:
        """Each position's Laplace mean (pixel levels, on a 1/16 grid) and scale (one of the table's)."""
        inputs, med = features(flat, slot, order, at, around)
        (w0, b0), (w1, b1), (w2, b2) = self.layers[slot]
        hidden = np.maximum(inputs @ w0 + b0, 0)
        hidden = np.maximum(hidden @ w1 + b1, 0) @ w2 + b2
        mean = np.rint((med + hidden[:, 0] * FEATURE_SCALE) * 16) / 16
        return mean.astype(np.float64), SCALES.values[SCALES.index_of_log(hidden[:, 1])]


@functools.cache
def context_model() -> ContextModel:
    with resources.files(__package__).joinpath("context_model.npz").open("rb") as file:
        return ContextModel(dict(np.load(file)))


def _laplace(low: int, high: int):
    return constriction.stream.model.QuantizedLaplace(low, high + 1)


def code_context(target: np.ndarray, max_error: int) -> tuple[np.ndarray, int, int, bytes]:
    """target (C, H, W) int64 -> the decoded pixels (each within max_error), the symbol range and the
    stream. A symbol is the pixel's offset from OUTSIDE in steps of 2D + 1."""
    step = 2 * max_error + 1
    symbols = np.round((target - OUTSIDE) / step).astype(np.int64)
    decoded = np.clip(OUTSIDE + symbols * step, 0, 255)
    order, model = ORDERS[len(target)], context_model()
    flat = padded(decoded).reshape(len(target), -1)
    values, means, scales = [], [], []
    for ys, xs, at, around in fronts(*target.shape[1:]):
        for slot, channel in enumerate(order):
            mean, scale = model.predict(flat, slot, order, at, around)
            values.append(symbols[channel, ys, xs])
            means.append((mean - OUTSIDE) / step)
            scales.append(scale / step)
    low, high = int(symbols.min()), int(symbols.max())
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(
        np.concatenate(values).astype(np.int32), _laplace(low, high), np.concatenate(means), np.concatenate(scales)
    )
    return decoded, low, high, coder.get_compressed().astype("<u4").tobytes()


def decode_context(
    data: bytes, low: int, high: int, max_error: int, channels: int, height: int, width: int, name: str = "file"
) -> np.ndarray:
    """The inverse of code_context: (C, H, W) int64 pixels."""
    step = 2 * max_error + 1
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    order, model, laplace = ORDERS[channels], context_model(), _laplace(low, high)
    pad = padded(np.zeros((channels, height, width), np.float32))
    flat = pad.reshape(channels, -1)  # a view: writes through it fill pad
    for _, _, at, around in fronts(height, width):
        for slot, channel in enumerate(order):
            mean, scale = model.predict(flat, slot, order, at, around)
            symbols = np.asarray(coder.decode(laplace, (mean - OUTSIDE) / step, scale / step))
            flat[channel, at] = np.minimum(np.maximum(OUTSIDE + symbols * step, 0), 255)
    check_stream_end(coder, name, "residual")
    return pad[:, PAD:, PAD:-PAD].astype(np.int64)


def code_context_residual(target: torch.Tensor, max_error: int) -> tuple[torch.Tensor, bytes, bytes]:
    """As residual.code_residual over a flat image, under the learned model: the corrected pixels (the
    target's shape), the file's residual section and its stream."""
    planes = target.numpy().astype(np.int64).reshape(-1, *target.shape[-2:])
    decoded, low, high, data = code_context(planes, max_error)
    section = residual_section(max_error, low, high, bytes([CONTEXT_MODEL_VERSION]), data)
    return torch.from_numpy(decoded.astype(np.uint8)).view(target.shape), section, data
