"""PCA of image tiles: the linear floor every model is measured against, and the start of `pca-refine`.

A k-component PCA is the best linear code of k values for its training images in mean squared error, so
a model with a k-value latent that does no better than it has learned nothing a projection could not.
"""

from dataclasses import dataclass

import torch
from torch import nn

TILE = 32  # the side of the square patches PCA codes (CIFAR-10 images are one such tile)
MAX_FIT_TILES = 50_000  # more tiles than this are subsampled (seeded): the covariance barely moves


@dataclass
class Pca:
    mean: torch.Tensor  # (3, TILE, TILE), in [0, 1]
    basis: torch.Tensor  # (components, 3 * TILE * TILE), orthonormal rows, by decreasing variance

    def encode(self, tiles: torch.Tensor) -> torch.Tensor:
        return (tiles.flatten(1) - self.mean.flatten()) @ self.basis.T

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes @ self.basis + self.mean.flatten()).view(-1, *self.mean.shape)


def tiles_of(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) with H and W multiples of TILE -> (N * H/TILE * W/TILE, 3, TILE, TILE), same dtype."""
    n, c, h, w = images.shape
    grid = images.reshape(n, c, h // TILE, TILE, w // TILE, TILE).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(-1, c, TILE, TILE)


def untile(tiles: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of tiles_of for images of height x width."""
    c = tiles.shape[1]
    rows, columns = height // TILE, width // TILE
    grid = tiles.reshape(-1, rows, columns, c, TILE, TILE).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(-1, c, height, width)


class PcaModel(nn.Module):
    """PCA as a model (float images in, reconstructions clamped to [0, 1] out, like every model's), so the
    baseline is evaluated by the same code as the runs."""

    def __init__(self, pca: Pca) -> None:
        super().__init__()
        self.register_buffer("mean", pca.mean)
        self.basis = nn.Parameter(pca.basis, requires_grad=False)

    def forward(self, x):
        codes = (tiles_of(x).flatten(1) - self.mean.flatten()) @ self.basis.T
        tiles = (codes @ self.basis + self.mean.flatten()).view(-1, *self.mean.shape)
        return untile(tiles, x.shape[-2], x.shape[-1]).clamp(0, 1)


def fit_pca(images: torch.Tensor, components: int, chunk: int = 4096) -> Pca:
    """The top `components` principal directions of the uint8 images' tiles, from their covariance in
    float64 (no N x 3,072 SVD), on the images' device."""
    tiles = tiles_of(images)
    if len(tiles) > MAX_FIT_TILES:
        tiles = tiles[torch.randperm(len(tiles), generator=torch.Generator().manual_seed(0))[:MAX_FIT_TILES]]
    dims = tiles[0].numel()
    if not 1 <= components <= min(dims, len(tiles)):
        raise ValueError(f"PCA of {len(tiles)} tiles cannot have {components} components")
    total = torch.zeros(dims, dtype=torch.float64, device=tiles.device)
    gram = torch.zeros(dims, dims, dtype=torch.float64, device=tiles.device)
    for start in range(0, len(tiles), chunk):
        part = tiles[start : start + chunk].flatten(1).double() / 255
        total += part.sum(0)
        gram += part.T @ part
    mean = total / len(tiles)
    covariance = gram / len(tiles) - torch.outer(mean, mean)
    basis = top_eigenvectors(covariance, components)
    return Pca(mean.float().view(tiles.shape[1:]), basis.float().contiguous())


def top_eigenvectors(matrix: torch.Tensor, count: int, oversample: int = 64, iterations: int = 6) -> torch.Tensor:
    """The `count` leading eigenvectors (rows, by decreasing eigenvalue) of a symmetric positive semi-definite
    matrix, by seeded subspace iteration (Halko et al. 2011): a full eigh of a 3,072-square matrix took
    10-20 s on these 2-core machines, this takes about one."""
    size = matrix.shape[0]
    if count + oversample >= size:
        return torch.linalg.eigh(matrix)[1].flip(1)[:, :count].T
    start = torch.Generator(device=matrix.device).manual_seed(0)
    subspace = torch.randn(size, count + oversample, generator=start, dtype=matrix.dtype, device=matrix.device)
    for _ in range(iterations):
        subspace = torch.linalg.qr(matrix @ subspace).Q
    _, vectors = torch.linalg.eigh(subspace.T @ matrix @ subspace)  # ascending
    return (subspace @ vectors.flip(1)[:, :count]).T
