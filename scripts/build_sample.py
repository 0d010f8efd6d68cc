"""Build normcompress/assets/cifar10-sample.npz from the CIFAR-10 subset in ../shared (a developer's tool, not run by the product).

The images are stored losslessly as uint8 (N, 3, 32, 32) arrays, zlib-compressed by NumPy, with
labels and the class names; the product decodes this single file once instead of 6,187 PNGs.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def read_split(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images, labels, names = [], [], []
    for label, cls in enumerate(CLASSES):
        for path in sorted((root / cls).glob("*.png")):
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1))
            labels.append(label)
            names.append(f"{cls}/{path.name}")
    return np.stack(images), np.asarray(labels, dtype=np.uint8), names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/datasets/cifar10-subset"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "normcompress/assets/cifar10-sample.npz"
    )
    args = parser.parse_args()
    train_x, train_y, train_names = read_split(args.source / "train")
    test_x, test_y, test_names = read_split(args.source / "test")
    np.savez_compressed(
        args.out,
        train_images=train_x,
        train_labels=train_y,
        train_names=np.asarray(train_names),
        test_images=test_x,
        test_labels=test_y,
        test_names=np.asarray(test_names),
        classes=np.asarray(CLASSES),
    )
    print(f"{args.out}: train {train_x.shape}, test {test_x.shape}, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
