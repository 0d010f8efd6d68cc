"""The facade: everything the CLI and the app do with the engine, in one place they both call.

Drivers import this module, the typed configurations (config, study_config), the events, the errors,
the text helpers and the read side of the run store, and nothing else of the engine: the training loop,
the data, the models and the codec stay behind these functions. No torch at import: each function
imports what it needs, so `--help` and the app's first screen never wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import TrainConfig
from ..events import Event, StudyProgress
from ..runs import Run, RunStore
from ..runs.diff import DiffRow, diff_runs
from ..runs.where import RunFilter, check_key, group_of, sorted_runs
from ..study_config import StudyConfig
from .images import Compressed, Decompressed, Reconstructed, compress_files, decompress_files, reconstruct_files

if TYPE_CHECKING:
    from ..baseline import Baseline

__all__ = [
    "Comparison",
    "Compressed",
    "Decompressed",
    "DiffRow",
    "Evaluation",
    "Reconstructed",
    "RunFilter",
    "annotate_run",
    "check_device",
    "check_placement",
    "compare_runs",
    "compress_files",
    "decompress_files",
    "diff_runs",
    "evaluate_run",
    "export_chart",
    "export_runs",
    "group_of",
    "grouping",
    "installed_version",
    "is_main_process",
    "reconstruct_files",
    "remove_runs",
    "run_baseline",
    "run_study",
    "sorted_runs",
    "summary_text",
    "tag_run",
    "train_run",
    "write_rd",
    "write_report",
]


def installed_version() -> str:
    """This installation's version, from its metadata (the same for the CLI, the app and a run's record)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("normcompress")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


# -- training --------------------------------------------------------------------------------------
def train_run(
    config: TrainConfig | None,
    store: RunStore,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    resume: str | None = None,
    progress_interval_s: float = 0.25,
    resume_on: str | None = None,
) -> Run | None:
    """Train a new run (or resume one by reference, on the device `resume_on` where given) and return
    it; its summary holds the outcome. Under torchrun every process calls this, and ranks other than 0
    get None."""
    from ..train import train

    return train(
        config, store, on_event, cancel, resume=resume, progress_interval_s=progress_interval_s, resume_on=resume_on
    )


def train_runs_together(
    configs: list[TrainConfig],
    store: RunStore,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    resumes: list[str | None] | None = None,
    progress_interval_s: float = 0.25,
) -> list[Run]:
    """Train runs that share a model and data as one stacked model (new runs, or resume those `resumes`
    names in their places); every run in order, its summary holding its outcome."""
    from ..stack import train_stack

    return train_stack(configs, store, on_event, cancel, resumes, progress_interval_s=progress_interval_s)


def is_main_process() -> bool:
    """False in a torchrun process other than rank 0 (which speaks for the run)."""
    from ..distributed import from_environment

    return from_environment().is_main


def check_device(spec: str) -> None:
    """Refuse a device that is not there (CUDA asked for, none visible) before anything trains."""
    from ..devices import resolve_device

    resolve_device(spec)


def check_placement(study: StudyConfig) -> None:
    """Where a study's runs will go is there: a Ray cluster that answers (in seconds, where Ray itself
    waits minutes), or the devices asked for."""
    if study.ray is not None:
        from ..study.cluster import check_reachable

        check_reachable(study.ray)
    else:
        for device in study.devices:
            check_device(device)


def run_study(
    study: StudyConfig,
    store: RunStore,
    on_progress: Callable[[StudyProgress], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    keep_going: bool = False,
    trainer: Callable | None = None,
    stack_trainer: Callable | None = None,
) -> list[Run]:
    """Train, reuse or resume every run of a study; the completed runs in study order. `trainer` and
    `stack_trainer` stand for train_run and train_runs_together (the app's train in a child process)."""
    from ..study import run_study as study_runs

    return study_runs(study, store, on_progress, on_event, cancel, keep_going, trainer, stack_trainer)


def write_report(
    runs: list[Run], out: Path, metric: str, data_dir: str, store: RunStore, fmt: str, dpi: int
) -> tuple[list[Path], dict]:
    """The study's report files (report.md, .html, figures, metrics.csv/.json) and its summary."""
    from ..report import write_report as report

    return report(runs, out, metric, data_dir, store, fmt, dpi)


def summary_text(summary: dict) -> tuple[list[str], list[list[str]], list[str]]:
    """A study's summary as the console shows it: the table's headers and rows, and what the numbers say."""
    from ..comparison import claim_lines, study_table

    headers, rows = study_table(summary, mark_best=False, short=True)
    return headers, rows, [line.replace("**", "") for line in claim_lines(summary)]


# -- evaluating and comparing ----------------------------------------------------------------------
@dataclass
class Evaluation:
    run_id: str
    data: str
    images: int
    metrics: dict[str, float]


def evaluate_run(
    store: RunStore,
    ref: str,
    dataset: str | None,
    data_dir: str,
    device: str,
    notify: Callable[[str], None] | None = None,
) -> Evaluation:
    """A run's checkpoint on a dataset's validation split (its own data by default)."""
    from ..data import load_data
    from ..devices import resolve_device
    from ..metrics import evaluate
    from ..runs import load_model

    run = store.get(ref)
    info = run.info()
    data = load_data(dataset or info.data_source, data_dir, image_size=run.train_config().image_size, notify=notify)
    target = resolve_device(device)
    return Evaluation(info.id, data.source, len(data.val), evaluate(load_model(run, target), data.val.to(target)))


def run_baseline(
    store: RunStore, run: Run, data_dir: str = "data", notify: Callable[[str], None] | None = None
) -> tuple[Baseline | None, str | None]:
    """PCA at a run's latent size on its data (from the store's cache, or fitted once), or why there is none."""
    from ..baseline import run_baseline as fit
    from ..data import load_run_data

    return fit(store, run, load_run_data(run, data_dir, notify))


def grouping(key: str | None, band: str) -> tuple[str, str] | None:
    """A chart's grouping (key, band) checked, or None for one curve per run; UsageError naming the choices."""
    from ..charts import BANDS
    from ..errors import UsageError

    if band not in BANDS:
        raise UsageError(f"no band {band!r}: use {' or '.join(BANDS)}")
    return None if key is None else (check_key(key), band)


@dataclass
class Comparison:
    """What `runs compare` shows: each usable run's info, the differences beyond norm and seed, the PCA
    reference, and the paired per-image tests against the first run (when asked)."""

    runs: list[Run]
    infos: list  # RunInfo of each usable run
    damaged: list  # RunInfo of each run left out, with its problem
    differences: dict[str, list[str]]
    reference: Baseline | None
    paired: list[str]


def compare_runs(
    store: RunStore,
    refs: list[str],
    baseline: bool,
    paired: bool,
    data_dir: str,
    notify: Callable[[str], None] | None = None,
) -> Comparison:
    """The runs side by side. Without the baseline and the paired tests, nothing heavy is loaded."""
    from ..comparison import config_differences

    runs = [store.get(r) for r in refs]
    infos = [r.info() for r in runs]
    usable = [(run, info) for run, info in zip(runs, infos, strict=True) if not info.problem]
    reference, lines = None, []
    if usable and (baseline or paired):
        from ..data import load_run_data

        data = load_run_data(usable[0][0], data_dir, notify)
        if baseline:
            from ..baseline import run_baseline as fit

            reference, reason = fit(store, usable[0][0], data)
            if reason and notify:
                notify(reason)
        if paired:
            from ..comparison import paired_against_first

            lines = paired_against_first([run for run, _ in usable], data)
    return Comparison(
        [r for r, _ in usable],
        [i for _, i in usable],
        [i for i in infos if i.problem],
        config_differences([r for r, _ in usable]),
        reference,
        lines,
    )


def write_rd(
    runs: list[Run], out: Path, dataset: str | None, data_dir: str, images: int | None, fmt: str, dpi: int
) -> list[Path]:
    """Rate-distortion of runs against WebP, JPEG and PCA: rd.csv, rd.md, the figure."""
    from ..rd import write_rd as rd

    return rd(runs, out, dataset, data_dir, images, fmt=fmt, dpi=dpi)


# -- the store -------------------------------------------------------------------------------------
def export_runs(
    store: RunStore,
    path: Path,
    force: bool = False,
    inside_store: bool = False,
    fmt: str | None = None,
    refs: list[str] | None = None,
) -> tuple[int, int]:
    """Runs (every run, or those named) into a file or, for TensorBoard, a folder (export.FORMATS); (runs,
    rows). A path inside the store (a run's files) is refused unless it is one of the store's own exports."""
    from ..export import check_target, format_of
    from ..export import export_runs as export

    fmt = format_of(path, fmt)
    runs = None if not refs else [store.get(ref) for ref in refs]
    if not inside_store:
        check_target(store, path, force or fmt == "tensorboard")  # a folder that grows: each run checked
    return export(store, path, fmt, runs, force)


def annotate_run(run: Run, name: str | None = None, note: str | None = None):
    """Set a run's name or note ("" clears it), as tag_run sets its tags."""
    return run.annotate(name, note)


def tag_run(
    run: Run, add: list[str] = (), remove: list[str] = (), replace: list[str] | None = None
) -> tuple[tuple[str, ...], str | None]:
    """Change a run's tags, merged under its edit lock; the new tags, and what a damaged file dropped."""
    return run.update_tags(add, remove, replace)


def remove_runs(store: RunStore, runs: list[Run], on_removed: Callable[[Run], None] | None = None) -> None:
    """Delete runs from the store (each refused while it trains)."""
    for run in runs:
        store.remove(run)
        if on_removed:
            on_removed(run)


def export_chart(
    folder: Path,
    stem: str,
    series,
    slots: list[int],
    metric: str,
    log: bool,
    smoothing: float,
    reference,
    x_title: str,
    note: str,
) -> list[Path]:
    """A chart's view as the figures draw it (PNG and SVG), for the app's `e`."""
    from ..figures import save_figure, series_figure

    return [
        save_figure(series_figure(series, metric, log, smoothing, reference, slots, x_title, note), folder / stem, fmt)
        for fmt in ("png", "svg")
    ]
