"""The scale hyperprior (Ballé et al. 2018) on top of pca-refine: a codec model trained on norm + λ·bits.

The latent y (768 values per 32x32 tile: PCA coordinates as in pca-refine, times a learned per-channel gain,
so that unit-width rounding bins land where rate and distortion balance) is coded under zero-mean
Gaussians whose scales a small network predicts from side latents z = h_a(|y|); z is coded first under
a factorized prior (one Gaussian per channel, prior.GaussianPrior). In training, the rate of y and z is
measured with additive uniform noise; the decoder sees y rounded, with the gradient passed straight
through (the "mixed" quantisation of Minnen & Singh 2020, which beats noise at the decoder), so training
sees the rounding the codec does. The prior is written in torch and coded with constriction
(codec/hyper.py) rather than taken from CompressAI: compressai 1.2.8 resolves here but downgrades numpy
and pulls torch-geometric and pandas, for two small modules.
"""

import math

import torch
from torch import nn

from ..prior import GaussianPrior
from . import PCA_COMPONENTS, balanced_step
from .base import Autoencoder
from .networks import PcaEncoder, PcaRefineDecoder, slow_linear_groups, start_from_pca

SIDE_CHANNELS = 32
SCALE_MIN = 0.11  # the smallest scale h_s predicts (CompressAI's lower bound)


def gaussian_bits(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Bits of integer-centred values under zero-mean Gaussians: the mass of the unit bin around each, in
    the tail that keeps it accurate (both bounds below zero)."""
    return _bin_bits(values, scales).sum()


def _bin_bits(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    magnitude = values.abs()
    upper = torch.special.ndtr((0.5 - magnitude) / scales)
    lower = torch.special.ndtr((-0.5 - magnitude) / scales)
    return -torch.log2((upper - lower).clamp_min(1e-9))


class ChannelGain(nn.Module):
    """A learned gain per latent channel (as a log, so it stays positive): the encoder multiplies by it,
    the decoder divides, so the gain sets each channel's quantisation step in PCA units."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(channels))

    def forward(self) -> torch.Tensor:
        return self.log_gain.exp().view(1, -1, 1, 1)


class GainEncoder(nn.Module):
    def __init__(self, inner: PcaEncoder, gain: ChannelGain) -> None:
        super().__init__()
        self.inner, self.gain = inner, gain

    def forward(self, x):
        return self.inner(x) * self.gain()


class GainDecoder(nn.Module):
    def __init__(self, inner: PcaRefineDecoder, gain: ChannelGain) -> None:
        super().__init__()
        self.inner, self.gain = inner, gain

    def forward(self, latent):
        return self.inner(latent / self.gain())


class HyperpriorAutoencoder(Autoencoder):
    """pca-refine with a per-channel gain and a scale hyperprior; `forward` rounds the latent, as the codec does.

    Its budget is bits, not values: the latent has 768 PCA components per 32x32 tile (a quarter of the
    pixels' 3,072), where pca-refine's 256 cap any codec at about 26.5 dB; a channel the rate term
    silences costs almost nothing, since its predicted scale makes zero nearly certain.
    """

    LATENT = PCA_COMPONENTS["hyperprior"]
    OWN_RATE = True

    def __init__(self) -> None:
        super().__init__()
        self.gain = ChannelGain(self.LATENT)
        self.encoder = GainEncoder(PcaEncoder(self.LATENT), self.gain)
        self.decoder = GainDecoder(PcaRefineDecoder(self.LATENT), self.gain)
        self.hyper_encoder = nn.Sequential(  # 1x1: each 32x32 tile's latent is one position
            nn.Conv2d(self.LATENT, 192, 1), nn.ReLU(), nn.Conv2d(192, SIDE_CHANNELS, 1)
        )
        self.hyper_decoder = nn.Sequential(nn.Conv2d(SIDE_CHANNELS, 192, 1), nn.ReLU(), nn.Conv2d(192, self.LATENT, 1))
        self.side_prior = GaussianPrior(SIDE_CHANNELS)

    def forward(self, x):
        return self.decoder(torch.round(self.encoder(x)))

    def scales(self, side: torch.Tensor) -> torch.Tensor:
        """The main latents' Gaussian scales from (rounded or noisy) side latents."""
        return SCALE_MIN + nn.functional.softplus(self.hyper_decoder(side))

    def rate_forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reconstruction and the rate in bits per pixel, for a training step."""
        latent = self.encoder(images)
        side = self.hyper_encoder(latent.abs())
        noisy_side = side + torch.rand_like(side) - 0.5
        noisy_latent = latent + torch.rand_like(latent) - 0.5
        bits = gaussian_bits(noisy_latent, self.scales(noisy_side)) + self.side_prior.bits(noisy_side)
        rounded = latent + (torch.round(latent) - latent).detach()  # straight through
        pixels = images.shape[0] * images.shape[2] * images.shape[3]
        return self.decoder(rounded), bits / pixels

    def image_bits(self, images: torch.Tensor) -> torch.Tensor:
        """Each image's bits as the codec (codec/hyper.py) rounds its latents: side latents rounded around
        their prior's means, latents to the unit step; an estimate (the coder snaps scales to a table)."""
        latent = self.encoder(images)
        means = self.side_prior.mean.view(1, -1, 1, 1)
        side = torch.round(self.hyper_encoder(latent.abs()) - means) + means
        main = _bin_bits(torch.round(latent), self.scales(side)).flatten(1).sum(1)
        return main + self.side_prior.image_bits(side)

    @torch.no_grad()
    def initialise(self, images: torch.Tensor, rate_lambda: float) -> None:
        """Fit PCA as pca-refine does (768 components), and start every channel at the quantisation step that balances
        squared error against λ·bits: for an orthonormal transform at high rate the best steps are all
        equal (reverse water-filling), each coefficient's error Δ²/12 and its rate slope -2 ln 2 · Δ²/12
        per bit (model.balanced_step)."""
        start_from_pca(self.encoder.inner, self.decoder.inner, images)
        self.gain.log_gain.fill_(-math.log(balanced_step(rate_lambda)))

    def parameter_groups(self, lr: float) -> list[dict]:
        return slow_linear_groups(self, [self.encoder.inner.project.weight, self.decoder.inner.project.weight], lr)
