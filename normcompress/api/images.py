"""The facade's images through a run's model: reconstructed, compressed to .ncz files, decompressed.

Each yields one result or one NormcompressError per file, outputs checked before the model loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import NormcompressError
from ..files import output_paths
from ..runs import RunStore


@dataclass
class Reconstructed:
    source: Path
    size: tuple[int, int]
    mode: str
    psnr: float
    max_error: int
    output: Path


def reconstruct_files(
    store: RunStore, ref: str, images: list[Path], out_dir: Path, device: str, force: bool
) -> Iterator[Reconstructed | NormcompressError]:
    """Each image through the run's model, tile by tile, written beside the others into out_dir; the
    outputs are checked (no two onto one name, none over a file without force) before the model loads."""
    run = store.get(ref)
    tile = run.train_config().image_size
    targets = output_paths(images, out_dir, ".recon.png", force)
    from ..devices import resolve_device
    from ..reconstruct import reconstruct_file
    from ..runs import load_model

    model = load_model(run, resolve_device(device))
    for image, target in zip(images, targets, strict=True):
        try:
            r = reconstruct_file(model, image, target, tile)
            yield Reconstructed(r.source, r.size, r.mode, r.psnr, r.max_error, r.output)
        except NormcompressError as exc:
            yield exc


@dataclass
class Compressed:
    source: Path
    output: Path
    bytes: int
    pixels: int
    payload_bytes: int
    residual_bytes: int
    psnr: float
    max_error: int


def compress_files(
    store: RunStore,
    ref: str,
    images: list[Path],
    out_dir: Path,
    step: float | None,
    max_error: int | None,
    data_dir: str,
    force: bool,
) -> Iterator[Compressed | NormcompressError]:
    """Each image as a .ncz file of the run's model, the encoder batched across files; outputs checked first."""
    run = store.get(ref)
    targets = output_paths(images, out_dir, ".ncz", force)
    from ..codec import coder_for, encode_many
    from ..files import atomic_write
    from ..runs import load_model

    model = load_model(run, "cpu")
    coder = coder_for(run, model, data_dir)
    for image, target, encoded in zip(
        images, targets, encode_many(run, model, coder, images, step, max_error), strict=True
    ):
        if isinstance(encoded, NormcompressError):
            yield encoded
            continue
        atomic_write(target, encoded.data)
        width, height = encoded.reconstruction.size
        yield Compressed(
            image,
            target,
            len(encoded.data),
            width * height,
            encoded.payload_bytes,
            encoded.residual_bytes,
            encoded.psnr,
            encoded.max_error,
        )


@dataclass
class Decompressed:
    source: Path
    size: tuple[int, int]
    mode: str
    output: Path


def decompress_files(
    store: RunStore, files: list[Path], out_dir: Path, data_dir: str, force: bool
) -> Iterator[Decompressed | NormcompressError]:
    """Each .ncz file as a PNG; each names the run (and weights) it needs."""
    targets = output_paths(files, out_dir, ".png", force)
    from ..codec import MAX_FILE_BYTES, decode
    from ..files import read_regular
    from ..images import save_png

    for path, target in zip(files, targets, strict=True):
        try:
            picture = decode(read_regular(path, MAX_FILE_BYTES), store, str(path), data_dir=data_dir)
            save_png(picture, target)
            yield Decompressed(path, picture.size, picture.mode, target)
        except NormcompressError as exc:
            yield exc
