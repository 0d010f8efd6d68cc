"""The whole GPU benchmark, one command, a few minutes: each part in its own process, one after another.

1. train_throughput.py --variants: images/s at batch 128 for the original pipeline and the engine (with
   its CUDA graph, and without), channels-last, bf16 and batch 512.
2. stack.py --epochs 10: a 16-run study (4 norms x 4 seeds) one by one and as one stacked model, its wall
   time against one run's, and every path's achieved FLOP/s as a share of the GPU's fp32 and bf16 peaks.
3. precision.py: bf16 + channels-last against float32, PSNR after 10 epochs over 4 seeds, and whether it
   is within seed noise (what a GPU default needs).

Run: python benchmarks/gpu.py [--device cuda] [--dataset sample]   (on the CPU: --device cpu, slowly)
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dataset", default="sample", help="sample (offline), or cifar10 where ./data holds it")
    args = parser.parse_args()
    parts = [
        ["train_throughput.py", "--device", args.device, "--variants"],
        ["stack.py", "--device", args.device, "--epochs", "10", "--dataset", args.dataset],
        ["precision.py", "--device", args.device, "--dataset", args.dataset],
    ]
    started = time.perf_counter()
    failed = 0
    for script, *options in parts:
        print(f"\n$ python benchmarks/{script} {' '.join(options)}", flush=True)
        part = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *options])
        print(f"[{script}: {time.perf_counter() - part:.0f} s{'' if code == 0 else f', exit {code}'}]", flush=True)
        failed += code != 0
    print(f"\nthe whole benchmark: {time.perf_counter() - started:.0f} s; {failed} of {len(parts)} parts failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
