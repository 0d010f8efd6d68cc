"""The original study's training script, kept as the reference: a folder of PNGs through torchvision's
ImageFolder + ToTensor and DataLoader(num_workers=2), batch 128, Adam, L2, each batch moved to the device.

Run: python benchmarks/reference_train.py FOLDER [--epochs 10] [--device cpu]
"""

import argparse
import time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from normcompress.model import SeedAutoencoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    dataset = torchvision.datasets.ImageFolder(args.folder, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=128, shuffle=True, num_workers=2)
    model = SeedAutoencoder().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        total = 0.0
        for images, _ in loader:
            images = images.to(device)
            loss = torch.nn.functional.mse_loss(model(images), images)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / len(loader):.5f}  {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
