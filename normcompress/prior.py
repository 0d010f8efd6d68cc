"""A learned prior over latents, for training with a rate term (`--rate-lambda`).

As in CompressAI's factorized models: during training the latent gets additive uniform noise in
[-0.5, 0.5) (a differentiable stand-in for rounding), and each channel has a Gaussian whose
probability mass over the unit interval around a value is that value's likelihood. The rate is
-log2 of it, summed; the codec later rounds the latent and codes it under the same Gaussians.
"""

import torch
from torch import nn


class GaussianPrior(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp_min(0.05)

    def bits(self, latent: torch.Tensor) -> torch.Tensor:
        """Total bits of a (noisy or rounded) latent batch (N, C, H, W) under the prior."""
        return self.image_bits(latent).sum()

    def image_bits(self, latent: torch.Tensor) -> torch.Tensor:
        """Each image's bits, (N,)."""
        mean, scale = self.mean.view(1, -1, 1, 1), self.scale.view(1, -1, 1, 1)
        upper = torch.special.ndtr((latent + 0.5 - mean) / scale)
        lower = torch.special.ndtr((latent - 0.5 - mean) / scale)
        return -torch.log2((upper - lower).clamp_min(1e-9)).flatten(1).sum(1)


class RateTraining(nn.Module):
    """The autoencoder with noisy latents: forward returns the output and the rate in bits per pixel.
    A model with its own entropy model (the hyperprior) comes without `prior` and computes both itself."""

    def __init__(self, model: nn.Module, prior: GaussianPrior | None) -> None:
        super().__init__()
        self.model, self.prior = model, prior

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prior is None:
            return self.model.rate_forward(images)
        latent = self.model.encoder(images)
        noisy = latent + torch.rand_like(latent) - 0.5
        pixels = images.shape[0] * images.shape[2] * images.shape[3]
        return self.model.decoder(noisy), self.prior.bits(noisy) / pixels


def latent_channels(model: nn.Module, tile: int = 32) -> int:
    with torch.no_grad():
        return model.encoder(torch.zeros(1, 3, tile, tile, device=next(model.parameters()).device)).shape[1]
