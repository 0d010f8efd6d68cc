"""The PCA baseline: the linear floor at a run's latent size, on a run's data, cached in the run store.

A model whose latent holds k values per 32x32 tile is compared with PCA of k components fitted on the
same training images and evaluated on the same validation images by the same metric code. A codec model
(trained on norm + λ·bits) is compared with a baseline of its own kind: PCA with its latent's components,
quantised at the step that balances rate against λ and coded per component (pca.QuantisedPcaModel), so
both have a rate in bits per pixel. The result is computed once per (data, k, step) and kept in
`<store>/.baselines/`, keyed by a hash of the images, so a study, `runs compare`, the report and the app
all read one number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .data import ImageData
from .errors import NormcompressError
from .files import FileError, atomic_write_json, read_regular
from .metrics import METRICS, RATE_METRICS, TABLE_METRICS, evaluate
from .model import CODEC_MODELS, PCA_COMPONENTS, balanced_step, build_model
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
    rate_lambda: float | None = None  # a quantised PCA's: the λ whose balanced step it is quantised at

    @property
    def label(self) -> str:
        if self.rate_lambda is None:
            return f"PCA ({self.components} values)"
        return f"PCA ({self.components} values) quantised for λ={self.rate_lambda:g}"


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


def pca_baseline(
    store: RunStore, data: ImageData, components: int | None, rate_lambda: float | None = None
) -> Baseline | None:
    """PCA with `components` values per tile on these images (quantised for `rate_lambda` when given): from
    the store's cache, or fitted, evaluated and cached. None when why_no_baseline has a reason."""
    if why_no_baseline(data, components):
        return None
    key = fingerprint(data)
    kind = "" if rate_lambda is None else f"q{rate_lambda:.6g}-"
    name = f"pca-{components}-{kind}{key[:32]}.json"
    try:
        path = store.folder(BASELINES_DIR) / name
    except NormcompressError:  # .baselines planted as a link, or an unwritable store: computed, not kept
        path = None
    cached = _read(path, key, components, rate_lambda) if path is not None else None
    if cached is not None:
        return Baseline(components, data.source, cached, rate_lambda)
    from .pca import PcaModel, QuantisedPcaModel, fit_pca

    pca = fit_pca(data.train, components)
    model = PcaModel(pca) if rate_lambda is None else QuantisedPcaModel(pca, balanced_step(rate_lambda), data.train)
    metrics = evaluate(model, data.val)
    if path is not None:
        try:
            atomic_write_json(
                path,
                {
                    "method": "pca",
                    "components": components,
                    "rate_lambda": rate_lambda,
                    "data": data.source,
                    "fingerprint": key,
                    "metrics": metrics,
                },
            )
        except (OSError, NormcompressError):
            pass  # a read-only or full store: the baseline is still right, only not kept
    return Baseline(components, data.source, metrics, rate_lambda)


def run_baseline(store: RunStore, run: Run, data: ImageData) -> tuple[Baseline | None, str | None]:
    """The baseline of a run's kind on `data` (the images the run used), or None and why not: PCA at the
    run's latent size, or for a codec model PCA with its latent's components quantised for the run's λ.
    The latent size is the architecture's, so a fresh model of the run's kind answers it; no weights load."""
    config = run.train_config()
    if config.model in CODEC_MODELS:
        values, rate_lambda = PCA_COMPONENTS[config.model], config.rate_lambda
    else:
        values, rate_lambda = latent_values_per_tile(build_model(config.model), config.image_size), None
    reason = why_no_baseline(data, values)
    if reason:
        return None, reason
    try:
        return pca_baseline(store, data, values, rate_lambda), None
    except ValueError as exc:  # a step too fine for a histogram per component
        return None, f"no quantised PCA reference: {exc}"


def _read(path, key: str, components: int, rate_lambda: float | None = None) -> dict[str, float] | None:
    """A cached baseline's metrics, or None when it is absent or does not hold what its name says
    (a damaged file is computed again and replaced)."""
    try:
        value = json.loads(read_regular(path, MAX_BASELINE_BYTES, follow_symlinks=False))
    except (FileError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not (
        isinstance(value, dict)
        and value.get("fingerprint") == key
        and value.get("components") == components
        and value.get("rate_lambda") == rate_lambda
    ):
        return None
    metrics = value.get("metrics")
    keys = TABLE_METRICS + (RATE_METRICS if rate_lambda is not None else ())
    if not isinstance(metrics, dict) or not all(METRICS[k].possible(metrics.get(k)) for k in keys):
        return None  # a value no metric can take (a poisoned "psnr": 99999): computed again and replaced
    return {k: float(metrics[k]) for k in keys}
