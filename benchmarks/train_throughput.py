"""Training throughput: the reference pipeline against the normcompress engine, same images, steps and model.

Reference: the original study's pipeline, torchvision ImageFolder + ToTensor through
DataLoader(num_workers=2, shuffle=True), batch moved to the device each step.
Engine: normcompress.train, the split held as uint8 on the device and batched from memory.

Both train the seed model with Adam under L2 for the same epochs on the same 5,170 CIFAR-10 images
(the PNGs of ../shared/datasets/cifar10-subset/train, or the embedded sample written out as PNGs).
Images/s are for training steps only (the engine's per-epoch validation is excluded): the median
of the epochs after the first (warm-up), because single epochs on a shared 2-core VM varied by 20%.
Run: python benchmarks/train_throughput.py [--device cuda] [--epochs 5] [--variants]
"""

import argparse
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from normcompress.data import load_sample
from normcompress.devices import resolve_device
from normcompress.losses import parse_norm
from normcompress.model import build_model
from normcompress.runs import RunStore
from normcompress.train import TrainConfig, train

SHARED = Path(__file__).resolve().parents[1] / "../shared/datasets/cifar10-subset/train"


def png_folder(tmp: Path) -> Path:
    if SHARED.is_dir():
        return SHARED
    images = load_sample().train
    for i, image in enumerate(images):
        (tmp / "all").mkdir(exist_ok=True)
        torchvision.io.write_png(image, str(tmp / "all" / f"{i:05d}.png"))
    return tmp


def reference(folder: Path, device: torch.device, epochs: int, batch_size: int) -> tuple[float, int]:
    """Median images/s of the reference pipeline's epochs after the first, and the images per epoch."""
    torch.manual_seed(0)
    dataset = torchvision.datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=2, persistent_workers=True)
    model = build_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = parse_norm("L2")
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, _labels in loader:
            images = images.to(device)
            loss = loss_fn(model(images), images)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the original loop logs the loss every step
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(dataset) / (time.perf_counter() - start))
    return statistics.median(rates[1:] or rates), len(dataset)


def engine(device: torch.device, epochs: int, batch_size: int, **options) -> float:
    with tempfile.TemporaryDirectory() as runs:
        config = TrainConfig(norm="L2", epochs=epochs, batch_size=batch_size, dataset="sample", device=str(device),
                             **options)
        run = train(config, RunStore(runs))
        rates = [r["images_per_s"] for r in run.metrics()]
        return statistics.median(rates[1:] or rates)


VARIANTS = [  # label, batch size (None: --batch-size), engine options
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
    parser.add_argument("--variants", action="store_true", help="also time NCHW, channels-last, bf16 and batch 512")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    with tempfile.TemporaryDirectory() as tmp:
        ref_rate, n = reference(png_folder(Path(tmp)), device, args.epochs, args.batch_size)
    steps = math.ceil(n / args.batch_size)
    print(f"device: {name}; torch {torch.__version__}; {n} images, batch {args.batch_size}, "
          f"{steps} steps/epoch, {args.epochs} epochs (median of all but the first)")
    print(f"{'reference (ToTensor + DataLoader(num_workers=2))':48} {ref_rate:10,.0f} images/s")
    eng_rate = engine(device, args.epochs, args.batch_size)
    print(f"{'normcompress engine, defaults':48} {eng_rate:10,.0f} images/s")
    print(f"ratio engine/reference: {eng_rate / ref_rate:.2f}x")
    if args.variants:
        for label, batch, options in VARIANTS:
            rate = engine(device, args.epochs, batch or args.batch_size, **options)
            print(f"{label:48} {rate:10,.0f} images/s  {rate / ref_rate:5.2f}x the reference")
    peak_host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = f"; peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MB" if device.type == "cuda" else ""
    print(f"peak host RAM of this process (all of the above) {peak_host:,.0f} MB{gpu}")


if __name__ == "__main__":
    main()
