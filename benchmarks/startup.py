"""How long a user waits: `normcompress --help`, an argument error, and the app's first full screen.

    python benchmarks/startup.py [--repeat 5]

Each command runs as a fresh process (as a user starts it), repeated; the median and the spread are
printed. The app runs in a pseudo-terminal of 100x30, and its first full screen is the moment its
footer (the last thing laid out) has been written. Numbers depend on the disk cache: the first repeat
of a cold machine is slower, so it is reported apart.
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

BIN = Path(sys.executable).parent


def command_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def app_first_screen_seconds(runs_dir: str, marker: bytes = b" runs \xc2\xb7 by ", timeout: float = 60.0) -> float:
    """Start normcompress-tui in a 100x30 pseudo-terminal; seconds until the runs table has listed the store
    (its border says "0 runs · by id"), the last part of the first screen to be drawn."""
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
                    return time.perf_counter() - started
        raise RuntimeError("the app did not draw its first screen")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    runs_dir = tempfile.mkdtemp(prefix="startup-runs-")
    cases = {
        "normcompress --help": lambda: command_seconds([str(BIN / "normcompress"), "--help"]),
        "normcompress train --norm bogus": lambda: command_seconds(
            [str(BIN / "normcompress"), "train", "--norm", "bogus"]
        ),
        "normcompress-tui first screen": lambda: app_first_screen_seconds(runs_dir),
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
