"""What the command groups share: option types, the store and output folders, the
one way a command is interrupted, and the loop over files that reports a failed file and goes on."""

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..config import DATASETS, MODELS
from ..console import err, out
from ..devices import DEVICE_FORMS
from ..errors import NormcompressError, UsageError
from ..metrics import ALL_METRICS, METRICS
from ..runs import RUNS_DIR_ENV, RunStore
from ..style import FORMATS
from ..text import count, one_line
from .tables import terminal_table

RunsDir = Annotated[
    str | None,
    typer.Option("--runs-dir", envvar=RUNS_DIR_ENV, metavar="DIR", help="Run store directory.", show_default="runs"),
]
RunRef = Annotated[str, typer.Argument(metavar="RUN", help="Run id, or a unique prefix or suffix of it.")]
RunRefs = Annotated[
    list[str] | None,
    typer.Argument(metavar="RUN", help="Run ids, or unique prefixes or suffixes; or --where instead."),
]
Where = Annotated[
    str | None,
    typer.Option(
        "--where",
        "-w",
        metavar="TERMS",
        help="The runs that hold every term: comparisons of a setting or final metric "
        "(psnr>25 lr<0.01 model=pca-refine tag=sweep) or words to find; the grammar is in the docs "
        "(Looking at runs). The app's / filter reads the same terms.",
    ),
]
DataDir = Annotated[Path, typer.Option(metavar="DIR", help="Where CIFAR-10 is kept or downloaded to.")]
FigureKind = Enum("FigureKind", {f: f for f in FORMATS}, type=str)
FigureFormat = Annotated[
    FigureKind,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Figure files: png, svg or pdf (a report embeds its PNGs and writes svg or pdf beside them).",
    ),
]
Dpi = Annotated[
    int,
    typer.Option(
        min=30, max=1200, metavar="DPI", help="Figure resolution in dots per inch (png, and pixels inside pdf and svg)."
    ),
]
LearningRate = Annotated[
    float, typer.Option(metavar="LR", help="Learning rate: constant, or the one-cycle schedule's peak.")
]
Optimizer = Annotated[
    str, typer.Option(metavar="NAME", help="adamw (decoupled weight decay 0.01), or adam (the original study's).")
]
Schedule = Annotated[
    str,
    typer.Option(
        metavar="NAME",
        help="Learning rate over the run: onecycle (warm-up to --lr over 30% of the steps, then cosine decay; "
        "measured best), or constant (the original study's; it used --lr 1e-3 --optimizer adam).",
    ),
]
Device = Annotated[str, typer.Option(metavar="DEVICE", help=f"Device: {DEVICE_FORMS}.")]
# The training settings that `train` and `study` share, described once.
Epochs = Annotated[int, typer.Option(metavar="N", min=1, help="Epochs to train (each run's).")]
BatchSize = Annotated[int, typer.Option(metavar="N", min=1, help="Images per step.")]
Dataset = Annotated[str, typer.Option(metavar="DATASET", help=f"Images: {', '.join(DATASETS)}.")]
Limit = Annotated[int | None, typer.Option(metavar="N", min=1, help="Train on the first N training images only.")]
Model = Annotated[str, typer.Option(metavar="MODEL", help=f"Model: {', '.join(MODELS)}.")]
ImageSize = Annotated[
    int, typer.Option(metavar="PIXELS", help="Crop size for folder: datasets (a multiple of 4, 28-1024).")
]
Amp = Annotated[
    str, typer.Option(metavar="MODE", help="Mixed precision: off, or bf16 (autocast; CPUs with AMX, CUDA).")
]
ChannelsLast = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="Channels-last memory format. Default: on for the CPU (measured 10-24% faster there), off for "
        "CUDA (measured 5% slower there).",
    ),
]
CudaGraph = Annotated[
    bool | None,
    typer.Option(
        "--cuda-graph/--no-cuda-graph",
        help="Replay each training step from a CUDA graph. Default: on for CUDA, where the run allows it "
        "(not with --compile, --rate-lambda or torchrun); a capture that fails says so and trains without it.",
    ),
]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the model (slow start).")]
RateLambda = Annotated[
    float,
    typer.Option(
        metavar="λ",
        min=0.0,
        help="Train for compression too: noisy latents, a learned prior, loss = norm + this x bits per pixel.",
    ),
]
CodecDataDir = Annotated[
    Path, typer.Option(metavar="DIR", help="Where CIFAR-10 is kept (to fit a run's entropy model once).")
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Replace output files that already exist.")]
MetricKey = Enum("MetricKey", {key: key for key in ALL_METRICS}, type=str)
# A study's curves compare norms: the validation metrics (the loss is refused with the reason: each run's
# loss is in its own norm), not the machine's figures.
ValidationMetricKey = Enum("ValidationMetricKey", {key: key for key in ("loss", *METRICS)}, type=str)
# The choices in the help, not the usage: fifteen of them made a line of 142 characters.
ChartMetric = Annotated[
    MetricKey, typer.Option(metavar="METRIC", help=f"Metric to chart per epoch: {', '.join(ALL_METRICS)}.")
]
StudyMetric = Annotated[
    ValidationMetricKey, typer.Option(metavar="METRIC", help=f"Metric of curves.png: {', '.join(METRICS)}.")
]
Out = Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Directory for the output files.")]


def store(runs_dir: str | None) -> RunStore:
    if runs_dir is not None and not runs_dir.strip():
        raise UsageError("--runs-dir is empty; give a directory, or leave it out for ./runs")
    return RunStore(runs_dir)


def out_dir(value: str, option: str = "--out") -> Path:
    """An output directory as typed, checked before any work: an empty one is refused (it would silently
    mean the current directory), and so is a file or a path under one (a study trained every run, then
    failed to write its report)."""
    if not value.strip():
        raise UsageError(f"{option} is empty; give a directory")
    path = existing = Path(value)
    while not existing.exists() and existing.parent != existing:  # the nearest part that is there
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == path else f"is under {one_line(existing)}, a file"
        raise UsageError(f"{option} {one_line(value)} {where}; give a directory (it is created if missing)")
    return path


@contextmanager
def interruptible(message: Callable[[], str | None]) -> Iterator[None]:
    """Ctrl-C and `kill` (SIGTERM) end the block as one line (`message()`, when it says something) and exit
    130; the engine has kept what was done."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` saves the run like Ctrl-C does
    try:
        yield
    except KeyboardInterrupt:
        text = message()
        if text:
            err.print(text)
        raise typer.Exit(130) from None


def report_files(
    results: Iterable,
    total: int,
    headers: list[str],
    row: Callable[[object], list[str]],
    verb: str,
    noun: str = "image",
) -> None:
    """Print a table of the files done, report each failed one in a line as it comes and go on, and fail
    (exit 1) if any did."""
    rows, failed = [], 0
    for result in results:
        if isinstance(result, NormcompressError):
            err.print(f"skipped: {one_line(result)}")
            failed += 1
        else:
            rows.append(row(result))
    if rows:
        out.print(terminal_table(headers, rows))
    if failed:
        raise NormcompressError(f"{failed} of {count(total, noun)} could not be {verb}")


def positive_numbers(text: str, option: str) -> list[float]:
    """Comma-separated distinct positive numbers, as --rate-lambdas takes them."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, not {one_line(text)[:40]!r}") from None
    if not values or not all(0 < v < float("inf") for v in values) or len(set(values)) != len(values):
        raise UsageError(f"{option} needs distinct positive numbers")
    return values
