"""The near-lossless residual layer: original minus decoded, quantised with step 2D+1 so that every
decoded pixel is within D of the original (D = 0 is lossless), coded pixel by pixel under a Laplace
centred on a prediction from the pixels already decoded (LOCO-I's median edge detector, and green's
error for red and blue).
"""

import struct

import constriction
import numpy as np
import torch

from .format import Header, as_float32, check_stream_end, residual_section


def code_residual(produced: torch.Tensor, target: torch.Tensor, max_error: int):
    """Quantise original - decoded with step 2D+1 and code it; return the corrected pixels and the fields.

    The quantised residual is coded pixel by pixel in diagonal order under a Laplace centred on its
    expectation (_residual_means), with one scale per channel.
    """
    step = 2 * max_error + 1
    residual = target.to(torch.int32) - produced.to(torch.int32)
    q = torch.round(residual.double() / step).to(torch.int32)
    corrected = (produced.to(torch.int32) + q * step).clamp(0, 255).to(torch.uint8)
    if int((corrected.to(torch.int32) - target.to(torch.int32)).abs().max()) > max_error:
        raise AssertionError("the residual layer broke its bound")  # cannot happen: |r - q(2D+1)| <= D
    planes, reconstruction = as_planes(q), as_planes(produced)
    channels, height, width = planes.shape
    decoded = np.zeros((channels, height + 1, width + 1), np.int64)
    decoded[:, 1:, 1:] = as_planes(corrected)
    symbols, means, of_channel = [], [], []  # in decoding order
    for ys, xs in _diagonals(height, width):
        diagonal_means = _residual_means(decoded, reconstruction, step, ys, xs)
        for c in _coding_order(channels):
            symbols.append(planes[c, ys, xs])
            means.append(_channel_mean(diagonal_means, c, planes, ys, xs))
            of_channel.append(np.full(len(ys), c))
    symbols, means, of_channel = np.concatenate(symbols), np.concatenate(means), np.concatenate(of_channel)
    scales = [
        as_float32(max(float(np.abs(symbols[of_channel == c] - means[of_channel == c]).mean()), 0.05))
        for c in range(channels)
    ]  # the Laplace scale that fits each channel's prediction errors
    low, high = int(q.min()), int(q.max())
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(
        symbols.astype(np.int32), _residual_model(low, high), means, np.array(scales, np.float64)[of_channel]
    )
    data = coder.get_compressed().astype("<u4").tobytes()
    section = residual_section(max_error, low, high, struct.pack(f"<{channels}f", *scales), data)
    return corrected, section, data


def decode_residual(header: Header, reconstruction: np.ndarray, name: str = "file") -> np.ndarray:
    """The corrected pixels (C, H, W): the residual decoded diagonal by diagonal as code_residual coded
    it, each value added to the reconstruction as soon as it is known (the next diagonals predict from it)."""
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(header.residual, dtype="<u4").astype(np.uint32))
    model = _residual_model(header.residual_low, header.residual_high)
    step = 2 * header.max_error + 1
    channels, height, width = reconstruction.shape
    planes = np.zeros((channels, height, width), np.int64)
    decoded = np.zeros((channels, height + 1, width + 1), np.int64)
    for ys, xs in _diagonals(height, width):
        means = _residual_means(decoded, reconstruction, step, ys, xs)
        for c in _coding_order(channels):
            mean = _channel_mean(means, c, planes, ys, xs)  # green is decoded first
            values = np.asarray(coder.decode(model, mean, np.full(len(ys), header.residual_scales[c])))
            planes[c, ys, xs] = values
            decoded[c, ys + 1, xs + 1] = np.clip(reconstruction[c, ys, xs] + values * step, 0, 255)
    check_stream_end(coder, name, "residual")
    return decoded[:, 1:, 1:]


def _residual_model(low: int, high: int):
    """Quantised Laplaces over [low, high]; each symbol's mean and scale come with it."""
    return constriction.stream.model.QuantizedLaplace(low, high + 1)


def _med(padded: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector at (ys, xs) from the west, north and north-west neighbours.

    `padded` is (C, H+1, W+1) with the pixels at [:, 1:, 1:] (its zero first row and column are never
    used: _residual_means predicts the image's first row and column otherwise).
    """
    west, north, corner = padded[:, ys + 1, xs], padded[:, ys, xs + 1], padded[:, ys, xs]
    high, low = np.maximum(west, north), np.minimum(west, north)
    return np.where(corner >= high, low, np.where(corner <= low, high, west + north - corner))


def _diagonals(height: int, width: int):
    """Pixels by anti-diagonal: every neighbour _med reads lies on an earlier diagonal, so a decoder can
    predict a whole diagonal at once."""
    for d in range(height + width - 1):
        ys = np.arange(max(0, d - width + 1), min(d, height - 1) + 1)
        yield ys, d - ys


def _residual_means(decoded: np.ndarray, reconstruction: np.ndarray, step: int, ys, xs) -> np.ndarray:
    """The expected quantised residual of each channel on a diagonal (before _channel_mean).

    Each pixel is predicted from its already-decoded neighbours (LOCO-I's median edge detector; on
    the first row its west neighbour, in the first column its north one, and the model's
    reconstruction for the first pixel), and the residual expected is that
    prediction minus the reconstruction, in steps.
    Predicting the residual from neighbouring residuals, the first try, cost 3-4 bpp more on CIFAR-10:
    an autoencoder's residual is far less predictable than the image it comes from.
    """
    predicted = np.where(ys == 0, decoded[:, 1, xs], np.where(xs == 0, decoded[:, ys, 1], _med(decoded, ys, xs)))
    return np.where((ys == 0) & (xs == 0), 0.0, (predicted - reconstruction[:, ys, xs]) / step)


def _channel_mean(means: np.ndarray, channel: int, residual: np.ndarray, ys, xs) -> np.ndarray:
    """Channel `channel`'s expected residual on the diagonal (ys, xs): in colour, red and blue add green's
    error at the same pixel (green is coded first), since an autoencoder errs mostly in luminance."""
    if len(means) == 3 and channel != 1:
        return means[channel] + residual[1, ys, xs] - means[1]
    return means[channel]


def _coding_order(channels: int) -> list[int]:
    return [1, 0, 2] if channels == 3 else [0]  # green first: red and blue lean on it


def as_planes(pixels: torch.Tensor) -> np.ndarray:
    """(C, H, W) int64 from (C, H, W) or a gray (H, W)."""
    return pixels.numpy().astype(np.int64).reshape(-1, *pixels.shape[-2:])
