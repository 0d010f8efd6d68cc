"""The hyperprior model's stream (format version 3): side latents, then latents, in one ANS stream.

The side latents z are rounded around their prior's means and coded under its per-channel Gaussians;
the decoder reads them first, predicts every latent's scale from them and reads the latents under
zero-mean Gaussians of those scales. Both sides snap the predicted scales to the same table
(scales.py), so a last-bit difference in the scale network cannot desynchronise the coder; the
symbols of both parts share the header's one symbol range.
"""

import constriction
import numpy as np
import torch

from ..model.hyperprior import SCALE_MIN
from .format import CodecError, check_stream_end
from .latents import SYMBOL_RANGE
from .scales import ScaleTable

LATENT_SCALES = ScaleTable(SCALE_MIN, 64.0, 64)  # in symbol units


def _gaussian(low: int, high: int):
    return constriction.stream.model.QuantizedGaussian(low, high + 1)


def _side_stds(model, shape) -> np.ndarray:
    """The side prior's per-channel stds, for side latents of `shape` (N, C, H, W), in coding order."""
    scale = model.side_prior.scale.detach().double().cpu()
    return np.ascontiguousarray(scale.view(1, -1, 1, 1).expand(*shape).flatten().numpy())


def _latent_stds(model, side: torch.Tensor, step: float, device) -> np.ndarray:
    """Each latent's std in symbol units: the scale predicted from the (rounded, centred) side latents,
    divided by the step, snapped to the table."""
    means = model.side_prior.mean.view(1, -1, 1, 1)
    scales = model.scales(side.to(device).float() + means).double().cpu().numpy() / step
    return np.ascontiguousarray(LATENT_SCALES.snap(scales).ravel())


def code_hyper(model, latents: torch.Tensor, step: float, name: str) -> tuple[bytes, int, int, torch.Tensor]:
    """The stream, its symbol range, and the latent symbols (the decoder's input is symbols x step)."""
    device = next(model.parameters()).device
    side_latents = model.hyper_encoder(latents.to(device).abs())
    side = torch.round(side_latents - model.side_prior.mean.view(1, -1, 1, 1)).to(torch.int32).cpu()
    symbols = torch.round(latents / step).to(torch.int32)
    low, high = min(int(side.min()), int(symbols.min())), max(int(side.max()), int(symbols.max()))
    if low < -SYMBOL_RANGE - 1 or high > SYMBOL_RANGE:
        raise CodecError(f"{name}: latents out of range for step {step}")
    coder = constriction.stream.stack.AnsCoder()
    stds = _latent_stds(model, side, step, device)
    coder.encode_reverse(symbols.flatten().numpy(), _gaussian(low, high), np.zeros_like(stds), stds)
    side_stds = _side_stds(model, side.shape)
    coder.encode_reverse(side.flatten().numpy(), _gaussian(low, high), np.zeros_like(side_stds), side_stds)
    return coder.get_compressed().astype("<u4").tobytes(), low, high, symbols


def decode_hyper(
    model, payload: bytes, low: int, high: int, step: float, shape: tuple, name: str, device
) -> torch.Tensor:
    """The latent symbols of `shape` (tiles, C, H, W); a corrupt stream is a CodecError."""
    side_shape = (shape[0], *model.hyper_encoder(torch.zeros(1, *shape[1:], device=device)).shape[1:])
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        side_stds = _side_stds(model, side_shape)
        side = coder.decode(_gaussian(low, high), np.zeros_like(side_stds), side_stds)
        side = torch.from_numpy(np.asarray(side, dtype=np.int32)).view(side_shape)
        stds = _latent_stds(model, side, step, device)
        symbols = coder.decode(_gaussian(low, high), np.zeros_like(stds), stds)
    except Exception as exc:  # constriction refuses some corrupt streams: one message, like any damage
        raise CodecError(f"{name} is damaged (payload: {type(exc).__name__})") from None
    check_stream_end(coder, name, "payload")
    return torch.from_numpy(np.asarray(symbols, dtype=np.int32)).view(shape)
