"""The PCA baseline: the linear floor at a run's latent size, on a run's data, cached in the run store.

A model whose latent holds k values per 32x32 tile is compared with PCA of k components fitted on the
same training images and evaluated on the same validation images by the same metric code. The result
is computed once per (data, k) and kept in `<store>/.baselines/`, keyed by a hash of the images, so a
study, `runs compare`, the report and the app all read one number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .data import ImageData
from .errors import NormcompressError
from .files import FileError, atomic_write_json, read_regular
from .metrics import METRICS, TABLE_METRICS, evaluate
from .model import build_model
from .runs import Run, RunStore

if TYPE_CHECKING:  # torch is imported when a baseline is computed: `Baseline` is read without it (the app)
    import torch

BASELINES_DIR = ".baselines"
MAX_BASELINE_BYTES = 64 << 10


@dataclass(frozen=True)
class Baseline:
    components: int
    data: str
    metrics: dict[str, float]

    @property
    def label(self) -> str:
        return f"PCA ({self.components} values)"


def latent_values_per_tile(model: torch.nn.Module, image_size: int) -> int | None:
    """How many latent values the model spends on one 32x32 tile; None when its images are not whole tiles."""
    import torch

    from .pca import TILE

    if image_size % TILE:
        return None
    device = next(model.parameters()).device
    with torch.no_grad():
        values = model.encoder(torch.zeros(1, 3, image_size, image_size, device=device)).numel()
    return round(values * TILE * TILE / (image_size * image_size))


def fingerprint(data: ImageData) -> str:
    digest = hashlib.sha256()
    for split in (data.train, data.val):
        digest.update(repr(tuple(split.shape)).encode())
        digest.update(split.contiguous().numpy().tobytes())
    return digest.hexdigest()


def why_no_baseline(data: ImageData, components: int | None) -> str | None:
    """Why PCA with `components` values per tile cannot be fitted on these images, or None when it can."""
    from .pca import TILE

    height, width = data.train.shape[-2:]
    if components is None or height % TILE or width % TILE:
        return f"no PCA reference: PCA codes {TILE}x{TILE} tiles, and {height}x{width} images are not whole tiles"
    tiles = len(data.train) * (height // TILE) * (width // TILE)
    if not 1 <= components <= min(3 * TILE * TILE, tiles):
        return f"no PCA reference: {tiles} training tiles cannot fit {components} components"
    return None


def pca_baseline(store: RunStore, data: ImageData, components: int | None) -> Baseline | None:
    """PCA with `components` values per tile on these images: from the store's cache, or fitted, evaluated
    and cached. None when why_no_baseline has a reason."""
    if why_no_baseline(data, components):
        return None
    key = fingerprint(data)
    name = f"pca-{components}-{key[:32]}.json"
    try:
        path = store.folder(BASELINES_DIR) / name
    except NormcompressError:  # .baselines planted as a link, or an unwritable store: computed, not kept
        path = None
    cached = _read(path, key, components) if path is not None else None
    if cached is not None:
        return Baseline(components, data.source, cached)
    from .pca import PcaModel, fit_pca

    metrics = evaluate(PcaModel(fit_pca(data.train, components)), data.val)
    if path is not None:
        try:
            atomic_write_json(
                path,
                {
                    "method": "pca",
                    "components": components,
                    "data": data.source,
                    "fingerprint": key,
                    "metrics": metrics,
                },
            )
        except (OSError, NormcompressError):
            pass  # a read-only or full store: the baseline is still right, only not kept
    return Baseline(components, data.source, metrics)


def run_baseline(store: RunStore, run: Run, data: ImageData) -> tuple[Baseline | None, str | None]:
    """PCA at a run's latent size on `data` (the images the run used): the baseline, or None and why not.
    The latent size is the architecture's, so a fresh model of the run's kind answers it; no weights load."""
    config = run.train_config()
    values = latent_values_per_tile(build_model(config.model), config.image_size)
    reason = why_no_baseline(data, values)
    return (None, reason) if reason else (pca_baseline(store, data, values), None)


def _read(path, key: str, components: int) -> dict[str, float] | None:
    """A cached baseline's metrics, or None when it is absent or does not hold what its name says
    (a damaged file is computed again and replaced)."""
    try:
        value = json.loads(read_regular(path, MAX_BASELINE_BYTES, follow_symlinks=False))
    except (FileError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not (isinstance(value, dict) and value.get("fingerprint") == key and value.get("components") == components):
        return None
    metrics = value.get("metrics")
    if not isinstance(metrics, dict) or not all(METRICS[k].possible(metrics.get(k)) for k in TABLE_METRICS):
        return None  # a value no metric can take (a poisoned "psnr": 99999): computed again and replaced
    return {k: float(metrics[k]) for k in TABLE_METRICS}
