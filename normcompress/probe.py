"""Answers from the engine asked of a fresh Python process, so that the asking process never loads torch.

The app lists devices and fits its chart's PCA reference this way, as it trains runs in a child process:
torch in the app's own process is 0.5 GiB and some 160,000 objects that every full garbage collection
walks, on the UI thread, while a run trains beside it on the same cores.
Run: python -m normcompress.probe devices | baseline STORE RUN_ID  (one JSON value on stdout)
"""

import json
import subprocess
import sys
from dataclasses import asdict

from .baseline import Baseline
from .devices import DeviceOption, cpu_only_options
from .errors import NormcompressError
from .runs import RunStore


class ProbeError(NormcompressError):
    """The probe failed; the message is its last line."""


def _ask(*args: str):
    done = subprocess.run([sys.executable, "-m", "normcompress.probe", *args], capture_output=True, text=True)
    if done.returncode == 0:
        try:
            return json.loads(done.stdout)
        except ValueError:
            pass
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    raise ProbeError(lines[-1] if lines else f"the probe ended with exit code {done.returncode}")


def device_options() -> list[DeviceOption]:
    """devices.device_options(); if the probe fails, CPU still, and CUDA unavailable with the reason."""
    try:
        return [DeviceOption(**fields) for fields in _ask("devices")]
    except (ProbeError, TypeError) as exc:
        return cpu_only_options(f"the device probe failed: {exc}")


def run_baseline(store: RunStore, run_id: str) -> Baseline | None:
    """The PCA baseline on a run's data (baseline.run_baseline), None when the run has none; ProbeError
    when it cannot be had (a damaged run, data gone)."""
    answer = _ask("baseline", str(store.root), run_id)
    try:
        return (
            None
            if answer is None
            else Baseline(
                int(answer["components"]),
                str(answer["data"]),
                {k: float(v) for k, v in answer["metrics"].items()},
                None if answer.get("rate_lambda") is None else float(answer["rate_lambda"]),
            )
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ProbeError(f"the baseline probe answered {str(answer)[:80]!r}") from None


def _answer(args: list[str]):
    match args:
        case ["devices"]:
            from .devices import device_options as options

            return [asdict(option) for option in options()]
        case ["baseline", root, run_id]:
            from .baseline import run_baseline as fit
            from .data import load_run_data

            store = RunStore(root)
            run = store.get(run_id)
            baseline, _ = fit(store, run, load_run_data(run, run.train_config().data_dir))
            return None if baseline is None else asdict(baseline)
    raise ProbeError("usage: python -m normcompress.probe devices | baseline STORE RUN_ID")


if __name__ == "__main__":
    try:
        print(json.dumps(_answer(sys.argv[1:])))
    except NormcompressError as exc:
        sys.exit(str(exc))
