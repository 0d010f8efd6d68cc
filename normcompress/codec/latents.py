"""The latents' entropy model: per-channel Gaussians (a run's learned prior, or one fitted on its
training images and kept as entropy.json), and the symbols coded under them with constriction's ANS coder.
"""

import hashlib
import json
import weakref
from dataclasses import dataclass

import constriction
import numpy as np
import torch

from ..data import load_run_data
from ..files import atomic_write_json
from ..metrics import to_float
from ..prior import latent_channels
from ..reconstruct import in_batches
from ..runs import Run, StoreError
from .format import HASH_BYTES, CodecError, check_stream_end

DEFAULT_STEP = 0.25  # x the channel std: about 0.03 dB below the unquantised model on CIFAR-10
SYMBOL_RANGE = 32767  # symbols are stored as signed 16-bit bounds


@dataclass
class EntropyModel:
    """Per latent channel: the centre, the quantisation unit at step 1, and the spread (a Gaussian's std).

    A run trained with --rate-lambda brings its learned prior (unit 1, the step it was trained for);
    any other run gets one fitted on its training images (unit = spread = the channel's std).
    """

    mean: torch.Tensor
    unit: torch.Tensor
    spread: torch.Tensor
    default_step: float = DEFAULT_STEP

    def scale(self, step: float) -> torch.Tensor:
        return (self.unit * step).view(1, -1, 1, 1)

    def symbol_std(self, step: float) -> torch.Tensor:
        return self.spread / (self.unit * step)

    @classmethod
    def for_run(cls, run: Run, model: torch.nn.Module, data_dir: str = "data") -> "EntropyModel":
        """The run's learned prior, or a model fitted on its training images the first time it is asked for
        (kept in the run's entropy.json; a damaged one is fitted again)."""
        config = run.train_config()
        channels = latent_channels(model, config.image_size)
        if config.rate_lambda > 0:
            prior = run.load_checkpoint().get("prior")
            try:
                mean, log_scale = prior["mean"].float(), prior["log_scale"].float()
                _check_channels(mean, channels) and _check_channels(log_scale, channels)
            except (TypeError, KeyError, AttributeError, ValueError):
                raise StoreError(f"run {run.id} is damaged: checkpoint.pt holds no usable prior") from None
            spread = log_scale.exp().clamp_min(0.05)
            return cls(mean, torch.ones_like(spread), spread, 1.0)
        saved = _saved_entropy(run, channels)
        if saved is not None:
            return cls(saved[0], saved[1], saved[1])
        data = load_run_data(run, data_dir)
        device = next(model.parameters()).device
        with torch.no_grad():
            latents = in_batches(model.encoder, to_float(data.train), device)
        mean, std = latents.mean((0, 2, 3)), latents.std((0, 2, 3)).clamp_min(1e-6)
        atomic_write_json(
            run.entropy_path,
            {"mean": mean.tolist(), "std": std.tolist(), "fitted_on": data.source, "images": len(data.train)},
        )
        return cls(mean, std, std)


def _check_channels(values: torch.Tensor, channels: int) -> bool:
    if values.shape != (channels,) or not torch.isfinite(values).all():
        raise ValueError("wrong shape or non-finite values")
    return True


def _saved_entropy(run: Run, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """entropy.json's (mean, std), or None when it is missing or does not hold `channels` finite means and
    positive finite stds (it is then fitted again)."""
    if not run.entropy_path.exists():
        return None
    try:
        saved = json.loads(run.read_bytes("entropy.json", 1 << 20).decode("utf-8"))
        mean, std = torch.tensor(saved["mean"], dtype=torch.float32), torch.tensor(saved["std"], dtype=torch.float32)
        _check_channels(mean, channels) and _check_channels(std, channels)
        if not (std > 0).all():
            raise ValueError("std <= 0")
    except (StoreError, ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError):
        return None
    return mean, std


_HASHES: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, bytes]]" = weakref.WeakKeyDictionary()


def weights_hash(model: torch.nn.Module) -> bytes:
    """The file's check that it is decoded with the weights it was made with. Kept per model while none
    of its tensors changes (torch counts every in-place write in a tensor's version; a replaced tensor
    has another address): hashing the weights for every file was a fifth of encoding a folder."""
    state = model.state_dict()
    key = tuple((name, tensor.data_ptr(), tensor._version) for name, tensor in state.items())
    cached = _HASHES.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    value = digest.digest()[:HASH_BYTES]
    _HASHES[model] = (key, value)
    return value


def _symbol_model(low: int, high: int):
    """Quantised Gaussians over [low, high]; each symbol's std comes with it (_symbol_params)."""
    return constriction.stream.model.QuantizedGaussian(low, high + 1)


def _symbol_params(entropy: EntropyModel, step: float, shape) -> tuple[np.ndarray, np.ndarray]:
    """Means (0: symbols are centred) and stds of every symbol, channel by channel, in coding order."""
    stds = entropy.symbol_std(step).double().view(1, -1, 1, 1).expand(*shape).flatten().numpy()
    return np.zeros_like(stds), np.ascontiguousarray(stds)


def quantise(latents: torch.Tensor, entropy: EntropyModel, step: float) -> torch.Tensor:
    """Centred, divided by each channel's step, rounded: the integers a file codes."""
    return torch.round((latents - entropy.mean.view(1, -1, 1, 1)) / entropy.scale(step)).to(torch.int32)


def code_symbols(symbols: torch.Tensor, entropy: EntropyModel, step: float, name: str) -> tuple[bytes, int, int]:
    """The symbols ANS-coded under their channels' quantised Gaussians: the payload and its range."""
    low, high = int(symbols.min()), int(symbols.max())
    if low < -SYMBOL_RANGE - 1 or high > SYMBOL_RANGE:
        raise CodecError(f"{name}: latents out of range for step {step}")
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(
        symbols.flatten().numpy(), _symbol_model(low, high), *_symbol_params(entropy, step, symbols.shape)
    )
    return coder.get_compressed().astype("<u4").tobytes(), low, high


def decode_symbols(payload: bytes, low: int, high: int, entropy: EntropyModel, step: float, shape, name: str):
    """The inverse of code_symbols; a corrupt stream is a CodecError."""
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        flat = coder.decode(_symbol_model(low, high), *_symbol_params(entropy, step, shape))
    except Exception as exc:  # constriction refuses some corrupt streams: one message, like any damage
        raise CodecError(f"{name} is damaged (payload: {type(exc).__name__})") from None
    check_stream_end(coder, name, "payload")
    return torch.from_numpy(np.asarray(flat, dtype=np.int32)).view(*shape)
