"""The original study's training script, kept as the reference: CIFAR-10-shaped images decoded in memory,
`fromarray` + `ToTensor` per item through DataLoader(num_workers=2, shuffle=True), batch 128, Adam, MSE.

The images are the embedded sample's training split, tiled to --images (50,000: CIFAR-10's training set).
Run: python benchmarks/reference_train.py [--images 50000] [--epochs 10] [--device cpu]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_pipeline import as_hwc, train_reference

from normcompress.data import load_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sample = as_hwc(load_sample().train)
    images = np.ascontiguousarray(sample[np.arange(args.images) % len(sample)])
    start = time.perf_counter()
    train_reference(
        images,
        torch.device(args.device),
        args.epochs,
        on_epoch=lambda epoch, loss: print(
            f"epoch {epoch + 1}: loss {loss:.5f}  {time.perf_counter() - start:.1f}s", flush=True
        ),
    )


if __name__ == "__main__":
    main()
