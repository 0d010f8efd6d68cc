"""The .ncz file format: the header, its varints, its versions and the limits a reader enforces.

At 32x32 every header byte costs 0.008 bpp, so the header is compact: 28 bytes (0.22 bpp) for a 32x32
RGB image without residual. Integers are LEB128 varints (`uv`; `sv`: zigzag-signed), fixed fields
little-endian:
    "NCZ" | version u8 | id tail length u8 | the run id's last characters (its random suffix)
    | weights hash 4 bytes | flags u8 (bits 0-1 mode: 0 RGB, 1 gray, 2 RGBA; bit 2 residual)
      (bit 3: no latents, the residual layer alone over flat gray; near-lossless files only)
      (bit 4: with bit 3, the residual coded under the learned context model)
    | width uv | height uv | tile uv (version 1: u8) | step f16 | symbol min sv | symbol max sv
    | payload words uv | payload (u32 words)
    | RGBA only: alpha length uv | alpha (zlib)
    | residual only: max error u8 | residual min sv | residual max sv | a Laplace scale f32 per
                     channel (1 gray, 3 colour), or with bit 4 the context model's version u8
                     | residual words uv | residual (u32 words)
    | CRC-32 of everything before, u32
The id tail finds the run in the store (the weights hash settles the rare tie) and the hash checks
that its weights are the ones the file was made with. A file that is damaged, truncated or foreign is
refused with one message, before any decoding.

Limits, checked before anything large is allocated: a file of at most 64 MiB (MAX_FILE_BYTES), at most
16 megapixels and 16384 pixels a side, and a file with a residual layer at most 4 megapixels
(MAX_RESIDUAL_PIXELS: that layer is decoded pixel by pixel, about 2.5 µs a pixel here, so 4 MP take some
10 s); an alpha plane inflates to at most width x height bytes (the decoder's job). No bound on pixels per
byte: a flat 1024x1024 image is a real 30-byte file (its latents all one value), so the work a file can
ask for is bounded by its pixels, as for any image format, and the latents are decoded in batches of
tiles into the picture, so memory stays bounded too. An empty stream is refused unless its symbol range
holds one value (then nothing needs coding), and every stream must end where its symbols do. Version 2 (this one) stores the tile size as a varint, so runs
trained on tiles over 255 pixels can compress; version 1 files (tile as one byte) still decode.
Version 3 is version 2's layout for runs of the hyperprior model, whose payload holds the side latents
before the latents, under the header's one symbol range; a reader that knows only versions 1 and 2
refuses it with a line naming the version, and a version-3 file never decodes with a run of another
model (nor a version 1-2 file with a hyperprior run).
"""

import io
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from ..errors import NormcompressError

MAGIC, VERSION = b"NCZ", 2
CONTEXT_MODEL_VERSION = 1  # of the residual's learned context model (context.py, context_model.npz)
HYPERPRIOR_VERSION = 3  # the payload holds side latents, then latents (codec/hyper.py)
READABLE_VERSIONS = (1, 2, 3)
MAX_FILE_BYTES = 64 * 2**20
MAX_SIDE = 16384
MAX_PIXELS = 16 * 2**20  # 16 megapixels a file: decoding one takes seconds and a few hundred MB
MAX_RESIDUAL_PIXELS = 4 * 2**20  # ... with a residual layer (near-lossless), decoded pixel by pixel
ID_TAIL = 6  # a run id's random suffix: 16.7 million values, enough to find a run among a store's
HASH_BYTES = 4
MODES = {"RGB": 0, "L": 1, "RGBA": 2}
RESIDUAL_FLAG = 4
FLAT_FLAG = 8  # near-lossless without latents: the residual layer alone, over a flat gray image
CONTEXT_FLAG = 16  # ... coded under the learned context model (context.py), whose version the file names


class CodecError(NormcompressError):
    pass


def check_stream_end(coder: Any, name: str, part: str) -> None:
    """A stream must end where its symbols do: bytes left over mean a damaged or crafted file."""
    if not coder.is_empty():
        raise CodecError(f"{name} is damaged ({part}: the stream does not end where its symbols do)")


@dataclass
class Header:
    version: int
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
    context_version: int = 0  # > 0: the residual is coded under this version of the learned context model


def parse(data: bytes, name: str = "file") -> Header:
    """Check and split a .ncz file; every problem is a CodecError with one line."""
    if len(data) < 8 or data[:3] != MAGIC:
        raise CodecError(f"{name} is not a .ncz file")
    if len(data) > MAX_FILE_BYTES:
        raise CodecError(f"{name} is {len(data):,} bytes; .ncz files hold at most {MAX_FILE_BYTES:,}")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise CodecError(f"{name} is damaged or truncated (checksum mismatch)")
    reader = io.BytesIO(body[3:])
    try:
        header, flags = _read_header(reader, name)
        trailing = reader.read(1)
    except (struct.error, UnicodeDecodeError, ValueError):
        raise CodecError(f"{name} is damaged (malformed header)") from None
    _check_header(header, flags, name, trailing)
    return header


def _read_header(reader: io.BytesIO, name: str) -> tuple[Header, int]:
    """The header's fields in file order, and its flags byte; struct/Value errors mean a malformed file."""
    version, tail_length = _read(reader, 2)
    if version not in READABLE_VERSIONS:
        raise CodecError(
            f"{name} has format version {version}; this normcompress reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
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
    context_version = 0
    if flags & RESIDUAL_FLAG:
        (max_error,) = _read(reader, 1)
        residual_low, residual_high = _read_svarint(reader), _read_svarint(reader)
        channels = 1 if mode == MODES["L"] else 3
        if flags & CONTEXT_FLAG:
            (context_version,) = _read(reader, 1)
        else:
            residual_scales = struct.unpack(f"<{channels}f", _read(reader, 4 * channels))
        residual = _read(reader, 4 * _read_uvarint(reader))
    kind = {v: k for k, v in MODES.items()}.get(mode, "")
    header = Header(version, id_tail, weights, width, height, kind, tile, step, low, high, payload, alpha,
                    max_error, residual_low, residual_high, residual_scales, residual, bool(flags & FLAT_FLAG),
                    context_version)  # fmt: skip
    return header, flags


def _check_header(h: Header, flags: int, name: str, trailing: bytes) -> None:
    """Bounds before any work: the pixels a header may ask for, and values no encoder writes."""
    if h.width * h.height > MAX_PIXELS:  # bounds the work a damaged or hostile header can ask for
        raise CodecError(f"{name} claims {h.width}x{h.height} pixels; .ncz files hold at most {MAX_PIXELS:,}")
    residual = bool(flags & RESIDUAL_FLAG)
    if residual and h.width * h.height > MAX_RESIDUAL_PIXELS:
        raise CodecError(
            f"{name} claims {h.width}x{h.height} pixels with a residual layer; near-lossless .ncz files "
            f"hold at most {MAX_RESIDUAL_PIXELS:,}"
        )
    if (not h.payload and h.low != h.high) or (residual and not h.residual and h.residual_low != h.residual_high):
        raise CodecError(f"{name} is damaged (an empty stream for symbols that need coding)")
    if flags & CONTEXT_FLAG and h.context_version != CONTEXT_MODEL_VERSION:
        raise CodecError(
            f"{name} was coded with context model version {h.context_version}; this normcompress has "
            f"version {CONTEXT_MODEL_VERSION}"
        )
    impossible = (
        not h.kind
        or flags & ~(3 | RESIDUAL_FLAG | FLAT_FLAG | CONTEXT_FLAG)
        or (h.flat and not residual)
        or (flags & CONTEXT_FLAG and not h.flat)
        or (h.flat and (h.payload or h.low or h.high))
        or not 0 < h.width <= MAX_SIDE
        or not 0 < h.height <= MAX_SIDE
        or not 11 <= h.tile <= 4096
        or not h.step > 0
        or not -32768 <= h.low <= h.high <= 32767
        or trailing
        or h.residual_low > h.residual_high
        or not all(0 < s < math.inf for s in h.residual_scales)
    )
    if impossible:
        raise CodecError(f"{name} is damaged (impossible header values)")


def _read(reader: io.BytesIO, count: int) -> bytes:
    chunk = reader.read(count)
    if len(chunk) != count:
        raise ValueError("short read")
    return chunk


def uvarint(value: int) -> bytes:
    """LEB128: seven bits a byte, low first; the high bit says another byte follows."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def svarint(value: int) -> bytes:
    return uvarint(value * 2 if value >= 0 else -value * 2 - 1)  # zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3


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


def stored_step(value: float) -> float:
    """The step as the file stores it (half precision): 0.25 stays 0.25, 0.1 becomes 0.0999755859375."""
    if not 1e-3 <= value <= 1000:
        raise CodecError(f"--step must be between 0.001 and 1000, not {value:g}")
    return float(struct.unpack("<e", struct.pack("<e", value))[0])


def as_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def residual_section(max_error: int, low: int, high: int, model_field: bytes, data: bytes) -> bytes:
    """The residual layer as a file holds it; `model_field` is the Laplace scales (f32 per channel) or,
    under the learned context model, its version byte."""
    return b"".join([bytes([max_error]), svarint(low), svarint(high), model_field, uvarint(len(data) // 4), data])


def pack(
    id_tail: bytes,
    weights: bytes,
    flags: int,
    width: int,
    height: int,
    tile: int,
    step: float,
    low: int,
    high: int,
    payload: bytes,
    alpha: bytes | None,
    residual_section: bytes,
    version: int = VERSION,
) -> bytes:
    """A whole file: the header fields in order, the sections, and the CRC-32 of it all."""
    body = b"".join(
        [
            MAGIC,
            bytes([version, len(id_tail)]),
            id_tail,
            weights,
            bytes([flags]),
            uvarint(width),
            uvarint(height),
            uvarint(tile),
            struct.pack("<e", step),
            svarint(low),
            svarint(high),
            uvarint(len(payload) // 4),
            payload,
            uvarint(len(alpha)) + alpha if alpha is not None else b"",
            residual_section,
        ]
    )
    return body + struct.pack("<I", zlib.crc32(body))
