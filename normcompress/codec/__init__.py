"""Real compression with a trained run: quantised latents, entropy-coded, in a .ncz file.

Encoding: the image is tiled as in `reconstruct`, each tile's latent is centred and divided by a
per-channel step, rounded, and entropy-coded (latents.py); with `max_error` D a residual layer keeps
every pixel within D of the original (residual.py); the file format and its limits are in format.py.
Decoding reads the header, finds the run by its id's suffix and weights hash, and reverses each step.
"""

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import NormcompressError
from ..metrics import psnr_from_mse
from ..reconstruct import TILE_BATCH, from_tiles, in_batches, read_image, to_tiles
from ..runs import Run, RunStore, load_model
from .coders import LatentCoder, coder_for
from .context import code_context_residual, decode_context
from .format import (
    CONTEXT_FLAG,
    FLAT_FLAG,
    HYPERPRIOR_VERSION,
    ID_TAIL,
    MAX_FILE_BYTES,
    MAX_PIXELS,
    MAX_RESIDUAL_PIXELS,
    MAX_SIDE,
    MODES,
    RESIDUAL_FLAG,
    CodecError,
    Header,
    pack,
    parse,
    stored_step,
)
from .latents import EntropyModel, weights_hash
from .residual import as_planes, code_residual, decode_residual

__all__ = [
    "FLAT_GRAY",
    "MAX_FILE_BYTES",
    "CodecError",
    "Encoded",
    "EntropyModel",
    "LatentCoder",
    "code_residual",
    "coder_for",
    "decode",
    "encode",
    "encode_many",
    "parse",
]

FLAT_GRAY = 128  # the picture under a near-lossless file without latents


@dataclass
class Encoded:
    data: bytes
    reconstruction: Image.Image
    payload_bytes: int
    residual_bytes: int
    psnr: float
    max_error: int


@dataclass
class _Opened:
    """An image file read and tiled, waiting for its latents."""

    source: Path
    original: Image.Image
    rgb: torch.Tensor
    kind: str
    tiles: torch.Tensor
    rows: int
    cols: int


ENCODER_BATCH_TILES = 4096  # encode_many runs the encoder on about this many tiles at once
DECODER_BATCH_TILES = TILE_BATCH  # decode turns this many tiles into pixels at once: decode_tiles's own batches


@torch.no_grad()
def encode(
    run: Run,
    model: torch.nn.Module,
    coder: LatentCoder,
    source: Path,
    step: float | None = None,
    max_error: int | None = None,
    allow_flat: bool = True,
) -> Encoded:
    """Encode one image file; with `max_error` D, every decoded pixel is within D of the original, and
    the latents are left out when the residual layer alone is smaller (unless `allow_flat` is False).

    `step` defaults to the coder's (0.25 x the channel std for fitted models, 1 for learned priors).
    """
    (result,) = encode_many(run, model, coder, [source], step, max_error, allow_flat)
    if isinstance(result, NormcompressError):
        raise result
    return result


@torch.no_grad()
def encode_many(
    run: Run,
    model: torch.nn.Module,
    coder: LatentCoder,
    sources: list[Path],
    step: float | None = None,
    max_error: int | None = None,
    allow_flat: bool = True,
):
    """encode() of many files, in order: yields each file's Encoded, or the NormcompressError that stopped
    it. The encoder runs on many files' tiles at once (its latents are quantised and stored, so the
    batch cannot change a file); the decoder runs on one file's tiles, as decode() does, so a file
    decodes to exactly the picture reported, whatever was encoded beside it."""
    if max_error is not None and not 0 <= max_error <= 255:
        raise CodecError(f"--max-error must be between 0 and 255 pixel levels, not {max_error}")
    step = stored_step(coder.default_step if step is None else step)  # exactly the value the file stores
    tile = run.train_config().image_size
    device = next(model.parameters()).device
    for chunk in _chunks(sources, tile, max_error is not None):
        opened = [item for item in chunk if isinstance(item, _Opened)]
        tiles = [len(item.tiles) for item in opened]
        latents = iter(
            in_batches(model.encoder, torch.cat([item.tiles for item in opened]), device).split(tiles) if opened else ()
        )
        for item in chunk:
            if isinstance(item, NormcompressError):
                yield item
                continue
            try:
                yield _encode_latents(run, model, coder, item, next(latents), step, max_error, allow_flat, tile, device)
            except NormcompressError as exc:
                yield exc


def _chunks(sources: list[Path], tile: int, residual: bool):
    """The files opened, in order, in lists of about ENCODER_BATCH_TILES tiles (a file that cannot be
    opened is its NormcompressError)."""
    chunk: list[_Opened | NormcompressError] = []
    tiles = 0
    for source in sources:
        try:
            item = _open(source, tile, residual)
            tiles += len(item.tiles)
        except NormcompressError as exc:
            item = exc
        chunk.append(item)
        if tiles >= ENCODER_BATCH_TILES:
            yield chunk
            chunk, tiles = [], 0
    if chunk:
        yield chunk


def _open(source: Path, tile: int, residual: bool) -> _Opened:
    original, rgb = read_image(source)
    kind = "RGBA" if "A" in original.getbands() else ("L" if original.mode in ("L", "I", "I;16", "F", "1") else "RGB")
    width, height = original.size
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise CodecError(
            f"{source}: {width}x{height} is larger than a .ncz file holds ({MAX_SIDE} a side, {MAX_PIXELS:,} pixels)"
        )
    if residual and width * height > MAX_RESIDUAL_PIXELS:
        raise CodecError(
            f"{source}: {width}x{height} is larger than a near-lossless .ncz holds "
            f"({MAX_RESIDUAL_PIXELS:,} pixels); compress it without --max-error, or in parts"
        )
    return _Opened(source, original, rgb, kind, *to_tiles(rgb, tile))


def _encode_latents(
    run, model, coder: LatentCoder, item: _Opened, latents, step, max_error, allow_flat, tile, device
) -> Encoded:
    """One file from its latents: the coded symbols, the decoder's picture, the residual layer, the file."""
    original, rgb, kind = item.original, item.rgb, item.kind
    width, height = original.size
    payload, low, high, symbols = coder.code(latents, step, str(item.source))
    decoded = decode_tiles(model, coder, symbols, step, device)
    picture, produced, target = _picture(from_tiles(decoded, item.rows, item.cols, height, width), kind, original, rgb)
    residual_section, residual, flat, context = b"", b"", False, False
    if max_error is not None:
        corrected, residual_section, residual = code_residual(produced, target, max_error)
        # The residual layer alone, over a flat gray image, is often smaller than latents + residual:
        # on 32x32 CIFAR-10 it always was (benchmarks/near_lossless.py). It is coded under the learned
        # context model, or LOCO-I's predictor (which does better at large D); the smallest file wins.
        if allow_flat:
            learned = code_context_residual(target, max_error)
            loco = code_residual(torch.full_like(produced, FLAT_GRAY), target, max_error)
            context = len(learned[1]) <= len(loco[1])
            alone = learned if context else loco
            flat = len(alone[1]) < len(payload) + len(residual_section)
        if flat:
            (corrected, residual_section, residual), payload, low, high = alone, b"", 0, 0
        produced = corrected
        picture = _with_pixels(picture, produced, kind)
    alpha = zlib.compress(np.asarray(original.getchannel("A")).tobytes(), 9) if kind == "RGBA" else None
    flags = (
        MODES[kind]
        | (RESIDUAL_FLAG if max_error is not None else 0)
        | (FLAT_FLAG if flat else 0)
        | (CONTEXT_FLAG if flat and context else 0)
    )
    data = pack(
        run.id[-ID_TAIL:].encode(),
        weights_hash(model),
        flags,
        width,
        height,
        tile,
        step,
        low,
        high,
        payload,
        alpha,
        residual_section,
        coder.version,
    )
    error = (produced.float() - target.float()).abs()
    return Encoded(
        data, picture, len(payload), len(residual), psnr_from_mse(error.div(255).pow(2).mean().item()), int(error.max())
    )


@torch.no_grad()
def decode(
    data: bytes, store: RunStore, name: str = "file", device: str | torch.device = "cpu", data_dir: str = "data"
) -> Image.Image:
    header = parse(data, name)
    run, model, coder = _find_run(header, store, name, str(device), data_dir)
    tile = run.train_config().image_size
    if header.tile != tile:
        raise CodecError(f"{name} is damaged (tiles of {header.tile} pixels; run {run.id} codes {tile})")
    if (header.version == HYPERPRIOR_VERSION) != (coder.version == HYPERPRIOR_VERSION):
        raise CodecError(f"{name} is damaged (format version {header.version} does not fit run {run.id}'s model)")
    if header.flat:
        image = torch.full((3, header.height, header.width), FLAT_GRAY, dtype=torch.uint8)
    else:
        image = _decode_latents(header, model, coder, name, device)
    picture = Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB")
    if header.kind == "L":
        picture = picture.convert("L")
    if header.max_error >= 0:
        picture = _add_residual(picture, header, name)
    if header.kind == "RGBA":
        try:  # inflated to at most the plane's size: a zlib bomb stops there
            inflater = zlib.decompressobj()
            alpha = inflater.decompress(header.alpha, header.width * header.height)
            if inflater.unconsumed_tail or not inflater.eof:
                raise zlib.error("alpha plane larger than the image")
        except zlib.error:
            raise CodecError(f"{name} is damaged (alpha plane)") from None
        if len(alpha) != header.width * header.height:
            raise CodecError(f"{name} is damaged (alpha plane size)")
        picture.putalpha(Image.frombytes("L", (header.width, header.height), alpha))
    return picture


def _decode_latents(header: Header, model, coder: LatentCoder, name: str, device) -> torch.Tensor:
    """The model's reconstruction (3, H, W) uint8 from the file's latent payload."""
    rows, cols = -(-header.height // header.tile), -(-header.width // header.tile)
    latent_shape = model.encoder(torch.zeros(1, 3, header.tile, header.tile, device=device)).shape[1:]
    symbols = coder.decode(
        header.payload, header.low, header.high, header.step, (rows * cols, *latent_shape), name, device
    )
    # The tiles in the encoder's batches (a convolution's last bit can depend on its batch), each batch
    # made pixels before the next: memory stays bounded by a batch, not the picture's float tiles.
    tile = header.tile
    image = torch.empty(3, rows * tile, cols * tile, dtype=torch.uint8)
    for start in range(0, len(symbols), DECODER_BATCH_TILES):
        part = decode_tiles(
            model, coder, symbols[start : start + DECODER_BATCH_TILES], header.step, torch.device(device)
        )
        for index, pixels in enumerate((part.clamp(0, 1) * 255).round().to(torch.uint8), start):
            row, col = divmod(index, cols)
            image[:, row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = pixels
    return image[:, : header.height, : header.width]


def _find_run(header: Header, store: RunStore, name: str, device: str, data_dir: str):
    """The run whose id ends in the file's id tail and whose weights match the file's hash, with its
    model and its coder."""
    candidates = [r for r in store.runs() if r.id.endswith(header.id_tail)] if header.id_tail else []
    if not candidates:
        raise CodecError(f"{name} needs the run whose id ends in {header.id_tail}, which is not in {store.root}")
    for run in candidates:
        stamp = run.checkpoint_path.stat().st_mtime_ns if run.checkpoint_path.exists() else 0
        model, weights = _loaded_model(str(run.path), stamp, device)
        if weights == header.weights:
            return run, model, _coder(str(run.path), stamp, device, data_dir)
    raise CodecError(f"{name} was made with other weights than run {candidates[0].id} now holds")


# Kept while a run's checkpoint is unchanged: decompressing many files reads and hashes a model once.


@functools.lru_cache(maxsize=4)
def _loaded_model(run_path: str, checkpoint_stamp: int, device: str) -> tuple[torch.nn.Module, bytes]:
    model = load_model(Run(Path(run_path)), device)
    return model, weights_hash(model)


@functools.lru_cache(maxsize=4)
def _coder(run_path: str, checkpoint_stamp: int, device: str, data_dir: str) -> LatentCoder:
    return coder_for(Run(Path(run_path)), _loaded_model(run_path, checkpoint_stamp, device)[0], data_dir)


def decode_tiles(model, coder: LatentCoder, symbols: torch.Tensor, step: float, device) -> torch.Tensor:
    """The decoder network's tiles (float) for a file's symbols, in the encoder's batches."""
    return in_batches(model.decoder, coder.latents_of(symbols, step), device)


def _add_residual(picture: Image.Image, header: Header, name: str) -> Image.Image:
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
    if header.kind != "L":
        pixels = pixels.permute(2, 0, 1)
    try:
        if header.context_version:
            corrected = decode_context(
                header.residual,
                header.residual_low,
                header.residual_high,
                header.max_error,
                1 if pixels.dim() == 2 else 3,
                header.height,
                header.width,
                name,
            )
        elif len(header.residual_scales) != (1 if pixels.dim() == 2 else 3):
            raise ValueError("scales")
        else:
            corrected = decode_residual(header, as_planes(pixels), name)
    except CodecError:
        raise
    except Exception as exc:  # constriction refuses some corrupt streams: one message, like any damage
        raise CodecError(f"{name} is damaged (residual: {type(exc).__name__})") from None
    corrected = torch.from_numpy(corrected.astype(np.uint8)).view(pixels.shape)
    return _with_pixels(picture, corrected, "L" if header.kind == "L" else "RGB")  # alpha comes after


def _with_pixels(picture: Image.Image, pixels: torch.Tensor, kind: str) -> Image.Image:
    """The picture with its colour channels replaced (its alpha, if any, kept)."""
    if kind == "L":
        return Image.fromarray(pixels.numpy(), "L")
    result = Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB")
    if kind == "RGBA":
        result.putalpha(picture.getchannel("A"))
    return result


def _picture(recon: torch.Tensor, kind: str, original: Image.Image, rgb: torch.Tensor):
    """The decoded picture in the original's mode, and the pixels errors are measured on."""
    picture = Image.fromarray(recon.permute(1, 2, 0).numpy(), "RGB")
    if kind == "L":
        picture = picture.convert("L")
        produced = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
        return picture, produced, torch.from_numpy(np.asarray(original.convert("L"), dtype=np.uint8).copy())
    if kind == "RGBA":
        picture.putalpha(original.getchannel("A"))
    return picture, recon, rgb
