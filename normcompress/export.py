"""Runs out of the project, for a spreadsheet, a notebook or another tracker: `runs export` and the app's palette.

Four formats (FORMATS):
- `table`: CSV, one row per run and epoch with its settings (the step losses left out);
- `json`: every run's configuration, summary, tags, name, note and epochs with every step's loss;
- `csv`: one long table, a row per (run, step, metric): run, name, step, epoch, time_s, metric, value, as
  pandas reads it (`pd.read_csv(...).pivot_table(...)`) and trackio imports it; a step's time is
  interpolated within its epoch;
- `tensorboard`: a folder of one TensorBoard event-file folder per run: every epoch scalar (train/ and
  val/), every step's loss, the settings as hyperparameters, the reconstructions as an image.
Damaged runs are in `table` and `json`, with the reason, and left out of the others. In the CSV files text
that a spreadsheet would take for a formula starts with a ' (files.csv_bytes; JSON keeps it as it is).
"""

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from .errors import NormcompressError, UsageError
from .files import atomic_write, atomic_write_csv, csv_bytes
from .metrics import SYSTEM_METRICS
from .runs import Run, RunInfo, RunStore, Status
from .text import printable

FORMATS = ("table", "json", "csv", "tensorboard")
BY_SUFFIX = {".csv": "table", ".json": "json"}
LONG_COLUMNS = ["run", "name", "step", "epoch", "time_s", "metric", "value"]
NOT_SCALARS = ("epoch", "step_losses", "epoch_time_s")
TRAIN_SCALARS = ("loss", "lr", "images_per_s")  # then what the machine did (system/), the rest is validation


def format_of(path: Path, fmt: str | None) -> str:
    """The format asked for, or the one a .csv (table) or .json file name says; UsageError otherwise."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"no export format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt
    if path.suffix in BY_SUFFIX:
        return BY_SUFFIX[path.suffix]
    shown = printable(path.name or path, keep_newlines=False)
    raise UsageError(
        f"cannot tell the format of {shown}: name a .csv or .json file, or give --format csv or tensorboard"
    )


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


def long_rows(info: RunInfo, records: list[dict]) -> list[dict]:
    """A run's scalars as (run, name, step, epoch, time_s, metric, value) rows: each step's loss
    (`loss_step`, its time interpolated within the epoch), then each epoch's scalars at its last step."""
    rows: list[dict] = []
    step, time_s = 0, 0.0
    for record in records:
        losses = record.get("step_losses") or []
        took = float(record.get("epoch_time_s") or 0.0)
        for i, loss in enumerate(losses, 1):
            rows.append(_row(info, step + i, record["epoch"], time_s + took * i / len(losses), "loss_step", loss))
        step, time_s = step + len(losses), time_s + took
        for key, value in record.items():
            if key not in NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool):
                rows.append(_row(info, step, record["epoch"], time_s, key, value))
    return rows


def _row(info: RunInfo, step: int, epoch: int, time_s: float, metric: str, value: float) -> dict:
    return {"run": info.id, "name": info.name, "step": step, "epoch": epoch, "time_s": round(time_s, 6),
            "metric": metric, "value": value}  # fmt: skip


def export_runs(
    store: RunStore, path: Path, fmt: str | None = None, runs: list[Run] | None = None, force: bool = False
) -> tuple[int, int]:
    """Write runs (every run of the store by default) to `path` in a format (format_of), atomically; return
    (runs, rows): epoch rows for `table` and `json`, scalar rows for `csv` and `tensorboard`."""
    fmt = format_of(path, fmt)
    chosen = store.runs() if runs is None else runs
    if fmt in ("csv", "tensorboard"):
        usable = [(run, run.info()) for run in chosen]
        usable = [(run, info) for run, info in usable if info.status != Status.DAMAGED]
        if fmt == "tensorboard":
            return len(usable), sum(_tensorboard(run, info, path, force) for run, info in usable)
        rows = [row for run, info in usable for row in long_rows(info, _records(run))]
        atomic_write_csv(path, rows, LONG_COLUMNS)
        return len(usable), len(rows)
    rows, runs = [], []
    for run in chosen:
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
                "name": info.name,
                "note": info.note,
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
                "name": info.name,
                "note": info.note,
                **{k: v for k, v in r.items() if k != "step_losses"},
            }
            for r in records
        ]
    if fmt == "json":
        data = json.dumps(runs, indent=2).encode()
    else:
        data = csv_bytes(rows, list(dict.fromkeys(k for r in rows for k in r)) or ["run"])
    atomic_write(path, data)
    return len(runs), len(rows)


def _records(run: Run) -> list[dict]:
    try:
        return run.metrics()
    except NormcompressError:
        return []


def _tensorboard(run: Run, info: RunInfo, folder: Path, force: bool) -> int:
    """One run as a TensorBoard event-file folder `folder/<run id>`, written beside it and renamed into
    place (an existing one is replaced only with `force`); the number of scalars written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "exporting for TensorBoard needs the tensorboard package: pip install 'normcompress[tensorboard]'"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / info.id
    if os.path.lexists(target) and not force:
        raise UsageError(f"{printable(target, keep_newlines=False)} already exists; pass --force to replace it")
    start = _started(info)
    rows = long_rows(info, _records(run))
    work = Path(tempfile.mkdtemp(prefix=f".{info.id}.", dir=folder))
    try:
        writer = SummaryWriter(log_dir=str(work))
        for row in rows:
            metric = row["metric"]
            writer.add_scalar(_tag(metric), row["value"], global_step=row["step"], walltime=start + row["time_s"])
        _add_images(writer, run, rows)
        settings = {"norm": info.norm, "seed": info.config.seed if info.config else -1, **info.settings()}
        hparams = {k: v if isinstance(v, int | float | str) else str(v) for k, v in settings.items()}
        final = {f"hparam/{k}": v for k, v in info.metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        writer.add_hparams(hparams, final, run_name=".")
        writer.close()
        if os.path.lexists(target):  # --force: the old folder goes once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{info.id}.old.", dir=folder))
            os.replace(target, old / "run")
            os.replace(work, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(rows)


def _tag(metric: str) -> str:
    """A metric's TensorBoard tag: training figures, what the machine did, validation metrics."""
    if metric in ("loss_step", *TRAIN_SCALARS):
        return f"train/{metric}"
    return ("system/" if metric in SYSTEM_METRICS else "val/") + metric


def _add_images(writer, run: Run, rows: list[dict]) -> None:
    """The run's image history, a picture per epoch kept (originals, reconstructions, error maps) at that
    epoch's last step; a run from before the history has its last recon.png instead."""
    import numpy as np

    from .history import HISTORY_FILE, HistoryError, frame, read_history
    from .images import ImageFileError, open_image

    last_step = {row["epoch"]: row["step"] for row in rows}
    try:
        history = read_history(run.path / HISTORY_FILE)
    except HistoryError:
        history = None  # a damaged history: the last picture still goes
    if history is not None:
        for index, epoch in enumerate(history.epochs):
            picture = np.asarray(frame(history, index))
            writer.add_image("reconstructions", picture, global_step=last_step.get(epoch, epoch), dataformats="HWC")
        return
    try:
        picture = np.asarray(open_image(run.recon_path, follow_symlinks=False).convert("RGB"))
    except ImageFileError:
        return  # a run without its picture (killed before its first epoch): the scalars still go
    writer.add_image("reconstructions", picture, global_step=rows[-1]["step"] if rows else 0, dataformats="HWC")


def _started(info: RunInfo) -> float:
    """The run's start as seconds since the epoch (its summary's started_at), 0 when unknown."""
    try:
        return datetime.fromisoformat(info.summary.started_at).timestamp() if info.summary else 0.0
    except ValueError:
        return 0.0
