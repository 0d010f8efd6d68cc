"""Autoencoders, registered by name so that runs, the CLI and the TUI can ask for one."""

from collections.abc import Callable

from torch import nn

from .errors import UsageError


class SeedAutoencoder(nn.Module):
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

    def forward(self, x):
        return self.decoder(self.encoder(x))


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


class WideResidualAutoencoder(nn.Module):
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

    def forward(self, x):
        return self.decoder(self.encoder(x))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "seed": SeedAutoencoder,
    "wide-residual": WideResidualAutoencoder,
}
DEFAULT_MODEL = "seed"
# Every model here halves the image twice and then applies a 7x7 convolution without padding, so an image
# side must be a multiple of 4 and at least 28 for the output to match the input; 1024 bounds the memory.
IMAGE_SIZE_MULTIPLE, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 28, 1024


def check_image_size(size: int, model: str = DEFAULT_MODEL) -> int:
    """Refuse a crop size the model cannot reproduce (UsageError with the valid range)."""
    if not (MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE and size % IMAGE_SIZE_MULTIPLE == 0):
        raise UsageError(f"--image-size {size} does not fit model {model}: use a multiple of "
                         f"{IMAGE_SIZE_MULTIPLE} from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}")
    return size


def build_model(name: str = DEFAULT_MODEL) -> nn.Module:
    try:
        return MODELS[name]()
    except KeyError:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def load_model(run, device="cpu") -> nn.Module:
    """A run's model with its last checkpoint's weights, in eval mode. A checkpoint that holds no
    weights, another model's weights or non-finite ones is a StoreError naming the run."""
    import torch

    from .runs import StoreError

    config = run.train_config()
    model = build_model(config.model).to(device)
    weights = run.load_checkpoint(device).get("model")
    try:
        if not isinstance(weights, dict):
            raise TypeError("no weights")
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, KeyError) as exc:
        reason = "it holds no weights" if isinstance(exc, TypeError) else f"they are not a {config.model} model's"
        raise StoreError(f"run {run.id} is damaged: checkpoint.pt does not hold this run's weights ({reason})") from None
    if not all(torch.isfinite(t).all() for t in model.state_dict().values()):
        raise StoreError(f"run {run.id} is damaged: checkpoint.pt holds non-finite weights")
    return model.eval()
