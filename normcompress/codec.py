"""Real compression with a trained run: quantised latents, entropy-coded, in a .ncz file.

Encoding: the image is tiled as in `reconstruct`, each tile's latent is centred and divided by a
per-channel step (`step` times the channel's standard deviation on the training images), rounded,
and the integers are coded with constriction's ANS coder under a quantised Gaussian model. A run's
entropy model (per-channel mean and std of its latents) is fitted after training on its training
images and kept as entropy.json in the run.

The .ncz format. At 32x32 every header byte costs 0.008 bpp, so the header is compact: 28 bytes
(0.22 bpp) for a 32x32 RGB image without residual. Integers are LEB128 varints (`uv`; `sv`: zigzag-signed),
fixed fields little-endian:
    "NCZ" | version u8 | id tail length u8 | the run id's last characters (its random suffix)
    | weights hash 4 bytes | flags u8 (bits 0-1 mode: 0 RGB, 1 gray, 2 RGBA; bit 2 residual)
      (bit 3: no latents, the residual layer alone over flat gray; near-lossless files only)
    | width uv | height uv | tile uv (version 1: u8) | step f16 | symbol min sv | symbol max sv
    | payload words uv | payload (u32 words)
    | RGBA only: alpha length uv | alpha (zlib)
    | residual only: max error u8 | residual min sv | residual max sv | a Laplace scale f32 per
                     channel (1 gray, 3 colour) | residual words uv | residual (u32 words)
    | CRC-32 of everything before, u32
The id tail finds the run in the store (the weights hash settles the rare tie) and the hash checks
that its weights are the ones the file was made with. A file that is damaged, truncated or foreign is
refused with one message, before any decoding.

Limits, checked before anything large is allocated: a file of at most 64 MiB (MAX_FILE_BYTES), at most
16 megapixels and 16384 pixels a side, and at most 4096 pixels per byte of file (so a 40-byte file cannot
claim 4096x4096: the smallest real file of that size is kilobytes); an alpha plane inflates to at most
width x height bytes. Version 2 (this one) stores the tile size as a varint, so runs trained on tiles
over 255 pixels can compress; version 1 files (tile as one byte) still decode.

Near-lossless mode (`max_error` D): the difference between the original and the decoded image is
quantised with step 2D+1 and coded pixel by pixel under a Laplace centred on a prediction from the
pixels already decoded (LOCO-I's median edge detector, and green's error for red and blue), so that
every decoded pixel is within D of the original (D = 0 is lossless).
"""

import functools
import hashlib
import io
import json
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np
import torch
from PIL import Image

from .data import load_data
from .errors import NormcompressError
from .files import atomic_write_json
from .metrics import psnr_from_mse, to_float
from .model import load_model
from .prior import latent_channels
from .reconstruct import from_tiles, in_batches, read_image, to_tiles
from .runs import Run, RunStore, StoreError

MAGIC, VERSION = b"NCZ", 2
READABLE_VERSIONS = (1, 2)
MAX_FILE_BYTES = 64 * 2**20
MAX_PIXELS_PER_BYTE = 4096
DEFAULT_STEP = 0.25  # x the channel std: about 0.03 dB below the unquantised model on CIFAR-10
MAX_SIDE = 16384
ID_TAIL = 6  # a run id's random suffix: 16.7 million values, enough to find a run among a store's
HASH_BYTES = 4
MAX_PIXELS = 16 * 2**20  # 16 megapixels a file: decoding one takes seconds and a few hundred MB
MODES = {"RGB": 0, "L": 1, "RGBA": 2}
RESIDUAL_FLAG = 4
FLAT_FLAG = 8  # near-lossless without latents: the residual layer alone, over a flat gray image
FLAT_GRAY = 128


class CodecError(NormcompressError):
    pass


@dataclass
class EntropyModel:
    """Per latent channel: the centre, the quantisation unit at step 1, and the spread (a Gaussian's std).

    A run trained with --rate-lambda brings its learned prior (unit 1, the step it was trained for);
    any other run gets one fitted on its training images (unit = spread = the channel's std).
    """

    mean: torch.Tensor
    unit: torch.Tensor
    spread: torch.Tensor
    default_step: float = DEFAULT_STEP

    def scale(self, step: float) -> torch.Tensor:
        return (self.unit * step).view(1, -1, 1, 1)

    def symbol_std(self, step: float) -> torch.Tensor:
        return self.spread / (self.unit * step)

    @classmethod
    def for_run(cls, run: Run, model: torch.nn.Module, data_dir: str = "data") -> "EntropyModel":
        """The run's learned prior, or a model fitted on its training images the first time it is asked for
        (kept in the run's entropy.json; a damaged one is fitted again)."""
        config = run.train_config()
        channels = latent_channels(model, config.image_size)
        if config.rate_lambda > 0:
            prior = run.load_checkpoint().get("prior")
            try:
                mean, log_scale = prior["mean"].float(), prior["log_scale"].float()
                _check_channels(mean, channels) and _check_channels(log_scale, channels)
            except (TypeError, KeyError, AttributeError, ValueError):
                raise StoreError(f"run {run.id} is damaged: checkpoint.pt holds no usable prior") from None
            spread = log_scale.exp().clamp_min(0.05)
            return cls(mean, torch.ones_like(spread), spread, 1.0)
        saved = _saved_entropy(run, channels)
        if saved is not None:
            return cls(saved[0], saved[1], saved[1])
        data = load_data(run.info().data_source, data_dir, config.limit, config.image_size)
        device = next(model.parameters()).device
        with torch.no_grad():
            latents = in_batches(model.encoder, to_float(data.train), device)
        mean, std = latents.mean((0, 2, 3)), latents.std((0, 2, 3)).clamp_min(1e-6)
        atomic_write_json(run.entropy_path, {"mean": mean.tolist(), "std": std.tolist(), "fitted_on": data.source,
                                             "images": len(data.train)})
        return cls(mean, std, std)


def _check_channels(values: torch.Tensor, channels: int) -> bool:
    if values.shape != (channels,) or not torch.isfinite(values).all():
        raise ValueError("wrong shape or non-finite values")
    return True


def _saved_entropy(run: Run, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """entropy.json's (mean, std), or None when it is missing or does not hold `channels` finite means and
    positive finite stds (it is then fitted again)."""
    if not run.entropy_path.exists():
        return None
    try:
        saved = json.loads(run.read_bytes("entropy.json", 1 << 20).decode("utf-8"))
        mean, std = torch.tensor(saved["mean"], dtype=torch.float32), torch.tensor(saved["std"], dtype=torch.float32)
        _check_channels(mean, channels) and _check_channels(std, channels)
        if not (std > 0).all():
            raise ValueError("std <= 0")
    except (StoreError, ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError):
        return None
    return mean, std


def weights_hash(model: torch.nn.Module) -> bytes:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()[:HASH_BYTES]


@dataclass
class Encoded:
    data: bytes
    reconstruction: Image.Image
    payload_bytes: int
    residual_bytes: int
    psnr: float
    max_error: int


@torch.no_grad()
def encode(run: Run, model: torch.nn.Module, entropy: EntropyModel, source: Path, step: float | None = None,
           max_error: int | None = None, allow_flat: bool = True) -> Encoded:
    """Encode one image file; with `max_error` D, every decoded pixel is within D of the original, and
    the latents are left out when the residual layer alone is smaller (unless `allow_flat` is False).

    `step` defaults to the entropy model's (0.25 x the channel std for fitted models, 1 for learned priors).
    """
    if max_error is not None and not 0 <= max_error <= 255:
        raise CodecError(f"--max-error must be between 0 and 255 pixel levels, not {max_error}")
    step = stored_step(entropy.default_step if step is None else step)  # exactly the value the file stores
    original, rgb = read_image(source)
    kind = "RGBA" if "A" in original.getbands() else ("L" if original.mode in ("L", "I", "I;16", "F", "1") else "RGB")
    width, height = original.size
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise CodecError(f"{source}: {width}x{height} is larger than a .ncz file holds "
                         f"({MAX_SIDE} a side, {MAX_PIXELS:,} pixels)")
    tile = run.train_config().image_size
    tiles, rows, cols = to_tiles(rgb, tile)
    device = next(model.parameters()).device
    latents = in_batches(model.encoder, tiles, device)
    symbols = torch.round((latents - entropy.mean.view(1, -1, 1, 1)) / entropy.scale(step)).to(torch.int32)
    low, high = int(symbols.min()), int(symbols.max())
    if low < -32768 or high > 32767:
        raise CodecError(f"{source}: latents out of range for step {step}")
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.flatten().numpy(), _symbol_model(low, high), *_symbol_params(entropy, step,
                                                                                            symbols.shape))
    payload = coder.get_compressed().astype("<u4").tobytes()
    decoded = _decode_tiles(model, entropy, symbols, step, device)
    picture, produced, target = _picture(from_tiles(decoded, rows, cols, height, width), kind, original, rgb)
    residual_section, residual, flat = b"", b"", False
    if max_error is not None:
        corrected, residual_section, residual = _code_residual(produced, target, max_error)
        # The residual layer alone, over a flat gray image, is often smaller than latents + residual:
        # on 32x32 CIFAR-10 it always was (benchmarks/near_lossless.py). The smaller file wins.
        if allow_flat:
            alone = _code_residual(torch.full_like(produced, FLAT_GRAY), target, max_error)
            flat = len(alone[1]) < len(payload) + len(residual_section)
        if flat:
            (corrected, residual_section, residual), payload, low, high = alone, b"", 0, 0
        produced = corrected
        picture = _with_pixels(picture, produced, kind)
    alpha = zlib.compress(np.asarray(original.getchannel("A")).tobytes(), 9) if kind == "RGBA" else b""
    id_tail = run.id[-ID_TAIL:].encode()
    flags = MODES[kind] | (RESIDUAL_FLAG if max_error is not None else 0) | (FLAT_FLAG if flat else 0)
    body = b"".join([
        MAGIC, bytes([VERSION, len(id_tail)]), id_tail, weights_hash(model), bytes([flags]),
        _uvarint(width), _uvarint(height), _uvarint(tile), struct.pack("<e", step), _svarint(low), _svarint(high),
        _uvarint(len(payload) // 4), payload,
        _uvarint(len(alpha)) + alpha if kind == "RGBA" else b"",
        residual_section,
    ])
    error = (produced.float() - target.float()).abs()
    return Encoded(body + struct.pack("<I", zlib.crc32(body)), picture, len(payload), len(residual),
                   psnr_from_mse(error.div(255).pow(2).mean().item()), int(error.max()))


def as_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def stored_step(value: float) -> float:
    """The step as the file stores it (half precision): 0.25 stays 0.25, 0.1 becomes 0.0999755859375."""
    if not 1e-3 <= value <= 1000:
        raise CodecError(f"--step must be between 0.001 and 1000, not {value:g}")
    return struct.unpack("<e", struct.pack("<e", value))[0]


def _uvarint(value: int) -> bytes:
    """LEB128: seven bits a byte, low first; the high bit says another byte follows."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _svarint(value: int) -> bytes:
    return _uvarint(value * 2 if value >= 0 else -value * 2 - 1)  # zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3


def _read_uvarint(reader: io.BytesIO, max_bytes: int = 5) -> int:
    value = 0
    for shift in range(0, 7 * max_bytes, 7):
        (byte,) = _read(reader, 1)
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
    raise ValueError("varint too long")


def _read_svarint(reader: io.BytesIO) -> int:
    value = _read_uvarint(reader)
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _residual_model(low: int, high: int):
    """Quantised Laplaces over [low, high]; each symbol's mean and scale come with it."""
    return constriction.stream.model.QuantizedLaplace(low, high + 1)


def _med(padded: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector at (ys, xs) from the west, north and north-west neighbours.

    `padded` is (C, H+1, W+1) with the pixels at [:, 1:, 1:] (its zero first row and column are never
    used: _residual_means predicts the image's first row and column otherwise).
    """
    west, north, corner = padded[:, ys + 1, xs], padded[:, ys, xs + 1], padded[:, ys, xs]
    high, low = np.maximum(west, north), np.minimum(west, north)
    return np.where(corner >= high, low, np.where(corner <= low, high, west + north - corner))


def _diagonals(height: int, width: int):
    """Pixels by anti-diagonal: every neighbour _med reads lies on an earlier diagonal, so a decoder can
    predict a whole diagonal at once."""
    for d in range(height + width - 1):
        ys = np.arange(max(0, d - width + 1), min(d, height - 1) + 1)
        yield ys, d - ys


def _residual_means(decoded: np.ndarray, reconstruction: np.ndarray, step: int, ys, xs) -> np.ndarray:
    """The expected quantised residual of each channel on a diagonal (before _channel_mean).

    Each pixel is predicted from its already-decoded neighbours (LOCO-I's median edge detector; on
    the first row its west neighbour, in the first column its north one, and the model's
    reconstruction for the first pixel), and the residual expected is that
    prediction minus the reconstruction, in steps.
    Predicting the residual from neighbouring residuals, the first try, cost 3-4 bpp more on CIFAR-10:
    an autoencoder's residual is far less predictable than the image it comes from.
    """
    predicted = np.where(ys == 0, decoded[:, 1, xs], np.where(xs == 0, decoded[:, ys, 1], _med(decoded, ys, xs)))
    return np.where((ys == 0) & (xs == 0), 0.0, (predicted - reconstruction[:, ys, xs]) / step)


def _channel_mean(means: np.ndarray, channel: int, residual: np.ndarray, ys, xs) -> np.ndarray:
    """Channel `channel`'s expected residual on the diagonal (ys, xs): in colour, red and blue add green's
    error at the same pixel (green is coded first), since an autoencoder errs mostly in luminance."""
    if len(means) == 3 and channel != 1:
        return means[channel] + residual[1, ys, xs] - means[1]
    return means[channel]


def _coding_order(channels: int) -> list[int]:
    return [1, 0, 2] if channels == 3 else [0]  # green first: red and blue lean on it


def _planes(pixels: torch.Tensor) -> np.ndarray:
    """(C, H, W) int64 from (C, H, W) or a gray (H, W)."""
    return pixels.numpy().astype(np.int64).reshape(-1, *pixels.shape[-2:])


def _code_residual(produced: torch.Tensor, target: torch.Tensor, max_error: int):
    """Quantise original - decoded with step 2D+1 and code it; return the corrected pixels and the fields.

    The quantised residual is coded pixel by pixel in diagonal order under a Laplace centred on its
    expectation (_residual_means), with one scale per channel.
    """
    step = 2 * max_error + 1
    residual = target.to(torch.int32) - produced.to(torch.int32)
    q = torch.round(residual.double() / step).to(torch.int32)
    corrected = (produced.to(torch.int32) + q * step).clamp(0, 255).to(torch.uint8)
    if int((corrected.to(torch.int32) - target.to(torch.int32)).abs().max()) > max_error:
        raise AssertionError("the residual layer broke its bound")  # cannot happen: |r - q(2D+1)| <= D
    planes, reconstruction = _planes(q), _planes(produced)
    channels, height, width = planes.shape
    decoded = np.zeros((channels, height + 1, width + 1), np.int64)
    decoded[:, 1:, 1:] = _planes(corrected)
    symbols, means, of_channel = [], [], []  # in decoding order
    for ys, xs in _diagonals(height, width):
        diagonal_means = _residual_means(decoded, reconstruction, step, ys, xs)
        for c in _coding_order(channels):
            symbols.append(planes[c, ys, xs])
            means.append(_channel_mean(diagonal_means, c, planes, ys, xs))
            of_channel.append(np.full(len(ys), c))
    symbols, means, of_channel = np.concatenate(symbols), np.concatenate(means), np.concatenate(of_channel)
    scales = [as_float32(max(float(np.abs(symbols[of_channel == c] - means[of_channel == c]).mean()), 0.05))
              for c in range(channels)]  # the Laplace scale that fits each channel's prediction errors
    low, high = int(q.min()), int(q.max())
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), _residual_model(low, high), means,
                         np.array(scales, np.float64)[of_channel])
    data = coder.get_compressed().astype("<u4").tobytes()
    section = b"".join([bytes([max_error]), _svarint(low), _svarint(high), struct.pack(f"<{channels}f", *scales),
                        _uvarint(len(data) // 4), data])
    return corrected, section, data


def _decode_residual(header: "Header", reconstruction: np.ndarray) -> np.ndarray:
    """The corrected pixels (C, H, W): the residual decoded diagonal by diagonal as _code_residual coded
    it, each value added to the reconstruction as soon as it is known (the next diagonals predict from it)."""
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(header.residual, dtype="<u4").astype(np.uint32))
    model = _residual_model(header.residual_low, header.residual_high)
    step = 2 * header.max_error + 1
    channels, height, width = reconstruction.shape
    planes = np.zeros((channels, height, width), np.int64)
    decoded = np.zeros((channels, height + 1, width + 1), np.int64)
    for ys, xs in _diagonals(height, width):
        means = _residual_means(decoded, reconstruction, step, ys, xs)
        for c in _coding_order(channels):
            mean = _channel_mean(means, c, planes, ys, xs)  # green is decoded first
            values = np.asarray(coder.decode(model, mean, np.full(len(ys), header.residual_scales[c])))
            planes[c, ys, xs] = values
            decoded[c, ys + 1, xs + 1] = np.clip(reconstruction[c, ys, xs] + values * step, 0, 255)
    return decoded[:, 1:, 1:]


def _with_pixels(picture: Image.Image, pixels: torch.Tensor, kind: str) -> Image.Image:
    """The picture with its colour channels replaced (its alpha, if any, kept)."""
    if kind == "L":
        return Image.fromarray(pixels.numpy(), "L")
    result = Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB")
    if kind == "RGBA":
        result.putalpha(picture.getchannel("A"))
    return result


@dataclass
class Header:
    id_tail: str
    weights: bytes
    width: int
    height: int
    kind: str
    tile: int
    step: float
    low: int
    high: int
    payload: bytes
    alpha: bytes
    max_error: int
    residual_low: int
    residual_high: int
    residual_scales: tuple[float, ...]  # one per colour channel
    residual: bytes
    flat: bool  # no latents: the residual layer alone over a flat gray image


def parse(data: bytes, name: str = "file") -> Header:
    """Check and split a .ncz file; every problem is a CodecError with one line."""
    if len(data) < 8 or data[:3] != MAGIC:
        raise CodecError(f"{name} is not a .ncz file")
    if len(data) > MAX_FILE_BYTES:
        raise CodecError(f"{name} is {len(data):,} bytes; .ncz files hold at most {MAX_FILE_BYTES:,}")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise CodecError(f"{name} is damaged or truncated (checksum mismatch)")
    try:
        reader = io.BytesIO(body[3:])
        version, tail_length = _read(reader, 2)
        if version not in READABLE_VERSIONS:
            raise CodecError(f"{name} has format version {version}; this normcompress reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
        id_tail = _read(reader, tail_length).decode()
        weights = _read(reader, HASH_BYTES)
        (flags,) = _read(reader, 1)
        width, height = _read_uvarint(reader), _read_uvarint(reader)
        (tile,) = _read(reader, 1) if version == 1 else (_read_uvarint(reader),)
        (step,) = struct.unpack("<e", _read(reader, 2))
        low, high = _read_svarint(reader), _read_svarint(reader)
        payload = _read(reader, 4 * _read_uvarint(reader))
        mode = flags & 3
        alpha = _read(reader, _read_uvarint(reader)) if mode == MODES["RGBA"] else b""
        max_error, residual_low, residual_high, residual_scales, residual = -1, 0, 0, (1.0,), b""
        if flags & RESIDUAL_FLAG:
            (max_error,) = _read(reader, 1)
            residual_low, residual_high = _read_svarint(reader), _read_svarint(reader)
            channels = 1 if mode == MODES["L"] else 3
            residual_scales = struct.unpack(f"<{channels}f", _read(reader, 4 * channels))
            residual = _read(reader, 4 * _read_uvarint(reader))
    except (struct.error, UnicodeDecodeError, ValueError):
        raise CodecError(f"{name} is damaged (malformed header)") from None
    kinds = {v: k for k, v in MODES.items()}
    if width * height > MAX_PIXELS:  # bounds the work a damaged or hostile header can ask for
        raise CodecError(f"{name} claims {width}x{height} pixels; .ncz files hold at most {MAX_PIXELS:,}")
    if width * height > MAX_PIXELS_PER_BYTE * len(data):
        raise CodecError(f"{name} claims {width}x{height} pixels, more than {len(data)} bytes can hold")
    if (mode not in kinds or flags & ~(3 | RESIDUAL_FLAG | FLAT_FLAG) or (flags & FLAT_FLAG and not flags & RESIDUAL_FLAG)
            or (flags & FLAT_FLAG and payload) or not 0 < width <= MAX_SIDE or not 0 < height <= MAX_SIDE
            or not 11 <= tile <= 4096 or not step > 0 or low > high or low < -32768 or high > 32767 or reader.read(1)
            or residual_low > residual_high or not all(0 < s < math.inf for s in residual_scales)):
        raise CodecError(f"{name} is damaged (impossible header values)")
    return Header(id_tail, weights, width, height, kinds[mode], tile, step, low, high, payload, alpha,
                  max_error, residual_low, residual_high, residual_scales, residual, bool(flags & FLAT_FLAG))


def _read(reader: io.BytesIO, count: int) -> bytes:
    chunk = reader.read(count)
    if len(chunk) != count:
        raise ValueError("short read")
    return chunk


@torch.no_grad()
def decode(data: bytes, store: RunStore, name: str = "file", device: str | torch.device = "cpu",
           data_dir: str = "data") -> Image.Image:
    header = parse(data, name)
    run, model, entropy = _find_run(header, store, name, str(device), data_dir)
    tile = run.train_config().image_size
    if header.tile != tile:
        raise CodecError(f"{name} is damaged (tiles of {header.tile} pixels; run {run.id} codes {tile})")
    if header.flat:
        image = torch.full((3, header.height, header.width), FLAT_GRAY, dtype=torch.uint8)
    else:
        image = _decode_latents(header, model, entropy, name, device)
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


def _decode_latents(header: Header, model, entropy: EntropyModel, name: str, device) -> torch.Tensor:
    """The model's reconstruction (3, H, W) uint8 from the file's latent payload."""
    rows, cols = -(-header.height // header.tile), -(-header.width // header.tile)
    latent_shape = model.encoder(torch.zeros(1, 3, header.tile, header.tile, device=device)).shape[1:]
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(header.payload, dtype="<u4").astype(np.uint32))
        flat = coder.decode(_symbol_model(header.low, header.high),
                            *_symbol_params(entropy, header.step, (rows * cols, *latent_shape)))
    except Exception as exc:  # constriction refuses some corrupt streams: one message, like any damage
        raise CodecError(f"{name} is damaged (payload: {type(exc).__name__})") from None
    symbols = torch.from_numpy(np.asarray(flat, dtype=np.int32)).view(rows * cols, *latent_shape)
    decoded = _decode_tiles(model, entropy, symbols, header.step, torch.device(device))
    return from_tiles(decoded, rows, cols, header.height, header.width)


def _find_run(header: Header, store: RunStore, name: str, device: str, data_dir: str):
    """The run whose id ends in the file's id tail and whose weights match the file's hash, with its
    model and entropy model."""
    candidates = [r for r in store.runs() if r.id.endswith(header.id_tail)] if header.id_tail else []
    if not candidates:
        raise CodecError(f"{name} needs the run whose id ends in {header.id_tail}, which is not in {store.root}")
    for run in candidates:
        stamp = run.checkpoint_path.stat().st_mtime_ns if run.checkpoint_path.exists() else 0
        model, weights = _loaded_model(str(run.path), stamp, device)
        if weights == header.weights:
            return run, model, _entropy_model(str(run.path), stamp, device, data_dir)
    raise CodecError(f"{name} was made with other weights than run {candidates[0].id} now holds")


# Kept while a run's checkpoint is unchanged: decompressing many files reads and hashes a model once.
@functools.lru_cache(maxsize=4)
def _loaded_model(run_path: str, checkpoint_stamp: int, device: str) -> tuple[torch.nn.Module, bytes]:
    model = load_model(Run(Path(run_path)), device)
    return model, weights_hash(model)


@functools.lru_cache(maxsize=4)
def _entropy_model(run_path: str, checkpoint_stamp: int, device: str, data_dir: str) -> "EntropyModel":
    return EntropyModel.for_run(Run(Path(run_path)), _loaded_model(run_path, checkpoint_stamp, device)[0], data_dir)


def _add_residual(picture: Image.Image, header: Header, name: str) -> Image.Image:
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy())
    if header.kind != "L":
        pixels = pixels.permute(2, 0, 1)
    try:
        if len(header.residual_scales) != (1 if pixels.dim() == 2 else 3):
            raise ValueError("scales")
        corrected = _decode_residual(header, _planes(pixels))
    except Exception as exc:  # constriction refuses some corrupt streams: one message, like any damage
        raise CodecError(f"{name} is damaged (residual: {type(exc).__name__})") from None
    corrected = torch.from_numpy(corrected.astype(np.uint8)).view(pixels.shape)
    return _with_pixels(picture, corrected, "L" if header.kind == "L" else "RGB")  # alpha comes after


def _symbol_model(low: int, high: int):
    """Quantised Gaussians over [low, high]; each symbol's std comes with it (_symbol_params)."""
    return constriction.stream.model.QuantizedGaussian(low, high + 1)


def _symbol_params(entropy: EntropyModel, step: float, shape) -> tuple[np.ndarray, np.ndarray]:
    """Means (0: symbols are centred) and stds of every symbol, channel by channel, in coding order."""
    stds = entropy.symbol_std(step).double().view(1, -1, 1, 1).expand(*shape).flatten().numpy()
    return np.zeros_like(stds), np.ascontiguousarray(stds)


def _decode_tiles(model, entropy: EntropyModel, symbols: torch.Tensor, step: float, device) -> torch.Tensor:
    latents = symbols.float() * entropy.scale(step) + entropy.mean.view(1, -1, 1, 1)
    return in_batches(model.decoder, latents, device)


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


