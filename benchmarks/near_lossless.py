"""Near-lossless: bits per pixel for every pixel within D levels, per training norm, against the
obvious alternatives, on CIFAR-10 test images from the embedded sample (each image its own file).

- normcompress: `compress --max-error D` with each run given (whole files, and without the container);
  the learned context model alone (what `compress` writes for these images) and the LOCO-I predictor
  it replaced, each over a flat image.
- uniform quantisation: step 2D+1 per channel, ceil(log2(levels)) bits each (D=8: 4 bits -> 12 bpp).
- WebP: the smallest file over a quality sweep (lossy, and lossless) whose max error is <= D.

Run: python benchmarks/near_lossless.py RUN... --runs-dir DIR [--images 200]
"""

import argparse
import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from normcompress.codec import FLAT_GRAY, code_residual, coder_for, encode, parse
from normcompress.codec.context import code_context, decode_context
from normcompress.data import load_sample
from normcompress.rd import write_pngs
from normcompress.runs import RunStore, load_model

BOUNDS = (0, 1, 2, 4, 8)


def uniform_bpp(d: int) -> float:
    return 3 * math.ceil(math.log2(math.ceil(256 / (2 * d + 1))))


def webp_bpp(images: list[np.ndarray], d: int) -> float:
    """Mean over images of the smallest WebP (lossy sweep or lossless) with max error <= d."""
    total = 0.0
    for pixels in images:
        best = None
        for options in [{"lossless": True, "quality": 100, "method": 6}] + [
            {"quality": q, "method": 6} for q in range(100, 0, -5)
        ]:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="webp", **options)
            decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")).astype(int)
            if np.abs(decoded - pixels.astype(int)).max() <= d:
                best = min(best or 1e9, len(buffer.getvalue()))
        total += best * 8 / (pixels.shape[0] * pixels.shape[1])
    return total / len(images)


def context_model_alone_bpp(images: list[np.ndarray], d: int) -> float:
    """The residual layer's coder on its own, with a flat gray image in place of the model's
    reconstruction: what the context model needs without any autoencoder (residual data only)."""
    total = 0.0
    for pixels in images:
        target = torch.from_numpy(pixels).permute(2, 0, 1)
        _, _, data = code_residual(torch.full_like(target, FLAT_GRAY), target, d)
        total += len(data) * 8 / (pixels.shape[0] * pixels.shape[1])
    return total / len(images)


def learned_alone_bpp(images: list[np.ndarray], d: int) -> float:
    """The learned context model's stream (what a flat file's residual holds), without the container."""
    return float(np.mean([len(code_context(p.transpose(2, 0, 1).astype(np.int64), d)[3]) * 8 / 1024 for p in images]))


def lossless_speed(images: list[np.ndarray]) -> list[str]:
    """Images/s of the learned context model (D=0, stream only) and of WebP lossless, both ways, in turn."""
    planes = [p.transpose(2, 0, 1).astype(np.int64) for p in images]
    start = time.perf_counter()
    streams = [code_context(p, 0) for p in planes]
    middle = time.perf_counter()
    for _, low, high, data in streams:
        decode_context(data, low, high, 0, 3, 32, 32)
    ours = (len(images) / (middle - start), len(images) / (time.perf_counter() - middle))
    start = time.perf_counter()
    files = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="webp", lossless=True, quality=100, method=6)
        files.append(buffer.getvalue())
    middle = time.perf_counter()
    for data in files:
        Image.open(io.BytesIO(data)).convert("RGB").load()
    webp = (len(images) / (middle - start), len(images) / (time.perf_counter() - middle))
    return [
        f"{name:<34} encode {enc:>7,.0f} images/s   decode {dec:>7,.0f} images/s"
        for name, (enc, dec) in (("learned context model, lossless", ours), ("WebP lossless, method 6", webp))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    store = RunStore(args.runs_dir)
    test = load_sample().val
    picks = np.linspace(0, len(test) - 1, args.images).astype(int)
    images = [test[i].permute(1, 2, 0).numpy() for i in picks]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(images, Path(tmp))
        for ref in args.runs:
            run = store.get(ref)
            model = load_model(run)
            entropy = coder_for(run, model)
            cells = []
            for d in BOUNDS:
                files = [encode(run, model, entropy, p, max_error=d, allow_flat=False).data for p in paths]
                whole = np.mean([len(f) * 8 / 1024 for f in files])
                coded = np.mean([(len(h.payload) + len(h.residual)) * 8 / 1024 for h in map(parse, files)])
                cells.append(f"{whole:.2f} ({coded:.2f})")
            rows.append([run.info().label, *cells])
        # What `compress --max-error` writes: the latents are left out where the residual alone is smaller.
        auto = [
            np.mean([len(encode(run, model, entropy, p, max_error=d).data) * 8 / 1024 for p in paths]) for d in BOUNDS
        ]
        rows.append([f"normcompress compress --max-error D ({run.id[-6:]})", *(f"{b:.2f}" for b in auto)])
    rows.append(["learned context model alone", *(f"({learned_alone_bpp(images, d):.2f})" for d in BOUNDS)])
    rows.append(
        ["LOCO-I predictor alone (the first coder)", *(f"({context_model_alone_bpp(images, d):.2f})" for d in BOUNDS)]
    )
    rows.append(["uniform quantisation", *(f"{uniform_bpp(d):.2f}" for d in BOUNDS)])
    rows.append(["WebP (best quality within D)", *(f"{webp_bpp(images, d):.2f}" for d in BOUNDS)])
    print(f"bits per pixel with every pixel within D levels; {len(images)} CIFAR-10 test images, 32x32, one file each;")
    print("normcompress: whole .ncz file (latents + residual alone, without the container)\n")
    headers = ["", *(f"D={d}" for d in BOUNDS)]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
    print(f"\nlossless, {len(images)} images, one at a time (this CPU, {torch.get_num_threads()} threads):")
    print("\n".join(lossless_speed(images)))


if __name__ == "__main__":
    main()
