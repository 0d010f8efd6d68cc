"""Autoencoders, registered by name so that runs, the CLI and the TUI can ask for one.

The names and the image sizes each model can reproduce are here, without torch, so that checking a
configuration (and `normcompress --help`) does not wait for torch to import; the networks are in
`networks.py` and are imported when a model is built.
"""

import math

from ..errors import UsageError

# name -> (an image side must be a multiple of this, and at least this). The seed and wide models halve
# the image twice and then apply a 7x7 convolution without padding, so a side must be a multiple of 4 and
# at least 28 for the output to match the input; pca-refine and hyperprior code whole 32x32 tiles (pca.TILE).
MODEL_SIZES = {"seed": (4, 28), "wide-residual": (4, 28), "pca-refine": (32, 32), "hyperprior": (32, 32)}
MODELS = tuple(MODEL_SIZES)
MODEL_DESCRIPTIONS = {  # one line each, for the app's model list and the docs
    "seed": "the original study's autoencoder (64x2x2 latent)",
    "wide-residual": "wider and residual, the same latent size",
    "pca-refine": "PCA at the same latent size plus a learned correction: above the linear floor",
    "hyperprior": "a codec model (scale hyperprior) trained on norm + rate λ x bits; needs rate λ > 0",
}
CODEC_MODELS = ("hyperprior",)  # trained on norm + λ·bits only: they need --rate-lambda > 0
# name -> the components of the PCA it fits to the training images' 32x32 tiles before its first step
PCA_COMPONENTS = {"pca-refine": 256, "hyperprior": 768}
PCA_TILE = 32
DEFAULT_MODEL = "seed"
MAX_IMAGE_SIZE = 1024  # bounds the memory


def balanced_step(rate_lambda: float) -> float:
    """The quantisation step of PCA coordinates that balances squared error against λ·bits at high rate:
    each coordinate's error is Δ²/12 and its rate slope -2 ln 2 · Δ²/12 per bit, so with 3 x 1024 values
    per 1024 pixels d(MSE)/d(bpp) = -λ gives Δ = sqrt(18 λ / ln 2). The hyperprior starts from it; the
    quantised PCA it is measured against uses it."""
    return math.sqrt(18 * rate_lambda / math.log(2))


def check_image_size(size: int, model: str = DEFAULT_MODEL) -> int:
    """Refuse a crop size the model cannot reproduce (UsageError with the valid range)."""
    multiple, low = MODEL_SIZES.get(model, MODEL_SIZES[DEFAULT_MODEL])
    if not (low <= size <= MAX_IMAGE_SIZE and size % multiple == 0):
        raise UsageError(
            f"--image-size {size} does not fit model {model}: use a multiple of "
            f"{multiple} from {low} to {MAX_IMAGE_SIZE}"
        )
    return size


def check_training_images(model: str, images: int, image_size: int) -> None:
    """Refuse, before a run exists, training images too few for the model's PCA start (UsageError saying
    how many it needs): a PCA of k components needs at least k tiles."""
    needed = PCA_COMPONENTS.get(model)
    tiles = images * (image_size // PCA_TILE) ** 2
    if needed is None or tiles >= needed:
        return
    per_image = (image_size // PCA_TILE) ** 2
    images_needed = -(-needed // per_image)
    size = f"{image_size}x{image_size}"
    raise UsageError(
        f"model {model} starts from a PCA of {needed} components fitted to the training images' "
        f"{PCA_TILE}x{PCA_TILE} tiles, so it needs at least {images_needed:,} training images of "
        f"{size} ({needed} tiles); these data give {images:,}. Train on more images, or use the "
        f"seed model"
    )


def build_model(name: str = DEFAULT_MODEL):
    """A freshly initialised model (a torch.nn.Module) of the registered name."""
    if name not in MODEL_SIZES:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return _networks()[name]()


def _networks() -> dict:
    from .hyperprior import HyperpriorAutoencoder
    from .networks import NETWORKS

    return {**NETWORKS, "hyperprior": HyperpriorAutoencoder}


def __getattr__(name: str):
    """The network classes (SeedAutoencoder, HyperpriorAutoencoder, ...) by name, imported on first use."""
    classes = {cls.__name__: cls for cls in _networks().values()} if not name.startswith("_") else {}
    if name not in classes:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return classes[name]
