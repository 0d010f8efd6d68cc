"""PCA of image tiles: the linear floor every model is measured against, and the start of `pca-refine`.

A k-component PCA is the best linear code of k values for its training images in mean squared error, so
a model with a k-value latent that does no better than it has learned nothing a projection could not.
"""

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

TILE = 32  # the side of the square patches PCA codes (CIFAR-10 images are one such tile)
MAX_FIT_TILES = 50_000  # more tiles than this are subsampled (seeded): the covariance barely moves
KEPT_FITS = 2  # fits kept per process, by the images' hash (fit_pca)


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


_kept_fits: OrderedDict[tuple, Pca] = OrderedDict()
_kept_fits_lock = threading.Lock()


def fit_pca(images: torch.Tensor, components: int, chunk: int = 4096) -> Pca:
    """The top `components` principal directions of the uint8 images' tiles, from their covariance in
    float64 (no N x 3,072 SVD), on the images' device.

    The last KEPT_FITS fits are kept, keyed by a hash of the images: the runs of a study on one dataset
    (pca-refine, hyperprior) and the PCA baseline beside them fit it once per process, not once each
    (3 s on the sample for 768 components, far more on CIFAR-10's 50,000 images on 2 cores)."""
    digest = hashlib.sha256(images.detach().contiguous().cpu().numpy().data).hexdigest()
    key = (digest, tuple(images.shape), str(images.device), components, chunk)
    with _kept_fits_lock:
        pca = _kept_fits.get(key)
        if pca is not None:
            _kept_fits.move_to_end(key)
    if pca is None:
        pca = _fit_pca(images, components, chunk)
        with _kept_fits_lock:
            _kept_fits[key] = pca
            while len(_kept_fits) > KEPT_FITS:
                _kept_fits.popitem(last=False)
    return Pca(pca.mean.clone(), pca.basis.clone())  # each caller's own: a model trains its copy


def _fit_pca(images: torch.Tensor, components: int, chunk: int) -> Pca:
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


MAX_SYMBOLS = 1 << 16  # per component: a step so small that the histogram would outgrow memory is refused


class QuantisedPcaModel(PcaModel):
    """PCA's coordinates rounded to one uniform step and coded per component under a histogram of the training
    tiles' symbols (add-½ smoothing, saturating at the range seen in training): the linear codec a codec model
    trained at rate λ is measured against, at the step that model starts from (model.balanced_step). Its rate
    is an ideal code's length under that histogram, as a codec model's is its entropy model's."""

    OWN_RATE = True

    def __init__(self, pca: Pca, step: float, train: torch.Tensor, chunk: int = 4096) -> None:
        super().__init__(pca)
        self.step = step
        low = high = None
        for start in range(0, len(train), chunk):
            symbols = self._symbols(train[start : start + chunk].float() / 255)
            low = symbols.amin(0) if low is None else torch.minimum(low, symbols.amin(0))
            high = symbols.amax(0) if high is None else torch.maximum(high, symbols.amax(0))
        width = int((high - low).max()) + 1
        if width > MAX_SYMBOLS:
            raise ValueError(f"step {step:g} gives {width} symbols per component (at most {MAX_SYMBOLS})")
        counts = torch.full((len(low), width), 0.5, dtype=torch.float64)
        for start in range(0, len(train), chunk):
            symbols = self._symbols(train[start : start + chunk].float() / 255) - low
            counts.scatter_add_(1, symbols.T.long(), torch.ones(symbols.T.shape, dtype=torch.float64))
        spans = (high - low + 1).long()
        counts[torch.arange(width) >= spans[:, None]] = 0  # no mass beyond each component's own range
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.register_buffer("symbol_bits", -torch.log2(counts / counts.sum(1, keepdim=True)).float())

    def _symbols(self, x: torch.Tensor) -> torch.Tensor:
        """Each tile's symbols, (tiles, components), as integers (not yet clamped)."""
        codes = (tiles_of(x).flatten(1) - self.mean.flatten()) @ self.basis.T
        return torch.round(codes / self.step).int()

    def _clamped(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(self._symbols(x), self.high), self.low)

    def forward(self, x):
        codes = self._clamped(x).float() * self.step
        tiles = (codes @ self.basis + self.mean.flatten()).view(-1, *self.mean.shape)
        return untile(tiles, x.shape[-2], x.shape[-1]).clamp(0, 1)

    def image_bits(self, x: torch.Tensor) -> torch.Tensor:
        offsets = (self._clamped(x) - self.low).long()  # (tiles, components)
        bits = self.symbol_bits.gather(1, offsets.T).T.sum(1)  # per tile
        return bits.view(len(x), -1).sum(1)
