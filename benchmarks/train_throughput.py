"""Training throughput: the original pipeline against the normcompress engine, same images, steps and model.

Reference: the original study's pipeline (benchmarks/original_pipeline.py): the split decoded in memory
as torchvision's CIFAR10 keeps it, `fromarray` + `ToTensor` per item through DataLoader(num_workers=2,
shuffle=True), the batch moved to the device each step.
Engine: normcompress.train, the split held as uint8 on the device and batched from memory.

Both train the seed model with Adam under L2 for the same epochs on the same 5,170 images (the embedded
sample's training split). Images/s are for training steps only (the engine's per-epoch validation is
excluded): the median of the epochs after the first (warm-up), because single epochs on a shared 2-core
VM varied by 20%.
On CUDA the defaults replay each step from a CUDA graph; `--variants` times it without one too.
Run: python benchmarks/train_throughput.py [--device cuda] [--epochs 5] [--variants]
"""

import argparse
import math
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_pipeline import as_hwc, train_reference

from normcompress.data import load_sample
from normcompress.devices import resolve_device
from normcompress.runs import RunStore
from normcompress.train import TrainConfig, train


def reference(device: torch.device, epochs: int, batch_size: int) -> tuple[float, int]:
    """Median images/s of the original pipeline's epochs after the first, and the images per epoch."""
    images = as_hwc(load_sample().train)
    rates = train_reference(images, device, epochs, batch_size)
    return statistics.median(rates[1:] or rates), len(images)


def engine(device: torch.device, epochs: int, batch_size: int, **options) -> float:
    with tempfile.TemporaryDirectory() as runs:
        config = TrainConfig(
            norm="L2",
            epochs=epochs,
            batch_size=batch_size,
            dataset="sample",
            device=str(device),
            lr=1e-3,
            optimizer="adam",
            schedule="constant",
            **options,
        )  # the original's recipe
        run = train(config, RunStore(runs))
        rates = [r["images_per_s"] for r in run.metrics()]
        return statistics.median(rates[1:] or rates)


VARIANTS = [  # label, batch size (None: --batch-size), engine options
    ("engine, without the CUDA graph", None, {"cuda_graph": False}),  # the CPU has none: the defaults again
    ("engine, contiguous (NCHW)", None, {"channels_last": False}),
    ("engine, channels-last", None, {"channels_last": True}),
    ("engine, bf16 + channels-last", None, {"amp": "bf16", "channels_last": True}),
    ("engine, bf16 + channels-last, batch 512", 512, {"amp": "bf16", "channels_last": True}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--variants", action="store_true", help="also time no CUDA graph, NCHW, channels-last, bf16 and batch 512"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    ref_rate, n = reference(device, args.epochs, args.batch_size)
    steps = math.ceil(n / args.batch_size)
    print(
        f"device: {name}; torch {torch.__version__}; {n} images, batch {args.batch_size}, "
        f"{steps} steps/epoch, {args.epochs} epochs (median of all but the first)"
    )
    print(f"{'original pipeline (arrays, ToTensor, DataLoader(2))':48} {ref_rate:10,.0f} images/s")
    eng_rate = engine(device, args.epochs, args.batch_size)
    print(f"{'normcompress engine, defaults':48} {eng_rate:10,.0f} images/s")
    print(f"ratio engine/reference: {eng_rate / ref_rate:.2f}x")
    if args.variants:
        for label, batch, options in VARIANTS:
            rate = engine(device, args.epochs, batch or args.batch_size, **options)
            print(f"{label:48} {rate:10,.0f} images/s  {rate / ref_rate:5.2f}x the reference")
    peak_host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = (
        f"; peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MB" if device.type == "cuda" else ""
    )
    print(f"peak host RAM of this process (all of the above) {peak_host:,.0f} MB{gpu}")


if __name__ == "__main__":
    main()
