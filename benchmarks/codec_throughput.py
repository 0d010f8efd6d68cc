"""Encode and decode throughput of .ncz files against Pillow's WebP, on the same CIFAR-10 test
images (32x32, one file per image), CPU, in one run.

Run: python benchmarks/codec_throughput.py RUN --runs-dir DIR [--images 300]
"""

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from normcompress.codec import coder_for, decode, encode, encode_many
from normcompress.data import load_sample
from normcompress.runs import RunStore, load_model


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8,.0f} images/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    store = RunStore(args.runs_dir)
    run = store.get(args.run)
    model = load_model(run)
    entropy = coder_for(run, model)
    images = [image.permute(1, 2, 0).numpy() for image in load_sample().val[: args.images]]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.png" for i in range(len(images))]
        for path, pixels in zip(paths, images, strict=False):
            Image.fromarray(pixels).save(path)
        encode(run, model, entropy, paths[0])  # warm-up
        start = time.perf_counter()
        files = [encode(run, model, entropy, path).data for path in paths]
        ncz_encode = time.perf_counter() - start
        start = time.perf_counter()
        batched = [e.data for e in encode_many(run, model, entropy, paths)]  # what `compress` does
        ncz_encode_many = time.perf_counter() - start
        assert all(isinstance(d, bytes) for d in batched)
        start = time.perf_counter()
        for data in files:
            decode(data, store)
        ncz_decode = time.perf_counter() - start
        start = time.perf_counter()
        lossless = [e.data for e in encode_many(run, model, entropy, paths, max_error=0)]
        lossless_encode = time.perf_counter() - start
        start = time.perf_counter()
        for data in lossless:
            decode(data, store)
        lossless_decode = time.perf_counter() - start
    start = time.perf_counter()
    webps = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="webp", quality=50, method=6)
        webps.append(buffer.getvalue())
    webp_encode = time.perf_counter() - start
    start = time.perf_counter()
    for data in webps:
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    webp_decode = time.perf_counter() - start
    print(f"{len(images)} CIFAR-10 test images, 32x32, one file each; CPU, {torch.get_num_threads()} threads")
    print(
        f"normcompress .ncz (step 0.25): encode {rate(len(images), ncz_encode)}   decode {rate(len(images), ncz_decode)}"
    )
    print(f"  a folder, encoder batched:   encode {rate(len(images), ncz_encode_many)}")
    print(
        f"lossless .ncz (--max-error 0): encode {rate(len(images), lossless_encode)}   decode "
        f"{rate(len(images), lossless_decode)}   ({np.mean([len(d) for d in lossless]) * 8 / 1024:.2f} bpp)"
    )
    print(
        f"WebP q50, method 6 (Pillow):   encode {rate(len(images), webp_encode)}   decode {rate(len(images), webp_decode)}"
    )


if __name__ == "__main__":
    main()
