"""The autoencoders themselves (torch modules); normcompress.model names them and builds them."""

import torch
from torch import nn

from ..pca import TILE, fit_pca, tiles_of, untile
from . import PCA_COMPONENTS
from .base import Autoencoder


class SeedAutoencoder(Autoencoder):
    """The original study's model: 3x32x32 (3,072 values) -> 64x2x2 latent (256 values) -> 3x32x32.

    Fully convolutional, so it also runs on larger inputs (a 64x64 image gives a 64x10x10 latent).
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 7),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )


def _tiled(mean: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (1, 3, TILE, TILE) mean repeated over every tile of an image batch."""
    return mean.repeat(1, 1, like.shape[-2] // TILE, like.shape[-1] // TILE)


class TileConv2d(nn.Conv2d):
    """Conv2d(3, components, TILE, stride=TILE, bias=False), computed as one matrix product over the image's
    tiles: the same map (the tiles do not overlap), 10-17x faster than the convolution on the CPU, where
    oneDNN has no fast path for a 32x32 kernel at stride 32 (measured in the commit that added it)."""

    def __init__(self, components: int) -> None:
        super().__init__(3, components, TILE, stride=TILE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        coordinates = tiles_of(x).flatten(1) @ self.weight.flatten(1).t()
        return coordinates.reshape(b, height // TILE, width // TILE, -1).permute(0, 3, 1, 2).contiguous()


class TileConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d(components, 3, TILE, stride=TILE, bias=False) as one matrix product: each latent
    position's components times the basis give its tile (TileConv2d says why)."""

    def __init__(self, components: int) -> None:
        super().__init__(components, 3, TILE, stride=TILE, bias=False)

    def forward(self, latent: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        _, k, h, w = latent.shape
        tiles = latent.permute(0, 2, 3, 1).reshape(-1, k) @ self.weight.reshape(k, -1)
        return untile(tiles.reshape(-1, self.out_channels, TILE, TILE), h * TILE, w * TILE)


class PcaEncoder(nn.Module):
    """Each 32x32 tile's coordinates in the PCA basis: a convolution with one 32x32 kernel per component."""

    def __init__(self, components: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, TILE, TILE))
        self.project = TileConv2d(components)

    def forward(self, x):
        return self.project(x - _tiled(self.mean, x))


class PcaRefineDecoder(nn.Module):
    """The PCA reconstruction, then a small convolutional net that adds a correction (zero at the start)."""

    def __init__(self, components: int, width: int = 48) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, TILE, TILE))
        self.project = TileConvTranspose2d(components)
        self.refine = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def forward(self, latent):
        linear = self.project(latent)
        linear = linear + _tiled(self.mean, linear)
        return (linear + self.refine(linear)).clamp(0, 1)


@torch.no_grad()
def start_from_pca(encoder: PcaEncoder, decoder: PcaRefineDecoder, images: torch.Tensor) -> None:
    """Fit PCA on the training images (uint8), as many components as the encoder has, and start both
    projections from it."""
    components = encoder.project.out_channels
    pca = fit_pca(images, components)
    kernels = pca.basis.view(components, 3, TILE, TILE).to(encoder.mean.device)
    for part in (encoder, decoder):
        part.mean.copy_(pca.mean.to(part.mean.device).unsqueeze(0))
        part.project.weight.copy_(kernels)


def slow_linear_groups(model: nn.Module, linear: list[nn.Parameter], lr: float) -> list[dict]:
    """The PCA projections at LINEAR_LR_SCALE of the learning rate, every other parameter at the full rate."""
    rest = [p for p in model.parameters() if all(p is not q for q in linear)]
    return [{"params": linear, "lr": lr * PcaRefineAutoencoder.LINEAR_LR_SCALE}, {"params": rest, "lr": lr}]


class PcaRefineAutoencoder(Autoencoder):
    """PCA at the seed model's latent size (256 values per 32x32 tile), fitted on the training images before
    the first step, with a learned convolutional correction after it.

    It starts where PCA ends (25.5 dB on the sample) instead of 6 dB below it. The PCA bases keep
    learning, at LINEAR_LR_SCALE of the learning rate: at the full rate the first steps undo the fit.
    """

    LATENT = PCA_COMPONENTS["pca-refine"]
    LINEAR_LR_SCALE = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PcaEncoder(self.LATENT)
        self.decoder = PcaRefineDecoder(self.LATENT)

    def initialise(self, images: torch.Tensor, rate_lambda: float) -> None:
        start_from_pca(self.encoder, self.decoder, images)

    def parameter_groups(self, lr: float) -> list[dict]:
        return slow_linear_groups(self, [self.encoder.project.weight, self.decoder.project.weight], lr)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


class WideResidualAutoencoder(Autoencoder):
    """A stronger model with the seed model's latent budget (64x2x2 for a 32x32 image).

    Twice the channels and a residual block at each resolution: it asks whether the norms rank
    the same once the model is no longer the bottleneck.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            ResidualBlock(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            ResidualBlock(64),
            nn.ReLU(),
            nn.Conv2d(64, 64, 7),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 7),
            nn.ReLU(),
            ResidualBlock(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            ResidualBlock(32),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )


NETWORKS = {
    "seed": SeedAutoencoder,
    "wide-residual": WideResidualAutoencoder,
    "pca-refine": PcaRefineAutoencoder,
}
