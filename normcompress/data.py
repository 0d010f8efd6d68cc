"""Datasets: each split decoded once into a uint8 tensor (N, 3, H, W) and batched from memory.

Sources, named by one string:
    cifar10        torchvision's CIFAR-10 under the data directory, downloaded when missing;
                   falls back to `sample` (with a notice) when it cannot be downloaded
    sample         6,187 real CIFAR-10 images shipped inside the package (normcompress/assets/)
    synthetic      procedurally generated shapes, gradients and noise, for instant runs
    folder:PATH    any tree of images; gray/RGBA/palette -> RGB, resized and centre-cropped
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import NormcompressError, UsageError
from .text import count

SAMPLE = resources.files("normcompress.assets").joinpath("cifar10-sample.npz")  # inside the package, wheel or clone
if TYPE_CHECKING:  # numpy and torch load with the data, not with the names (config checks, --help)
    import torch

DATASETS = ("cifar10", "sample", "synthetic", "folder:PATH")
VALIDATION_FRACTION = 0.1
SYNTHETIC_SIZES = (4096, 512)  # train, validation
MAX_FOLDER_BYTES = 8 * 2**30  # decoded uint8 pixels of a folder: checked before the tensor is allocated


class DataError(NormcompressError):
    pass


@dataclass
class ImageData:
    """The training and validation splits of one dataset, as uint8 (N, 3, H, W) tensors on the CPU."""

    train: torch.Tensor
    val: torch.Tensor
    source: str  # the data really used, recorded in the run (differs from the request after a fallback)
    notices: list[str] = field(default_factory=list)


def check_dataset(spec: str) -> str:
    """Validate a dataset string without loading it; return it unchanged."""
    if spec in ("cifar10", "sample", "synthetic"):
        return spec
    if spec.startswith("folder:") and len(spec) > len("folder:"):
        return spec
    raise UsageError(f"unknown dataset {spec!r}; choose one of: {', '.join(DATASETS)}")


def load_data(
    spec: str,
    data_dir: str | Path = "data",
    limit: int | None = None,
    image_size: int = 32,
    notify: Callable[[str], None] | None = None,
) -> ImageData:
    """Load a dataset by name. `notify` receives one-line notices (a fallback, skipped files)."""
    check_dataset(spec)
    if image_size != 32 and not spec.startswith("folder:"):
        raise UsageError(f"--image-size {image_size} needs a folder: dataset; {spec} images are 32x32")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    if spec == "cifar10":
        data = _cifar10(Path(data_dir))
    elif spec == "sample":
        data = load_sample()
    elif spec == "synthetic":
        data = ImageData(*(synthetic_images(n, seed=i) for i, n in enumerate(SYNTHETIC_SIZES)), source="synthetic")
    else:
        data = _folder(Path(spec[len("folder:") :]), image_size)
    if limit is not None:
        data.train = data.train[:limit]
    for notice in data.notices:
        if notify:
            notify(notice)
    return data


def load_run_data(run, data_dir: str | Path = "data", notify: Callable[[str], None] | None = None) -> ImageData:
    """The images a run was trained and validated on: its recorded source (the sample after a CIFAR-10
    fallback), its --limit and its crop size."""
    config = run.train_config()
    return load_data(run.data_source, data_dir, config.limit, config.image_size, notify)


def load_sample() -> ImageData:
    import numpy as np
    import torch

    if not SAMPLE.is_file():
        raise DataError(f"the embedded sample {SAMPLE} is missing from this installation; reinstall normcompress")
    with SAMPLE.open("rb") as file, np.load(file) as npz:
        return ImageData(torch.from_numpy(npz["train_images"]), torch.from_numpy(npz["test_images"]), source="sample")


def _cifar10(root: Path) -> ImageData:
    import torch
    import torchvision

    existed = root.exists()
    try:
        splits = [torchvision.datasets.CIFAR10(str(root), train=t, download=True) for t in (True, False)]
    except Exception as exc:  # no network, a proxy, a damaged archive: all end in the same fallback
        reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
        if not existed:  # the download made the folder; a failed one leaves nothing behind
            shutil.rmtree(root, ignore_errors=True)
        data = load_sample()
        data.notices.append(
            f"CIFAR-10 is not in {root} and could not be downloaded ({reason}); "
            f"using the embedded sample instead ({len(data.train)} train / {len(data.val)} validation images)"
        )
        return data
    train, test = (torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous() for s in splits)
    return ImageData(train, test, source="cifar10")


def synthetic_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Gradients with rectangles and discs and a little noise: structured enough to learn from."""
    return _drawn(count, size, seed).clone()  # a copy: the caller owns its tensor


@functools.lru_cache(maxsize=4)
def _drawn(count: int, size: int, seed: int) -> torch.Tensor:
    """The synthetic images, drawn once per process: drawing 4,096 takes half a second on two cores, and a
    study (or a test suite) in one process loads them for every run."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    angle = rand(count, 1, 1) * 2 * torch.pi
    t = (xs * angle.cos() + ys * angle.sin() + 1.5) / 3  # (N, H, W) in [0, 1]
    start, end = rand(count, 3, 1, 1), rand(count, 3, 1, 1)
    images = start + (end - start) * t.unsqueeze(1)
    for _ in range(3):
        colour = rand(count, 3, 1, 1)
        cx, cy, r = rand(count, 1, 1), rand(count, 1, 1), 0.08 + 0.25 * rand(count, 1, 1)
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 < r**2
        box = ((xs - cx).abs() < r) & ((ys - cy).abs() < r * 0.6)
        mask = torch.where(rand(count, 1, 1) < 0.5, disc, box).unsqueeze(1)
        images = torch.where(mask, colour, images)
    images = images + 0.03 * torch.randn(images.shape, generator=g)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def _folder(root: Path, image_size: int) -> ImageData:
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    from .images import ImageFileError, open_image
    from .model import check_image_size

    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a directory")
    check_image_size(image_size)
    image_exts = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    candidates, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.startswith(".") or path.suffix.lower() not in image_exts:
                skipped.append((path, "not an image file"))
            else:
                candidates.append(path)
    needed = len(candidates) * 3 * image_size**2
    if needed > MAX_FOLDER_BYTES:
        raise DataError(
            f"image folder {root}: {len(candidates):,} images at {image_size}x{image_size} need "
            f"{needed / 2**30:.1f} GiB in memory, more than the {MAX_FOLDER_BYTES / 2**30:.0f} GiB allowed; "
            f"use --limit or a smaller --image-size"
        )
    # Decoded straight into one preallocated tensor: no list of small tensors, no stacked copy.
    images = torch.empty(len(candidates), 3, image_size, image_size, dtype=torch.uint8)
    kept = 0
    for path in candidates:
        try:
            im = open_image(path).convert("RGB")
        except ImageFileError as exc:
            skipped.append((path, exc.reason))
            continue
        im = ImageOps.fit(im, (image_size, image_size), method=Image.Resampling.BICUBIC)
        images[kept] = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)
        kept += 1
    notices = []
    if skipped:
        names = ", ".join(f"{p.relative_to(root)} ({why})" for p, why in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        notices.append(f"skipped {count(len(skipped), 'unreadable or non-image file')} in {root}: {names}{more}")
    if kept < 2:
        raise DataError(f"image folder {root} holds {count(kept, 'readable image')}; at least 2 are needed")
    train, val = _split_in_place(images[:kept])
    return ImageData(train, val, f"folder:{root.resolve()}", notices)


def _split_in_place(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out a fixed random 10% as views of `images`: no copy of a large dataset.

    The held-out rows are swapped to the end. The choice depends on the image count alone (not the
    run's seed), so every run on one folder shares its validation set.
    """
    import torch

    count = len(images)
    n_val = max(1, round(count * VALIDATION_FRACTION))
    held_out = set(torch.randperm(count, generator=torch.Generator().manual_seed(0))[:n_val].tolist())
    boundary = count - n_val
    leaving = sorted(i for i in held_out if i < boundary)
    arriving = sorted(i for i in range(boundary, count) if i not in held_out)
    for a, b in zip(leaving, arriving, strict=True):
        images[[a, b]] = images[[b, a]]
    return images[:boundary], images[boundary:]
