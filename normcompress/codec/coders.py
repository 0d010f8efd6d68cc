"""How a file's latents become symbols and a stream, and back: one coder per kind of entropy model, so
the codec asks its coder instead of switching on the model.

FactorizedCoder: per-channel Gaussians (a run's learned prior, or one fitted on its training images),
format versions 1 and 2. HyperCoder: the hyperprior model's own side latents and predicted scales,
format version 3.
"""

from typing import Protocol

import torch

from ..runs import Run
from .format import HYPERPRIOR_VERSION, VERSION
from .hyper import code_hyper, decode_hyper
from .latents import EntropyModel, code_symbols, decode_symbols, quantise


class LatentCoder(Protocol):
    version: int  # the format version of the files it writes
    default_step: float

    def code(self, latents: torch.Tensor, step: float, name: str) -> tuple[bytes, int, int, torch.Tensor]:
        """The stream, its symbol range, and the symbols (what the decoder will see)."""
        ...

    def decode(self, payload: bytes, low: int, high: int, step: float, shape: tuple, name: str, device) -> torch.Tensor:
        """The symbols of `shape` from a stream; CodecError when it is damaged."""
        ...

    def latents_of(self, symbols: torch.Tensor, step: float) -> torch.Tensor:
        """What the decoder network is given for these symbols."""
        ...


class FactorizedCoder:
    version = VERSION

    def __init__(self, entropy: EntropyModel) -> None:
        self.entropy = entropy
        self.default_step = entropy.default_step

    def code(self, latents, step, name):
        symbols = quantise(latents, self.entropy, step)
        return (*code_symbols(symbols, self.entropy, step, name), symbols)

    def decode(self, payload, low, high, step, shape, name, device):
        return decode_symbols(payload, low, high, self.entropy, step, shape, name)

    def latents_of(self, symbols, step):
        return symbols.float() * self.entropy.scale(step) + self.entropy.mean.view(1, -1, 1, 1)


class HyperCoder:
    version = HYPERPRIOR_VERSION
    default_step = 1.0  # the step its rate term was trained for

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def code(self, latents, step, name):
        return code_hyper(self.model, latents, step, name)

    def decode(self, payload, low, high, step, shape, name, device):
        return decode_hyper(self.model, payload, low, high, step, shape, name, device)

    def latents_of(self, symbols, step):
        return symbols.float() * step


def coder_for(run: Run, model: torch.nn.Module, data_dir: str = "data") -> LatentCoder:
    """The coder of a run's latents: the model's own (OWN_RATE), or per-channel Gaussians fitted to the run."""
    if model.OWN_RATE:
        return HyperCoder(model)
    return FactorizedCoder(EntropyModel.for_run(run, model, data_dir))
