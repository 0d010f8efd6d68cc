"""Every run of a store in one file, for a spreadsheet or a notebook: the CLI's `runs export` and the app's palette.

CSV has one row per run and epoch (the step losses left out); JSON has every run's configuration,
summary, tags and epochs with every step's loss. Damaged runs are included, with the reason.
"""

import csv
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

from .errors import NormcompressError, UsageError
from .files import atomic_write
from .runs import RunStore
from .text import printable

FORMATS = (".csv", ".json")


def check_target(store: RunStore, path: Path, force: bool) -> None:
    """Refuse an export onto the store's own files (a run's config.json, its metrics) and, without
    --force, onto any file that exists: UsageError, and nothing is written."""
    shown = printable(path, keep_newlines=False)
    if _inside(path, store.root):
        raise UsageError(
            f"{shown} is inside the run store {printable(store.root, keep_newlines=False)}; export to a file outside it"
        )
    if os.path.lexists(path) and not force:
        raise UsageError(f"{shown} already exists; pass --force to replace it")


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` (through any links and ..) would land in `root` or below it."""
    target, top = path.resolve(), root.resolve()
    return target == top or top in target.parents


def export_runs(store: RunStore, path: Path) -> tuple[int, int]:
    """Write the store's runs to `path` (.csv or .json, atomically); return (runs, epoch rows)."""
    if path.suffix not in FORMATS:
        raise UsageError(f"cannot export to {path.name or path}: use a .csv or .json file name")
    rows, runs = [], []
    for run in store.runs():
        info = run.info()
        try:
            records = run.metrics()
        except NormcompressError:
            records = []
        runs.append(
            {
                "id": info.id,
                "status": str(info.status),
                "problem": info.problem,
                "tags": list(info.tags),
                "config": asdict(info.config) if info.config else None,
                "summary": info.summary.to_json() if info.summary else None,
                "epochs": records,
            }
        )
        rows += [
            {
                "run": info.id,
                "norm": info.norm,
                "status": str(info.status),
                "seed": info.config.seed if info.config else None,
                **info.settings(),
                "tags": " ".join(info.tags),
                **{k: v for k, v in r.items() if k != "step_losses"},
            }
            for r in records
        ]
    if path.suffix == ".json":
        data = json.dumps(runs, indent=2).encode()
    else:
        buffer = io.StringIO()
        fields = list(dict.fromkeys(k for r in rows for k in r)) or ["run"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue().encode()
    atomic_write(path, data)
    return len(runs), len(rows)
