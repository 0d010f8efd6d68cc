"""How long a user waits: `normcompress --help`, an argument error, and the app's first full screen.

    python benchmarks/startup.py [--repeat 5] [--runs 2000] [--store DIR]

Each command runs as a fresh process (as a user starts it), repeated; the median and the spread are
printed. The app runs in a pseudo-terminal of 100x30, and its first full screen is the moment its
footer (the last thing laid out) has been written. Numbers depend on the disk cache: the first repeat
of a cold machine is slower, so it is reported apart.

With --runs N the app starts over a store of N completed 10-epoch runs (made here, or in --store to
reuse it), its first full screen is the moment the table says "N runs", and the app's resident memory
then is reported too: what a user with a big store waits for and pays.
"""

import argparse
import fcntl
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


def command_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def fill_store(root: Path, runs: int) -> None:
    """`runs` completed runs of 10 epochs (40 steps each), written as training writes them."""
    from normcompress.config import TrainConfig
    from normcompress.runs import RunStore, Summary

    store = RunStore(root)
    for index in range(runs):
        records = [
            {
                "epoch": e,
                "loss": 0.05 / e,
                "psnr": 20 + e / 10,
                "mse": 0.01,
                "ssim": 0.5,
                "maxabs_worst": 0.9,
                "images_per_s": 9000.0,
                "epoch_time_s": 5.5,
                "step_losses": [0.05 / e] * 40,
            }
            for e in range(1, 11)
        ]
        final = {
            k: v for k, v in records[-1].items() if k not in ("epoch", "images_per_s", "epoch_time_s", "step_losses")
        }
        summary = Summary.from_json({"status": "completed", "epochs_done": 10, "wall_time_s": 55.0, "metrics": final})
        config = TrainConfig(
            norm=("L1", "L2", "Linf")[index % 3], epochs=10, seed=index % 4, lr=0.001 * (1 + index % 5)
        )
        run = store.create(config.validated(), summary)
        for record in records:
            run.append_metrics(record)
        run.save_checkpoint({"epoch": 10})


def app_first_screen(runs_dir: str, marker: bytes = b" runs \xc2\xb7 by ", timeout: float = 120.0) -> tuple[float, int]:
    """Start normcompress-tui in a 100x30 pseudo-terminal; seconds until the runs table has listed the store
    (its border says "0 runs · by id"), the last part of the first screen to be drawn, and the app's
    resident bytes then."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, in the pty, sized before it starts
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.environ.update({"TERM": "xterm-256color"})
        os.execv(str(BIN / "normcompress-tui"), [str(BIN / "normcompress-tui"), "--runs-dir", runs_dir])
    seen = b""
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                if marker in seen:
                    return time.perf_counter() - started, psutil.Process(pid).memory_info().rss
        raise RuntimeError("the app did not draw its first screen")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=0, help="runs in the store the app starts over")
    parser.add_argument("--store", help="the store to fill (or reuse when it holds the runs already)")
    args = parser.parse_args()
    repeat = args.repeat
    runs_dir = args.store or tempfile.mkdtemp(prefix="startup-runs-")
    if args.runs:
        if len(list(Path(runs_dir).glob("2*"))) != args.runs:
            filling = time.perf_counter()
            fill_store(Path(runs_dir), args.runs)
            print(f"made {args.runs} runs in {time.perf_counter() - filling:.0f} s: {runs_dir}")
        from normcompress.text import count

        marker = f" {count(args.runs, 'run')} \u00b7 by ".encode()  # the table's border, once it lists them
        times, memory = [], []
        for _ in range(repeat + 1):
            seconds, rss = app_first_screen(runs_dir, marker)
            times.append(seconds)
            memory.append(rss / 2**20)
        print(
            f"normcompress-tui over {args.runs} runs: first {times[0]:.2f} s, median {statistics.median(times[1:]):.2f} s"
            f" (min {min(times[1:]):.2f}, max {max(times[1:]):.2f}); RSS median {statistics.median(memory[1:]):.0f} MiB"
        )
        return
    cases = {
        "normcompress --help": lambda: command_seconds([str(BIN / "normcompress"), "--help"]),
        "normcompress train --norm bogus": lambda: command_seconds(
            [str(BIN / "normcompress"), "train", "--norm", "bogus"]
        ),
        "normcompress-tui first screen": lambda: app_first_screen(runs_dir)[0],
    }
    print(f"{'what':<34} {'first':>7} {'median':>7} {'min':>7} {'max':>7}  (seconds, {repeat} runs)")
    try:
        for name, measure in cases.items():
            times = [measure() for _ in range(repeat + 1)]
            first, rest = times[0], times[1:]
            print(f"{name:<34} {first:7.2f} {statistics.median(rest):7.2f} {min(rest):7.2f} {max(rest):7.2f}")
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
