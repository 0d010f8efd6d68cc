"""Does the app slow training down? The same run headless and from the app (training in a child
process, its default; with --thread also training in a thread of the app's own interpreter), in turn.

Each run is a fresh process, as users run them (torch's thread pools are per process). The app runs
under Textual's Pilot (a headless screen that still lays out, renders and redraws the chart); the
headless run calls normcompress.train directly. Images/s are training steps only, averaged over
epochs 2..N of each run (epoch 1 warms up).

Single runs of the same command spread by ±10% on a shared 2-core VM, more than the effect measured,
so each round runs the variants back to back and the overhead is the median over rounds of each
round's own ratio (slow drifts of the machine cancel within a round). The UI's own CPU over the same
epochs (the app's process, not the child's) is measured too: on two cores it is what training loses.
The app starts training once its device list is filled in, as a user picking a device would.
An epoch of the sample takes about half a second here, so with --epochs 10 the measured epochs last
some 5 s and the app's once-a-run work (the run entering the table, the first chart, the first
preview) falls inside them: the worst case. --epochs 40 spreads it more as a run of minutes would.
Run: python benchmarks/tui_overhead.py [--rounds 10] [--epochs 10] [--thread]
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from normcompress.config import TrainConfig
from normcompress.runs import RunStore
from normcompress_tui.app import NormcompressApp
from normcompress_tui.training import TRAINING_ENV
from normcompress_tui.widgets.chart import LossChart
from normcompress_tui.widgets.controls import Controls

WATCH_S = 0.5  # how often the benchmark looks at the app: the epochs' ends are known to within this


def rate(run) -> float:
    return statistics.mean(r["images_per_s"] for r in run.metrics()[1:])


def headless(store: RunStore, epochs: int, device: str) -> dict:
    from normcompress.train import train  # torch: only in this variant's process, as the app never loads it

    return {"rate": rate(train(TrainConfig(norm="L2", epochs=epochs, dataset="sample", device=device), store))}


async def in_app(store: RunStore, epochs: int, device: str) -> dict:
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        while not app.query_one(Controls).devices_known:  # a user picks a device from the list first
            await asyncio.sleep(0.05)
        for field, value in {"epochs": str(epochs), "dataset": "sample", "device": device}.items():
            app.query_one(f"#{field}").value = value
        await pilot.pause()
        app.query_one("#runs").focus()
        await pilot.press("s")
        chart, controller = app.query_one(LossChart), app.controller
        # The UI's CPU from the end of epoch 1 to the end of the last epoch: the epochs the rate counts,
        # not the child's startup nor what the app does once the run has ended.
        marks = {}
        while controller.training:
            # Not pilot.pause(): it waits for every widget to go idle, work a real terminal never does
            # (it was 1,400 callbacks in a 4-epoch run, a third of the UI thread's time). Nor a short
            # sleep: this loop is the benchmark's, not the app's, and each wake-up is taken from training.
            await asyncio.sleep(WATCH_S)
            marks.setdefault(len(chart.model.current_epochs), (time.process_time(), time.monotonic()))
        (cpu_0, wall_0), (cpu_1, wall_1) = marks[1], marks[max(marks)]
        result = {"rate": rate(controller.current_run)}
        if os.environ.get(TRAINING_ENV) != "thread":  # in a thread, this process's CPU is the training's too
            result["ui_core"] = (cpu_1 - cpu_0) / (wall_1 - wall_0)
        return result


def median_interval(values: list[float], resamples: int = 10_000) -> tuple[float, float]:
    """A 95% bootstrap interval of the median (seeded: the same rounds print the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples)]


VARIANTS = {"headless engine": ("headless",), "app, child process": ("app",), "app, thread": ("app", "--thread")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--device", default="cpu", help="where the runs train: cpu, cuda:0, ... (as the app lists them)"
    )
    parser.add_argument("--thread", action="store_true", help="measure the app training in a thread too")
    parser.add_argument("--one", choices=["headless", "app"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a single measurement, in this fresh process
        if args.thread:
            os.environ[TRAINING_ENV] = "thread"
        with tempfile.TemporaryDirectory() as root:
            store = RunStore(root)
            result = (
                headless(store, args.epochs, args.device)
                if args.one == "headless"
                else asyncio.run(in_app(store, args.epochs, args.device))
            )
            print(json.dumps(result))
        return

    def measure(kind: str, *extra: str) -> dict:
        command = [
            sys.executable,
            __file__,
            "--one",
            kind,
            "--epochs",
            str(args.epochs),
            "--device",
            args.device,
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{kind} {' '.join(extra)} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return json.loads(done.stdout.split("\n")[-2])

    names = [n for n in VARIANTS if args.thread or n != "app, thread"]
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names[round_ % 2 :] + names[: round_ % 2]:  # who goes first alternates
            results[name].append(measure(*VARIANTS[name]))
        print(
            f"round {round_ + 1}: " + ", ".join(f"{name} {results[name][-1]['rate']:,.0f}" for name in names),
            flush=True,
        )  # what a run cut short by a time limit still shows
    print(
        f"sample, {args.device} ({len(os.sched_getaffinity(0))} CPU cores), batch 128, {args.epochs} epochs x "
        f"{args.rounds} rounds"
    )
    for name, runs in results.items():
        rates = [r["rate"] for r in runs]
        line = f"{name + ':':<20} median {statistics.median(rates):8,.0f} images/s  {[round(x) for x in rates]}"
        if "ui_core" in runs[0]:
            line += f"  UI CPU while training: median {statistics.median(r['ui_core'] for r in runs):.3f} core"
        print(line)
    for name in names[1:]:
        overheads = sorted(
            100 * (1 - a["rate"] / h["rate"]) for a, h in zip(results[name], results["headless engine"], strict=False)
        )
        low, high = median_interval(overheads)
        print(
            f"{name}: overhead median {statistics.median(overheads):+.1f}% over {len(overheads)} paired rounds "
            f"(95% bootstrap interval {low:+.1f}% to {high:+.1f}%; rounds {overheads[0]:+.1f}% to {overheads[-1]:+.1f}%)"
        )


if __name__ == "__main__":
    main()
