"""The original study's input pipeline, as the reference every speed figure is measured against.

torchvision's CIFAR10 dataset holds the whole split decoded in memory as a uint8 (N, 32, 32, 3) array;
each item is `Image.fromarray` + `ToTensor`, batched by `DataLoader(batch_size=128, shuffle=True,
num_workers=2)`, moved to the device each step, and trained with Adam (1e-3) under MSE. `InMemoryImages`
is that dataset's __getitem__, over any array, so the reference runs offline on the same images as
the engine.
"""

import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from normcompress.model import build_model


class InMemoryImages(Dataset):
    """torchvision.datasets.CIFAR10's item semantics over a uint8 (N, H, W, 3) array."""

    def __init__(self, images: np.ndarray) -> None:
        self.data = images
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.data[index])), 0


def as_hwc(images: torch.Tensor) -> np.ndarray:
    """The engine's uint8 (N, 3, H, W) tensor as the (N, H, W, 3) array torchvision's CIFAR10 keeps."""
    return images.permute(0, 2, 3, 1).contiguous().numpy()


def train_reference(
    images: np.ndarray, device: torch.device, epochs: int, batch_size: int = 128, on_epoch=None
) -> list[float]:
    """Train the seed model the original way; return each epoch's images/s (training steps only)."""
    torch.manual_seed(0)
    dataset = InMemoryImages(images)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=2, persistent_workers=True)
    model = build_model("seed").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rates = []
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        for batch, _labels in loader:
            batch = batch.to(device)
            loss = torch.nn.functional.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()  # the original loop logs the loss every step
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(dataset) / (time.perf_counter() - start))
        if on_epoch:
            on_epoch(epoch, total / len(loader))
    return rates
