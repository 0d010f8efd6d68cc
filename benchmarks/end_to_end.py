"""End to end: `normcompress train --norm L2 --epochs 10` against the original pipeline, each in a fresh
process, on equal training work: 50,000 CIFAR-10-shaped training images each (the embedded sample's
training split tiled), 391 steps of 128 per epoch.

The original (benchmarks/reference_train.py) holds the 50,000 images decoded in memory, as torchvision's
CIFAR10 does, and runs `fromarray` + `ToTensor` per item through DataLoader(num_workers=2). The engine
reads a folder of 55,556 PNGs (so that its training split, after the fixed 10% validation hold-out, is
the same 50,000), decodes each once, and trains from memory. The engine's wall time so also includes
decoding 55,556 PNGs and a validation pass over 5,556 images per epoch that the original does not do.
Peak host RAM is the training process's maximum resident set; the original's two DataLoader workers are
reported apart (forked, so much of their memory is shared).
Run: python benchmarks/end_to_end.py [--images 50000]
"""

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torchvision

from normcompress.data import VALIDATION_FRACTION, load_sample

HERE = Path(__file__).resolve().parent
PEAK = (
    "import resource, runpy, sys\ntry:\n    {body}\nfinally:\n    print('peak_rss_kb', "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
    "file=sys.stderr)\n"
)


def write_folder(root: Path, count: int) -> None:
    images = load_sample().train
    (root / "all").mkdir(parents=True)
    for i in range(count):
        torchvision.io.write_png(images[i % len(images)], str(root / "all" / f"{i:05d}.png"))


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak resident MB of the process, and of its largest child (0 without children)."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    peaks = next(line.split()[1:] for line in result.stderr.splitlines() if line.startswith("peak_rss_kb"))
    return wall, int(peaks[0]) / 1024, int(peaks[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        total = math.ceil(args.images / (1 - VALIDATION_FRACTION))  # the training split is then --images
        write_folder(folder, total)
        # The original recipe (constant Adam 1e-3) on both sides: equal work.
        engine_body = (
            f"sys.argv = ['normcompress', 'train', '--norm', 'L2', '--epochs', '{args.epochs}', "
            "'--schedule', 'constant', '--optimizer', 'adam', '--lr', '1e-3', "
            f"'--dataset', 'folder:{folder}', '--device', '{args.device}', '--runs-dir', '{tmp}/runs', "
            "'-q']\n    runpy.run_module('normcompress', run_name='__main__')"
        )
        engine = timed([sys.executable, "-c", PEAK.format(body=engine_body)])
        reference_body = (
            f"sys.argv = ['reference_train.py', '--images', '{args.images}', '--epochs', '{args.epochs}', "
            f"'--device', '{args.device}']\n    runpy.run_path('{HERE / 'reference_train.py'}', "
            "run_name='__main__')"
        )
        reference = timed([sys.executable, "-c", PEAK.format(body=reference_body)])
    print(f"{args.images:,} training images each, {args.epochs} epochs, L2, batch 128, {args.device}")
    print(
        f"original (arrays in memory, ToTensor, DataLoader(2)): {reference[0]:7.1f} s, peak RAM {reference[1]:6.0f} MB"
        f" (+ 2 workers, up to {reference[2]:.0f} MB each)"
    )
    print(f"normcompress train (decode {total:,} PNGs once, train): {engine[0]:7.1f} s, peak RAM {engine[1]:6.0f} MB")
    print(f"speed-up: {reference[0] / engine[0]:.2f}x")


if __name__ == "__main__":
    main()
