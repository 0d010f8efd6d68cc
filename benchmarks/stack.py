"""A study's runs one by one against the same runs trained together as one stacked model, beside the
original pipeline, in one process, on equal work; with achieved FLOP/s as a share of the device's peak.

Work: --runs runs of the seed model (norms L2, L1, Linf, Linf-image in turn, seeds 0, 1, ...) for
--epochs epochs each, batch --batch-size, on the embedded sample's 5,170 training images (CIFAR-10
itself where --dataset cifar10 finds it), the engine's default recipe (AdamW, one-cycle). Timed:
  original   one run of the original pipeline (arrays, ToTensor per item, DataLoader(num_workers=2),
             Adam under MSE), training steps only: the reference images/s
  one run    normcompress.train of one run, whole (data, steps, validation, files)
  one by one the study's runs through normcompress.train, one after another, whole
  stacked    the same runs through normcompress.stack.train_stack, whole
Images/s of a study are its runs' training images over its wall time (validation and files included,
so they are below the per-step rate). FLOP per training image is counted by torch's FlopCounterMode on
one step (forward and backward); the peak is a large fp32 matrix product measured here (and on a GPU
the bf16 one too), so a share says how far from what this device does at its best.

Run: python benchmarks/stack.py [--device cuda] [--runs 16] [--epochs 2]   (under 5 minutes on an H100
with the defaults; about 3 minutes on a 2-core CPU with --runs 4)
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_pipeline import as_hwc, train_reference

from normcompress.data import load_data
from normcompress.devices import resolve_device
from normcompress.model import build_model
from normcompress.runs import RunStore
from normcompress.stack import train_stack
from normcompress.train import TrainConfig, train

NORMS = ("L2", "L1", "Linf", "Linf-image")


def training_flop_per_image(batch: int) -> float:
    """FLOP of one training step (forward + backward) of the seed model, per image, as torch counts it."""
    model = build_model("seed")
    images = torch.rand(batch, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        (model(images) - images).pow(2).mean().backward()
    return counter.get_total_flops() / batch


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matrix product on this device: what it does at its best."""
    size = 4096 if device.type == "cuda" else 2048
    a, b = (torch.rand(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    rounds = 20 if device.type == "cuda" else 3
    sync(device)
    start = time.perf_counter()
    for _ in range(rounds):
        a @ b
    sync(device)
    return 2 * size**3 * rounds / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configs(args) -> list[TrainConfig]:
    return [
        TrainConfig(
            norm=NORMS[i % len(NORMS)],
            seed=i // len(NORMS),
            epochs=args.epochs,
            batch_size=args.batch_size,
            dataset=args.dataset,
            data_dir=args.data_dir,
            device=args.device,
        )
        for i in range(args.runs)
    ]


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dataset", default="sample", help="sample (offline), or cifar10 where --data-dir holds it")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    device = resolve_device(args.device)
    args.device = str(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    train_images = load_data(args.dataset, args.data_dir).train
    n = len(train_images)
    flop = training_flop_per_image(args.batch_size)
    peaks = {"fp32": matmul_peak(device, torch.float32)}
    if device.type == "cuda":
        peaks["bf16"] = matmul_peak(device, torch.bfloat16)
    print(
        f"device: {name}; torch {torch.__version__}; {args.runs} runs x {args.epochs} epochs x {n:,} images, "
        f"batch {args.batch_size}; {flop / 1e6:.2f} MFLOP per training image (FlopCounterMode); matmul peak "
        + ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in peaks.items())
    )

    def line(label: str, images_per_s: float, note: str = "") -> None:
        share = ", ".join(f"{images_per_s * flop / v:.1%} of {k}" for k, v in peaks.items())
        print(f"{label:34} {images_per_s:11,.0f} images/s  {images_per_s * flop / 1e9:8.2f} GFLOP/s ({share}){note}")

    rates = train_reference(as_hwc(train_images), device, args.epochs, args.batch_size)
    original = statistics.median(rates[1:] or rates)
    line("original pipeline, one run", original, "  [training steps only]")
    with tempfile.TemporaryDirectory() as runs_dir:
        store = RunStore(runs_dir)
        one = timed(lambda: train(configs(args)[0], store))
        line("engine, one run", n * args.epochs / one, f"  [whole run: {one:.1f} s]")
        one_by_one = timed(lambda: [train(c, store) for c in configs(args)])
        line(
            "engine, runs one by one", args.runs * n * args.epochs / one_by_one, f"  [whole study: {one_by_one:.1f} s]"
        )
        stacked = timed(lambda: train_stack(configs(args), store))
        line("engine, runs stacked", args.runs * n * args.epochs / stacked, f"  [whole study: {stacked:.1f} s]")
    print(
        f"stacked study against one by one: {one_by_one / stacked:.2f}x the speed; its wall time {stacked / one:.2f}x "
        f"one run's (goal on a GPU: at most 2x); stacked against the original pipeline "
        f"{args.runs * n * args.epochs / stacked / original:.2f}x its images/s"
    )


if __name__ == "__main__":
    main()
