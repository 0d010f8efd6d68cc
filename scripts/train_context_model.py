"""Trains the residual layer's learned context model (normcompress/codec/context.py) and writes
normcompress/codec/context_model.npz.

On the embedded sample's training images (never its validation images, which rd and the benchmarks
measure on), lossless: every neighbour is the original pixel. Each channel slot's MLP is trained on
the discretised Laplace likelihood of the pixel, so its loss is the bits per sub-pixel the coder pays.
Run: python scripts/train_context_model.py [--images 2500 --epochs 8]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from normcompress.codec.context import ORDERS, feature_count, features, padded, positions
from normcompress.data import load_sample

OUT = Path(__file__).resolve().parents[1] / "normcompress" / "codec" / "context_model.npz"


def slot_data(images: np.ndarray, slot: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, MED predictions and true values of one channel slot at every pixel of every image."""
    order = ORDERS[3]
    h, w = images.shape[2:]
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    where = positions(ys.ravel(), xs.ravel(), w)
    inputs, meds, values = [], [], []
    for image in images:
        x, med = features(padded(image.astype(np.float32)).reshape(3, -1), slot, order, *where)
        inputs.append(x.astype(np.float32))
        meds.append(med)
        values.append(image[order[slot]].ravel())
    return (
        torch.from_numpy(np.concatenate(inputs)),
        torch.from_numpy(np.concatenate(meds)).float(),
        torch.from_numpy(np.concatenate(values)).float(),
    )


def laplace_bits(mean, log_scale, value):
    scale = log_scale.exp().clamp_min(0.2)

    def cdf(v):
        return 0.5 + 0.5 * torch.sign(v - mean) * (1 - torch.exp(-(v - mean).abs() / scale))

    upper = torch.where(value >= 255, torch.ones_like(value), cdf(value + 0.5))
    lower = torch.where(value <= 0, torch.zeros_like(value), cdf(value - 0.5))
    return -torch.log2((upper - lower).clamp_min(1e-9))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2500)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    sample = load_sample()
    images = sample.train[: args.images].numpy()
    held_out = sample.train[-200:].numpy()  # a check on images it did not train on (still training split)
    weights = {}
    for slot in range(3):
        start = time.perf_counter()
        inputs, meds, values = slot_data(images, slot)
        check = slot_data(held_out, slot)
        net = nn.Sequential(
            nn.Linear(feature_count(slot), 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)
        )
        with torch.no_grad():  # start at MED with a scale of about 4 levels
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor([0.0, 1.5]))
        optimizer = torch.optim.Adam(net.parameters(), 2e-3)
        steps = args.epochs * (len(inputs) // 4096)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
        for _ in range(args.epochs):
            for batch in torch.randperm(len(inputs)).split(4096)[: len(inputs) // 4096]:
                out = net(inputs[batch])
                loss = laplace_bits(meds[batch] + out[:, 0] * 32, out[:, 1], values[batch]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        with torch.no_grad():
            out = net(check[0])
            bits = laplace_bits(check[1] + out[:, 0] * 32, out[:, 1], check[2]).mean().item()
        print(
            f"slot {slot} (channel {ORDERS[3][slot]}): {bits:.3f} bits per sub-pixel on 200 held-out "
            f"training images, {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        for i, layer in enumerate(net[::2]):
            weights[f"s{slot}.w{i}"] = layer.weight.detach().T.contiguous().numpy().astype(np.float32)
            weights[f"s{slot}.b{i}"] = layer.bias.detach().numpy().astype(np.float32)
    np.savez(OUT, **weights)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
