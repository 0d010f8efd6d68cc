"""TrainConfig: what a run computes, as the CLI, the app and a run's config.json spell it.

The same checks run on what a user typed and on what a config.json holds, so a hand-edited or
hostile file can never make a run train something other than what it says.
"""

import math
import re
from dataclasses import dataclass, fields

from .data import DATASETS, check_dataset
from .devices import DEVICE_FORMS
from .errors import ConfigError, UsageError
from .losses import parse_norm
from .model import CODEC_MODELS, MODEL_DESCRIPTIONS, MODELS, check_image_size

__all__ = [
    "AMP_MODES",
    "CODEC_MODELS",
    "DATASETS",
    "DEFAULTS",
    "MAX_RATE_LAMBDA",
    "MODELS",
    "MODEL_DESCRIPTIONS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainConfig",
]

AMP_MODES = ("off", "bf16")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "onecycle")
# What a config.json written before a field existed trained with: read so, never as today's default.
BEFORE_FIELD = {"optimizer": "adam", "schedule": "constant"}
MAX_SEED = 2**32 - 1  # what every RNG here takes; the batch order mixes in the epoch below 2**63
MAX_EPOCHS = 100_000
MAX_BATCH = 65_536
MAX_RATE_LAMBDA = 1000.0  # λ weighs bits per pixel against a norm of at most 1: past this, every bit is zero
REQUIRED_ON_READ = ("norm", "epochs", "batch_size", "lr", "dataset", "seed")  # a config.json without them is damaged


@dataclass
class TrainConfig:
    norm: str = "L2"
    epochs: int = 10
    batch_size: int = 128
    # The recipe measured best for the seed model in 10 epochs (README, "Training recipe"); the original
    # study's is --schedule constant --optimizer adam --lr 1e-3.
    lr: float = 3e-3  # the learning rate, or the one-cycle schedule's peak
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    device: str = "auto"
    dataset: str = "cifar10"
    data_dir: str = "data"
    seed: int = 0
    limit: int | None = None
    model: str = "seed"
    image_size: int = 32
    amp: str = "off"  # off | bf16: autocast the forward pass to bfloat16 (CPU AMX, or CUDA)
    channels_last: bool | None = None  # None: channels-last on the CPU (measured faster), not on CUDA (measured slower)
    compile: bool = False  # torch.compile the model for training
    cuda_graph: bool | None = None  # None: the step replayed from a CUDA graph on CUDA where the run allows it
    rate_lambda: float = 0.0  # > 0: noisy latents, a learned prior, loss = norm + rate_lambda * bits per pixel

    def validated(self) -> "TrainConfig":
        """Check every field's type and range and canonicalise the norm; raise UsageError on the first bad one."""
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name))
        self.norm = parse_norm(self.norm).name
        check_dataset(self.dataset)
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        for name, low, high in (("epochs", 1, MAX_EPOCHS), ("batch_size", 1, MAX_BATCH), ("seed", 0, MAX_SEED)):
            if not low <= getattr(self, name) <= high:
                raise UsageError(f"--{name.replace('_', '-')} must be between {low} and {high:,}")
        if self.limit is not None and self.limit < 1:
            raise UsageError("--limit must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError("--lr must be a positive number")
        if not 0 <= self.rate_lambda <= MAX_RATE_LAMBDA:  # NaN fails too
            raise UsageError(f"--rate-lambda must be between 0 and {MAX_RATE_LAMBDA:g}")
        if self.model in CODEC_MODELS and self.rate_lambda == 0:
            raise UsageError(
                f"model {self.model} is a codec, trained on norm + λ·bits: give --rate-lambda > 0 (0.001-0.01 with L2)"
            )
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in choices:
                raise UsageError(f"unknown --{name} {getattr(self, name)!r}; choose one of: {', '.join(choices)}")
        if self.amp not in AMP_MODES:
            raise UsageError(f"unknown --amp {self.amp!r}; choose one of: {', '.join(AMP_MODES)}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?", self.device):
            raise UsageError(f"unknown device {self.device!r}; use {DEVICE_FORMS}")
        check_image_size(self.image_size, self.model)
        if self.image_size != 32 and not self.dataset.startswith("folder:"):
            raise UsageError(f"--image-size {self.image_size} needs a folder: dataset; {self.dataset} images are 32x32")
        return self

    @classmethod
    def from_json(cls, values: object) -> "TrainConfig":
        """A config.json's contents, checked: ConfigError names the first field that is missing or wrong."""
        if not isinstance(values, dict):
            raise ConfigError("config.json is not a JSON object")
        missing = [k for k in REQUIRED_ON_READ if k not in values]
        if missing:
            raise ConfigError(f"config.json lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{**BEFORE_FIELD, **{k: v for k, v in values.items() if k in known}}).validated()
        except UsageError as exc:
            raise ConfigError(f"config.json: {exc}") from None


DEFAULTS = TrainConfig()  # the recipe: every driver shows and uses these defaults, never its own copy

_TYPES: dict[str, tuple[type, ...]] = {
    "lr": (int, float),
    "rate_lambda": (int, float),
    "limit": (int, type(None)),
    "channels_last": (bool, type(None)),
    "compile": (bool,),
    "cuda_graph": (bool, type(None)),
}


def _check_type(name: str, value: object) -> None:
    expected = _TYPES.get(name) or ((int,) if name in ("epochs", "batch_size", "seed", "image_size") else (str,))
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        kinds = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
        raise UsageError(f"{name} must be {kinds}, not {type(value).__name__} {str(value)[:40]!r}")
