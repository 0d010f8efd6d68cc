"""bf16 + channels-last against float32: the validation PSNR after 10 epochs over several seeds, and the
training rate of each, in one process. A GPU's defaults may move to bf16 and channels-last only where
the PSNR is within seed noise of float32's: the same mean within the seeds' spread (the difference of
the means no larger than the larger standard deviation over seeds) and no significant difference by
Welch's t-test. This prints that verdict.

Run: python benchmarks/precision.py [--device cuda] [--seeds 4] [--epochs 10] [--dataset sample]
(`--dataset cifar10` where CIFAR-10 is in ./data; the sample's 5,170 images otherwise).
"""

import argparse
import statistics
import tempfile

import torch

from normcompress.devices import resolve_device
from normcompress.runs import RunStore
from normcompress.stats import across_seeds
from normcompress.train import TrainConfig, train

MODES = {  # label: the engine's options
    "float32": {"amp": "off", "channels_last": False},
    "bf16 + channels-last": {"amp": "bf16", "channels_last": True},
}


def final_psnr_and_rate(device: str, dataset: str, epochs: int, seed: int, options: dict) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as runs:
        config = TrainConfig(norm="L2", epochs=epochs, dataset=dataset, device=device, seed=seed, **options)
        run = train(config, RunStore(runs))
        records = run.metrics()
        return records[-1]["psnr"], statistics.median(r["images_per_s"] for r in records[1:] or records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dataset", default="sample")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: seed noise is the spread over seeds")
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; L2, the default recipe, {args.epochs} epochs on {args.dataset}")
    psnr: dict[str, list[float]] = {}
    for label, options in MODES.items():
        results = [final_psnr_and_rate(str(device), args.dataset, args.epochs, s, options) for s in range(args.seeds)]
        psnr[label] = [p for p, _ in results]
        seeds = "  ".join(f"{p:.3f}" for p in psnr[label])
        rate = statistics.median(r for _, r in results)
        sd = statistics.stdev(psnr[label])
        print(
            f"{label:22} PSNR {statistics.mean(psnr[label]):.3f} ± {sd:.3f} dB (seeds: {seeds})  "
            f"{rate:10,.0f} training images/s"
        )
    (fp32, bf16) = psnr.values()
    difference = statistics.mean(bf16) - statistics.mean(fp32)
    noise = max(statistics.stdev(fp32), statistics.stdev(bf16))
    test = across_seeds(bf16, fp32)
    within = abs(difference) <= noise and not test.significant
    print(f"bf16 - float32: {difference:+.3f} dB; the larger seed sd {noise:.3f} dB; {test.test}: {test.text()}")
    print(f"verdict: {'within' if within else 'NOT within'} seed noise of float32")


if __name__ == "__main__":
    main()
