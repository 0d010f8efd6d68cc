"""Does the app slow training down? The same run headless, from the app training in a child process
(its default), and from the app training in a thread of its own interpreter, in turn.

Each run is a fresh process, as users run them (torch's thread pools are per process). The app runs
under Textual's Pilot (a headless screen that still lays out, renders and redraws the chart); the
headless run calls normcompress.train directly. Images/s are training steps only, averaged over
epochs 2..N of each run (epoch 1 warms up). Run: python benchmarks/tui_overhead.py
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile

from normcompress.runs import RunStore
from normcompress.train import TrainConfig, train
from normcompress_tui.app import TRAINING_ENV, NormcompressApp


def rate(run) -> float:
    return statistics.mean(r["images_per_s"] for r in run.metrics()[1:])


def headless(store: RunStore, epochs: int) -> float:
    return rate(train(TrainConfig(norm="L2", epochs=epochs, dataset="sample", device="cpu"), store))


async def in_app(store: RunStore, epochs: int) -> float:
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        for field, value in {"epochs": str(epochs), "dataset": "sample", "device": "cpu"}.items():
            app.query_one(f"#{field}").value = value
        await pilot.pause()
        app.query_one("#runs").focus()
        await pilot.press("s")
        while app.training or app.current_run is None:
            # Not pilot.pause(): it waits for every widget to go idle, work a real terminal never does
            # (it was 1,400 callbacks in a 4-epoch run, a third of the UI thread's time).
            await asyncio.sleep(0.25)
        return rate(app.current_run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", choices=["headless", "app"], help=argparse.SUPPRESS)
    parser.add_argument("--thread", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a single measurement, in this fresh process
        if args.thread:
            os.environ[TRAINING_ENV] = "thread"
        with tempfile.TemporaryDirectory() as root:
            store = RunStore(root)
            print(headless(store, args.epochs) if args.one == "headless" else asyncio.run(in_app(store, args.epochs)))
        return

    def measure(kind: str, *extra: str) -> float:
        command = [sys.executable, __file__, "--one", kind, "--epochs", str(args.epochs), *extra]
        return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])

    rates: dict[str, list[float]] = {"headless engine": [], "app, child process": [], "app, thread": []}
    for _ in range(args.rounds):
        rates["headless engine"].append(measure("headless"))
        rates["app, child process"].append(measure("app"))
        rates["app, thread"].append(measure("app", "--thread"))
    print(f"sample, CPU, batch 128, {args.epochs} epochs x {args.rounds} rounds (median)")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name + ':':<20} {medians[name]:8,.0f} images/s  {[round(x) for x in values]}")
    for name in ("app, child process", "app, thread"):
        ratio = medians[name] / medians["headless engine"]
        print(f"{name}/headless: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%)")


if __name__ == "__main__":
    main()
