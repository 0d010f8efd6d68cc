"""`normcompress`: train, evaluate, study, reconstruct, compress and decompress, and manage the run store.

Commands: train, eval, study, reconstruct, compress, decompress, rd, and runs list/show/compare/export/rm.
Every failure is one line on stderr and an exit code; every string that comes from a user or a file is
printed as plain text with its control characters made visible.
"""

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated

import plotext
import typer
from rich.text import Text

from .charts import draw_curves, step_series
from .config import TrainConfig
from .console import ConsoleReport, err, notice, out
from .data import DATASETS, load_data, load_run_data
from .devices import DEVICE_FORMS, resolve_device
from .errors import NormcompressError, UsageError
from .files import atomic_write, read_regular
from .losses import VALID_FORMS
from .metrics import ALL_METRICS, EPOCH_METRICS, METRICS, evaluate
from .model import MODELS, load_model
from .runs import RUNS_DIR_ENV, RunStore, Status
from .style import DEFAULT_DPI, FORMATS
from .text import one_line

app = typer.Typer(pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]})
runs_app = typer.Typer()
app.add_typer(runs_app, name="runs")


def _help_when_bare(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """Train convolutional autoencoders on 32x32 images under different loss norms, and compare the runs."""
    _help_when_bare(ctx)


@runs_app.callback(invoke_without_command=True)
def _runs(ctx: typer.Context) -> None:
    """List, inspect, compare, export and remove saved runs."""
    _help_when_bare(ctx)

RunsDir = Annotated[
    str | None,
    typer.Option("--runs-dir", envvar=RUNS_DIR_ENV, help="Run store directory.", show_default="runs"),
]
RunRef = Annotated[str, typer.Argument(metavar="RUN", help="Run id, or a unique prefix or suffix of it.")]
RunRefs = Annotated[list[str], typer.Argument(metavar="RUN...", help="Run ids, or unique prefixes or suffixes.")]
DataDir = Annotated[Path, typer.Option(help="Where CIFAR-10 is kept or downloaded to.")]
FigureKind = Enum("FigureKind", {f: f for f in FORMATS}, type=str)
FigureFormat = Annotated[FigureKind, typer.Option("--format", help="Figure files: png, svg or pdf (a report embeds its "
                                                            "PNGs and writes svg or pdf beside them).")]
Dpi = Annotated[int, typer.Option(min=30, max=1200, help="Figure resolution in dots per inch (png, and pixels "
                                                          "inside pdf and svg).")]
LearningRate = Annotated[float, typer.Option(help="Learning rate: constant, or the one-cycle schedule's peak.")]
Optimizer = Annotated[str, typer.Option(help="adamw (decoupled weight decay 0.01), or adam (the original study's).")]
Schedule = Annotated[str, typer.Option(
    help="Learning rate over the run: onecycle (warm-up to --lr over 30% of the steps, then cosine decay; "
         "measured best), or constant (the original study's; it used --lr 1e-3 --optimizer adam).")]
CodecDataDir = Annotated[Path, typer.Option(help="Where CIFAR-10 is kept (to fit a run's entropy model once).")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Replace output files that already exist.")]
MetricKey = Enum("MetricKey", {key: key for key in ALL_METRICS}, type=str)  # type: ignore[misc]


def _store(runs_dir: str | None) -> RunStore:
    if runs_dir is not None and not runs_dir.strip():
        raise UsageError("--runs-dir is empty; give a directory, or leave it out for ./runs")
    return RunStore(runs_dir)


def _out_dir(value: str, option: str = "--out") -> Path:
    """An output directory as typed; an empty one is refused (it would silently mean the current directory)."""
    if not value.strip():
        raise UsageError(f"{option} is empty; give a directory")
    return Path(value)


def _columns(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Aligned plain-text columns (the first `left` left-aligned, the rest right-aligned), like `docker ps`."""
    headers, rows = [one_line(h) for h in headers], [[one_line(c) for c in row] for row in rows]  # one row a line
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


# -- train -------------------------------------------------------------------------------------
@app.command()
def train(
    norm: Annotated[str, typer.Option(help=f"Loss norm: {VALID_FORMS}.")] = "L2",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs to train.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    lr: LearningRate = 3e-3,
    optimizer: Optimizer = "adamw",
    schedule: Schedule = "onecycle",
    device: Annotated[str, typer.Option(help=f"Training device: {DEVICE_FORMS}.")] = "auto",
    dataset: Annotated[str, typer.Option(help=f"Images: {', '.join(DATASETS)}.")] = "cifar10",
    data_dir: DataDir = Path("data"),
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed for the weights and the batch order.")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on the first N training images only.")] = None,
    model: Annotated[str, typer.Option(help=f"Model: {', '.join(MODELS)}.")] = "seed",
    image_size: Annotated[int, typer.Option(help="Crop size for folder: datasets (a multiple of 4, 28-1024).")] = 32,
    amp: Annotated[str, typer.Option(help="Mixed precision: off, or bf16 (autocast; CPUs with AMX, CUDA).")] = "off",
    channels_last: Annotated[bool | None, typer.Option(
        "--channels-last/--no-channels-last",
        help="Channels-last memory format. Default: on for the CPU (measured 10-24% faster there), off for "
             "CUDA (measured 5% slower there).")] = None,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model (slow start).")] = False,
    rate_lambda: Annotated[float, typer.Option(min=0.0, help="Train for compression too: noisy latents, a learned "
                                               "prior, loss = norm + this x bits per pixel.")] = 0.0,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted run (id, or a unique prefix or suffix).")] = None,
    runs_dir: RunsDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run id and path.")] = False,
) -> None:
    """Train a run (or resume one) and save it in the run store.

    With no network, --dataset cifar10 falls back to the embedded sample and says so.
    """
    config = TrainConfig(
        norm=norm, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
        device=device, dataset=dataset,
        data_dir=str(data_dir), seed=seed, limit=limit, model=model, image_size=image_size, amp=amp,
        channels_last=channels_last, compile=compile_model, rate_lambda=rate_lambda,
    ).validated()  # a bad option is refused before torch is imported
    from . import distributed
    from . import train as engine  # torch: imported by the commands that need it, so --help stays fast

    store = _store(runs_dir)
    quiet = quiet or not distributed.from_environment().is_main  # under torchrun, rank 0 reports
    report = ConsoleReport(quiet=quiet, epoch_lines=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` saves the run like Ctrl-C does
    try:
        with report:
            run = engine.train(config, store, report.on_event, resume=resume)
    except KeyboardInterrupt:
        if report.run_id:
            err.print(f"interrupted: run {report.run_id} kept with its last complete epoch; "
                      f"resume with: normcompress train --resume {report.run_id}")
        raise typer.Exit(130) from None
    if run is None:  # another torchrun rank: rank 0 prints the run
        return
    summary = run.summary()
    if summary.status != Status.COMPLETED:
        err.print(f"{summary.status}: {one_line(summary.message)}")
    out.print(f"{run.id}\t{one_line(run.path)}")
    if summary.status == Status.INTERRUPTED:
        raise typer.Exit(130)


# -- eval --------------------------------------------------------------------------------------
@app.command("eval")
def eval_(
    run_id: RunRef,
    dataset: Annotated[str | None, typer.Option(help=f"Images: {', '.join(DATASETS)}; default: the run's own.")] = None,
    data_dir: DataDir = Path("data"),
    device: Annotated[str, typer.Option(help=f"Device: {DEVICE_FORMS}.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Evaluate a saved run's checkpoint on a dataset's test (validation) split."""
    run = _store(runs_dir).get(run_id)
    info = run.info()
    config = run.train_config()
    data = load_data(dataset or info.data_source, data_dir, image_size=config.image_size, notify=notice)
    target = resolve_device(device)
    metrics = evaluate(load_model(run, target), data.val.to(target))
    if as_json:
        out.print_json(json.dumps({"run": info.id, "data": data.source, "images": len(data.val), **metrics}),
                       ensure_ascii=True)  # control codes as \\u escapes
        return
    out.print(f"{info.id} on {one_line(data.source)} ({len(data.val)} test images)", highlight=False)
    out.print(_columns(["metric", "value"], [[METRICS[k].label, f"{v:.5g}"] for k, v in metrics.items()]),
              highlight=False, markup=False)


@app.command()
def reconstruct(
    run_id: RunRef,
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE...", help="Image files of any size and mode.")],
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Directory for the reconstructions.")],
    device: Annotated[str, typer.Option(help=f"Device: {DEVICE_FORMS}.")] = "auto",
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Reconstruct images of any size through a run's model, tile by tile, and report PSNR and max error.

    Gray images come back gray, RGBA images keep their alpha; unreadable files are reported and skipped.
    Images over 4096x4096 pixels are refused before they are decoded.
    """
    from .reconstruct import reconstruct_file

    run = _store(runs_dir).get(run_id)
    tile = run.train_config().image_size
    targets = _targets(images, _out_dir(out_dir), ".recon.png", force)  # before the model loads: seconds
    model = load_model(run, resolve_device(device))

    def one(image: Path, target: Path) -> list[str]:
        r = reconstruct_file(model, image, target, tile)
        return [str(r.source), f"{r.size[0]}x{r.size[1]}", r.mode, f"{r.psnr:.2f}", str(r.max_error), str(r.output)]

    _each_file(images, targets, one, ["image", "size", "mode", "PSNR dB", "max err", "reconstruction"], "read", left=3)


def _targets(sources: list[Path], out_dir: Path, suffix: str, force: bool) -> list[Path]:
    """One output per input, <stem><suffix> in out_dir, checked before anything is written: two inputs
    with one output name, or an existing output without --force, is an error that writes nothing."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise NormcompressError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    targets, seen = [], {}
    for source in sources:
        target = out_dir / f"{source.stem}{suffix}"
        if target in seen:
            raise UsageError(f"{seen[target]} and {source} would both be written to {target}; "
                             f"rename one or process them into different --out folders")
        if os.path.lexists(target) and not force:
            raise UsageError(f"{target} already exists; pass --force to replace it")
        seen[target] = source
        targets.append(target)
    return targets


def _each_file(sources: list[Path], targets: list[Path], work: Callable[[Path, Path], list[str]],
               headers: list[str], verb: str, noun: str = "image(s)", left: int = 1) -> None:
    """Run `work` on each (source, target), report a failed file in one line and go on, print a table
    of the rows, and fail (exit 1) if any file failed."""
    rows, failed = [], 0
    for source, target in zip(sources, targets, strict=True):
        try:
            rows.append(work(source, target))
        except NormcompressError as exc:
            err.print(f"skipped: {one_line(exc)}")
            failed += 1
    if rows:
        out.print(_columns(headers, rows, left=left))
    if failed:
        raise NormcompressError(f"{failed} of {len(sources)} {noun} could not be {verb}")


@app.command()
def compress(
    run_id: RunRef,
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE...", help="Image files of any size and mode.")],
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Directory for the .ncz files.")],
    step: Annotated[float | None, typer.Option(min=0.01, max=4.0, help="Quantisation step (x each latent channel's "
                                               "std; 1 for runs trained with --rate-lambda): larger is smaller "
                                               "and worse.", show_default="0.25, or 1")] = None,
    max_error: Annotated[int | None, typer.Option(min=0, max=255, help="Near-lossless: every pixel within this many "
                                                  "levels of the original (0: lossless), by a coded residual; the "
                                                  "latents are left out of a file where the residual alone is "
                                                  "smaller.")] = None,
    data_dir: CodecDataDir = Path("data"),
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Compress images into .ncz files with a run's model: bytes, bits per pixel, PSNR and max error."""
    from .codec import EntropyModel, encode_many

    run = _store(runs_dir).get(run_id)
    targets = _targets(images, _out_dir(out_dir), ".ncz", force)  # before the model loads: seconds
    model = load_model(run, "cpu")
    entropy = EntropyModel.for_run(run, model, str(data_dir))
    results = encode_many(run, model, entropy, images, step, max_error)  # in order, the encoder batched

    def one(image: Path, target: Path) -> list[str]:
        encoded = next(results)
        if isinstance(encoded, NormcompressError):
            raise encoded
        atomic_write(target, encoded.data)
        pixels = encoded.reconstruction.size[0] * encoded.reconstruction.size[1]
        return [str(image), str(len(encoded.data)), f"{len(encoded.data) * 8 / pixels:.3f}",
                f"{encoded.payload_bytes * 8 / pixels:.3f}", f"{encoded.residual_bytes * 8 / pixels:.3f}",
                f"{encoded.psnr:.2f}", str(encoded.max_error), str(target)]

    _each_file(images, targets, one, ["image", "bytes", "bpp", "latent bpp", "residual bpp", "PSNR dB", "max err",
                                      "file"], "compressed")


@app.command()
def decompress(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help=".ncz files.")],
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Directory for the PNG images.")],
    data_dir: CodecDataDir = Path("data"),
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Decompress .ncz files into PNG images; each file names the run (and weights) it needs.

    Files over 64 MiB, or claiming more pixels than their size can hold, are refused before decoding.
    """
    from .codec import MAX_FILE_BYTES, decode
    from .images import save_png

    store = _store(runs_dir)
    targets = _targets(files, _out_dir(out_dir), ".png", force)

    def one(path: Path, target: Path) -> list[str]:
        picture = decode(read_regular(path, MAX_FILE_BYTES), store, str(path), data_dir=str(data_dir))
        save_png(picture, target)
        return [str(path), f"{picture.size[0]}x{picture.size[1]}", picture.mode, str(target)]

    _each_file(files, targets, one, ["file", "size", "mode", "image"], "decompressed", "file(s)")


@app.command()
def rd(
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Directory for rd.csv, rd.md and rd.png.")],
    run_ids: Annotated[list[str] | None, typer.Argument(
        metavar="[RUN...]", help="Runs to measure: ids, or unique prefixes or suffixes.")] = None,
    rate_lambdas: Annotated[str | None, typer.Option(
        help="Comma-separated λ: train (or reuse) one run of --model per λ, on norm + λ·bits, and draw their "
             "curve (0.001-0.01 suits L2).")] = None,
    norm: Annotated[str, typer.Option(help="With --rate-lambdas: the runs' norm.")] = "L2",
    model: Annotated[str, typer.Option(help=f"With --rate-lambdas: the runs' model ({', '.join(MODELS)}).")] = "hyperprior",
    epochs: Annotated[int, typer.Option(min=1, help="With --rate-lambdas: epochs per run.")] = 10,
    lr: LearningRate = 3e-3,
    device: Annotated[str, typer.Option(help=f"With --rate-lambdas: training device: {DEVICE_FORMS}.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="With --rate-lambdas: train on the first N images.")] = None,
    dataset: Annotated[str | None, typer.Option(help=f"Images: {', '.join(DATASETS)}; default: the first run's "
                                                     "(cifar10 for runs trained here).")] = None,
    images: Annotated[int | None, typer.Option(min=1, help="Use this many test images (evenly spaced).")] = None,
    data_dir: DataDir = Path("data"),
    figure_format: FigureFormat = FigureKind.png,
    dpi: Dpi = DEFAULT_DPI,
    runs_dir: RunsDir = None,
) -> None:
    """Rate-distortion of runs against WebP, JPEG and a PCA floor, with the BD-rate against WebP.

    A run of an autoencoder gives one point per quantisation step.
    With --rate-lambdas, one codec run per λ is trained (or a completed one reused) and gives one point.
    bpp counts whole files, one per image; the container's share is a column of its own.
    """
    from .study import StudyConfig

    lambdas = _numbers(rate_lambdas, "--rate-lambdas") if rate_lambdas is not None else []
    if not run_ids and not lambdas:
        raise UsageError("rd needs runs, or --rate-lambdas to train them")
    sweep = [StudyConfig(norms=[norm], seeds=1, epochs=epochs, dataset=dataset or "cifar10", lr=lr, limit=limit,
                         model=model, rate_lambda=value, data_dir=str(data_dir), devices=[device]).validated()
             for value in lambdas]  # every setting checked before anything trains
    if sweep:
        resolve_device(device)
    store = _store(runs_dir)
    target = _out_dir(out_dir)
    runs = [store.get(r) for r in run_ids or []]
    if sweep:
        runs += _train_sweep(sweep, store)
    from .rd import write_rd

    paths = write_rd(runs, target, dataset, str(data_dir), images, fmt=figure_format.value, dpi=dpi)
    out.print((target / "rd.md").read_text())
    for path in paths:
        out.print(one_line(path))


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, not {text[:40]!r}") from None
    if not values or not all(0 < v < float("inf") for v in values) or len(set(values)) != len(values):
        raise UsageError(f"{option} needs distinct positive numbers")
    return values


def _train_sweep(sweep, store: RunStore) -> list:
    """One run per λ, trained or reused, with a line for each."""
    from .study import run_study

    report = ConsoleReport(epoch_lines=False)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    runs = []
    with report:
        try:
            for config in sweep:
                label = f"{config.norms[0]} {config.model} λ={config.rate_lambda:g}"

                def say(progress, label=label) -> None:
                    if progress.state in ("reused", "finished"):
                        report.say(f"{progress.state:>8}  {label}")

                runs += run_study(config, store, say, report.on_event)
        except KeyboardInterrupt:
            report.progress.stop()
            err.print("interrupted: finished runs are kept; run the same command again to resume")
            raise typer.Exit(130) from None
        report.progress.update(report.steps, visible=False)
        report.say("measuring…")
    return runs


@app.command()
def study(
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Directory for the report.")],
    norms: Annotated[str, typer.Option(help="Comma-separated norms.")] = "L2,L1,Linf,Linf-image,0.5*L1+0.5*L2",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per norm (0, 1, ...).")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per run.")] = 10,
    dataset: Annotated[str, typer.Option(help=f"Images: {', '.join(DATASETS)}.")] = "cifar10",
    data_dir: DataDir = Path("data"),
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    lr: LearningRate = 3e-3,
    optimizer: Optimizer = "adamw",
    schedule: Schedule = "onecycle",
    limit: Annotated[int | None, typer.Option(min=1, help="Train on the first N training images only.")] = None,
    model: Annotated[str, typer.Option(help=f"Model: {', '.join(MODELS)}.")] = "seed",
    rate_lambda: Annotated[float, typer.Option(min=0.0, help="Every run trains for compression too (see train "
                                               "--rate-lambda); one study per model and λ.")] = 0.0,
    image_size: Annotated[int, typer.Option(help="Crop size for folder: datasets.")] = 32,
    devices: Annotated[str, typer.Option(help="Comma-separated devices; runs go to them side by side.")] = "auto",
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS]",
        help="Send each run to a Ray cluster as a task: --ray alone starts a local Ray instance; "
             "--ray auto joins one `ray start` began here; --ray HOST:PORT or ray://HOST:10001 a remote one. "
             "Needs the extra: pip install -e '.\\[cluster]'.")] = None,  # \[: not Rich markup
    retries: Annotated[int, typer.Option(min=0, help="On Ray: times a run whose worker died is tried again.")] = 1,
    ray_cpus: Annotated[int, typer.Option(min=1, help="On Ray, runs on the CPU: cores (and torch threads) per run.")] = 1,
    metric: Annotated[MetricKey, typer.Option(help="Metric of curves.png.")] = MetricKey("psnr"),
    figure_format: FigureFormat = FigureKind.png,
    dpi: Dpi = DEFAULT_DPI,
    runs_dir: RunsDir = None,
) -> None:
    """Train every norm x seed (reusing completed runs, resuming interrupted ones) and write a report.

    The report directory gets report.md, report.html (self-contained), curves.png,
    reconstructions.png, errors.png, metrics.csv and metrics.json.
    """
    from .study import StudyConfig, StudyProgress, run_study

    if metric.value == "loss":
        raise UsageError("--metric loss is in each run's own norm; choose a validation metric for the study")
    report_dir = _out_dir(out_dir)
    store = _store(runs_dir)
    device_list = [d.strip() for d in devices.split(",") if d.strip()]
    config = StudyConfig(
        norms=[n.strip() for n in norms.split(",") if n.strip()], seeds=seeds, epochs=epochs, dataset=dataset,
        batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule, limit=limit, model=model, rate_lambda=rate_lambda, image_size=image_size, data_dir=str(data_dir),
        devices=device_list or ["auto"], ray=ray, retries=retries, cpus_per_run=ray_cpus,
    ).validated()  # the options' forms, the --ray address's among them, before anything heavy loads
    if config.ray is not None:
        from .cluster import check_reachable

        check_reachable(config.ray)  # seconds, where Ray waits minutes
    else:
        for d in config.devices:
            resolve_device(d)  # torch: after the checks that need none
    from .comparison import claim_lines, study_table
    from .report import write_report  # matplotlib: loaded only by the commands that draw figures

    report = ConsoleReport(epoch_lines=False)
    total = len(config.norms) * config.seeds
    overall = report.progress.add_task(f"runs 0/{total}", total=total, detail="")
    running: dict[str, str] = {}  # on Ray: each running run's epoch, shown beside the bar
    if config.ray is not None:
        report.progress.update(report.steps, visible=False)  # no steps come back from Ray, only epochs

    def on_progress(p: StudyProgress) -> None:
        if p.state in ("training", "resuming", "retrying", "epoch") and config.ray is not None:
            running[p.label] = f"{p.epoch}/{p.epochs}" if p.epochs else "starting"
        else:
            running.pop(p.label, None)
        detail = ", ".join(f"{label} {epoch}" for label, epoch in running.items())
        report.progress.update(overall, completed=p.done, description=f"runs {p.done}/{p.total}",
                               detail=f"running: {detail}" if detail else "")
        if p.state in ("reused", "finished", "failed", "retrying") or (p.where and p.state == "training"):
            where = f" on {p.where}" if p.where else ""
            message = f": {p.message}" if p.message and p.state != "training" else ""
            report.say(f"{p.state:>8}  {p.label}{where}{message}")

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with report:
        try:
            runs = run_study(config, store, on_progress, report.on_event)
        except KeyboardInterrupt:
            report.progress.stop()
            err.print("interrupted: finished runs are kept; run the same command again to resume"
                      + (" (the runs out on Ray were cancelled)" if config.ray is not None else ""))
            raise typer.Exit(130) from None
        report.progress.update(report.steps, visible=False)
        report.say("writing the report…")
        files, summary = write_report(runs, report_dir, metric.value, str(data_dir), store, figure_format.value, dpi)
    out.print(_columns(*study_table(summary, mark_best=False, short=True)))
    for line in claim_lines(summary):
        out.print(line.replace("**", ""))
    for path in files:
        out.print(one_line(path))


# -- runs ------------------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Every run in the store: id, norm, status, epochs, val PSNR, duration, tags; damaged runs with the reason."""
    store = _store(runs_dir)
    infos = store.infos()
    if as_json:
        rows = [
            {"id": i.id, "norm": i.norm, "status": str(i.status), "epochs_done": i.epochs_done, "epochs": i.epochs,
             "psnr": i.psnr, "duration_s": i.duration_s, "tags": list(i.tags), "tags_problem": i.tags_problem,
             "problem": i.problem, "path": str(i.path)}
            for i in infos
        ]
        out.print_json(json.dumps(rows), ensure_ascii=True)  # control codes as \\u escapes, never raw
        return
    if not infos:
        err.print(f"no runs in {one_line(store.root)}; start one with: normcompress train")
        return
    rows = [
        [i.id, i.norm, str(i.status), f"{i.epochs_done}/{i.epochs}", "-" if i.psnr is None else f"{i.psnr:.2f}",
         i.duration_text, "(unreadable)" if i.tags_problem else " ".join(i.tags)]
        for i in infos
    ]
    out.print(_columns(["id", "norm", "status", "epochs", "val PSNR", "duration", "tags"], rows, left=3))
    for i in infos:
        if i.problem:
            err.print(f"{i.id} is damaged: {one_line(i.problem)}")
        if i.tags_problem:
            err.print(f"{i.id}: its tags are unreadable ({one_line(i.tags_problem)}); "
                      f"normcompress runs tag {i.id} --clear (or --replace WORDS) repairs them")


@runs_app.command("show")
def runs_show(run_id: RunRef, runs_dir: RunsDir = None) -> None:
    """A run's configuration, outcome and per-epoch metrics."""
    run = _store(runs_dir).get(run_id)
    info = run.info()
    out.print(Text.assemble((run.id, "bold"), f"  {info.status}  ", one_line(run.path)))
    if info.problem:
        err.print(f"damaged: {one_line(info.problem)}")
    for key, value in (asdict(info.config) if info.config else {}).items():
        out.print(f"  {key:<12} {one_line(value)}")
    if info.summary:
        s = info.summary
        out.print(f"  {'data':<12} {one_line(s.data or '-')}\n  {'device':<12} {one_line(s.device or '-')}"
                  f"\n  {'wall time':<12} {info.duration_text}")
        if s.message:
            out.print(f"  {'message':<12} {one_line(s.message)}")
    try:
        out.print(f"  {'tags':<12} {' '.join(run.tags()) or '-'}")
    except NormcompressError as exc:
        err.print(f"tags: {one_line(exc)}")
    records = run.metrics()
    if records:
        headers = ["epoch", *(ALL_METRICS[k].column for k in EPOCH_METRICS), "img/s"]
        rows = [[str(r["epoch"]), *(ALL_METRICS[k].text(r.get(k)) for k in EPOCH_METRICS),
                 f"{r.get('images_per_s', 0):,.0f}"] for r in records]
        out.print(_columns(headers, rows, left=0))


@runs_app.command("compare")
def runs_compare(
    run_ids: RunRefs,
    metric: Annotated[MetricKey, typer.Option(help="Metric to chart per epoch.")] = MetricKey("psnr"),
    log: Annotated[bool, typer.Option("--log", help="Log-scale y axis.")] = False,
    smoothing: Annotated[float, typer.Option(
        "--smooth", min=0.0, max=0.999,
        help="Exponential moving average weight (0 = raw, 0.9 ~ the last 10 points). The raw curve stays, "
             "faint, under the smoothed one.")] = 0.0,
    width: Annotated[int, typer.Option(min=20, max=1000, help="Chart width in characters.")] = 100,
    height: Annotated[int, typer.Option(min=5, max=500, help="Chart height in characters.")] = 25,
    baseline: Annotated[bool, typer.Option(help="Add PCA at the first run's latent size on its data as a reference "
                                           "(fitted once per dataset, then read from the run store).")] = True,
    paired: Annotated[bool, typer.Option("--paired", help="Test each run against the first on the same validation "
                                         "images (Wilcoxon signed-rank on per-image PSNR; loads the models).")] = False,
    data_dir: DataDir = Path("data"),
    runs_dir: RunsDir = None,
) -> None:
    """Final metrics side by side, and a terminal chart of one metric per epoch (the training loss per step).

    Names every configuration difference between the runs beyond norm and seed, since a difference in
    the table may come from any of them.
    """
    from .comparison import config_differences

    store = _store(runs_dir)
    runs = [store.get(r) for r in run_ids]
    infos = [r.info() for r in runs]
    for info in infos:
        if info.problem:
            err.print(f"{info.id} is damaged ({one_line(info.problem)}); it is left out of the table and the chart")
    usable = [(run, info) for run, info in zip(runs, infos) if not info.problem]
    for key, values in config_differences([run for run, _ in usable]).items():
        err.print(f"warning: the runs differ in {key} ({one_line(', '.join(values))}), not only in norm and seed")
    data = load_run_data(usable[0][0], data_dir, notice) if usable and (baseline or paired) else None
    reference = _reference(store, usable[0][0], data) if data is not None and baseline else None
    labels = [f"{i.label}  " for i in infos] + ([f"{reference.label}  "] if reference else [])
    rows = []
    for key, m in ALL_METRICS.items():
        values = [i.metrics.get(key) for i in infos]
        known = [v for v in values if v is not None]
        if not known:
            continue  # a metric none of these runs has (MS-SSIM on 32-pixel images)
        best = max(known, key=m.score) if key != "loss" else None
        cells = ["-" if v is None else f"{v:.5g}{' *' if v == best else '  '}" for v in values]
        if reference:
            cells.append("-" if key not in reference.metrics else f"{reference.metrics[key]:.5g}  ")
        rows.append([m.label, *cells])
    out.print("final validation metrics (* best of the runs" + (", not counting the PCA reference)\n" if reference
                                                                else ")\n"))
    out.print(_columns(["metric", *labels], rows))
    if paired and data is not None:
        out.print("\n" + _paired_lines(usable, data))
    line = (f"{reference.label}", reference.metrics[metric.value]) if reference and metric.value in reference.metrics else None
    out.print(Text.from_ansi(chart_text(usable, metric.value, log, width, height, smoothing, line)))


def _reference(store: RunStore, run, data):
    """The PCA baseline on a run's data, or None with a notice saying why."""
    from .baseline import run_baseline

    baseline, reason = run_baseline(store, run, data)
    if reason:
        notice(reason)
    return baseline


def _paired_lines(runs, data) -> str:
    """Each run against the first, image by image on the first run's validation images."""
    from .comparison import per_image_values
    from .metrics import per_image_errors
    from .stats import paired_images

    psnr = [per_image_values(per_image_errors(load_model(run), data.val))["psnr"] for run, _ in runs]
    lines = [f"per-image PSNR against {runs[0][1].label} on the same {len(data.val)} {data.source} images:"]
    for (_, info), values in zip(runs[1:], psnr[1:]):
        test = paired_images(values.tolist(), psnr[0].tolist())
        better = (values > psnr[0]).double().mean().item() * 100
        lines.append(f"  {info.label}: better on {better:.0f}% of images, mean difference "
                     f"{(values - psnr[0]).mean().item():+.3f} dB, {test.text()} ({test.test})")
    return "\n".join(lines)


def chart_text(runs, metric: str, log: bool, width: int, height: int, smoothing: float = 0.0,
               reference: tuple[str, float] | None = None) -> str:
    """A plotext chart (with ANSI colours, one per run) of one metric per epoch, or the loss per step."""
    series = []
    for run, info in runs:
        try:
            records = [r for r in run.metrics() if r.get(metric) is not None]
        except NormcompressError:
            continue  # damaged since it was listed
        steps = step_series(info.label, records) if metric == "loss" else None
        series.append(steps or (info.label, [r["epoch"] for r in records], [r[metric] for r in records]))
    plotext.clear_figure()
    plotext.plotsize(width, height)
    plotext.theme("clear")
    draw_curves(plotext, series, ALL_METRICS[metric].label, log, smoothing, width, reference,
                colour=not os.environ.get("NO_COLOR"))  # without colour, a marker per run
    return plotext.build()


@runs_app.command("export")
def runs_export(
    path: Annotated[Path, typer.Argument(help="Output file: .csv (one row per run and epoch) or .json (with every step's loss too).")],
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Export every run's configuration and per-epoch metrics into one file (damaged runs with the reason).

    The file must be outside the run store; an existing one is replaced only with --force."""
    from .export import check_target, export_runs

    store = _store(runs_dir)
    check_target(store, path, force)
    runs, rows = export_runs(store, path)
    err.print(f"exported {runs} runs ({rows} epoch rows) to {one_line(path)}")


@runs_app.command("tag")
def runs_tag(
    run_id: RunRef,
    tags: Annotated[list[str] | None, typer.Argument(metavar="TAG...", help="Words to add (letters, digits, "
                                                     ". : + = @ - _; 32 characters at most).")] = None,
    remove: Annotated[bool, typer.Option("--remove", "-r", help="Remove the given tags instead.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Make the given tags the run's only ones.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every tag of the run.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Tag a run with words of your own (`baseline`, `lr-sweep`), to find it again: the app's `/` filter
    searches them, `runs list` and `runs show` print them. The app's `t` edits the same tags.

    Tagging from several shells at once keeps every word. --replace and --clear also repair a damaged
    tags.json."""
    if sum((remove, replace, clear)) > 1:
        raise UsageError("give one of --remove, --replace and --clear")
    run = _store(runs_dir).get(run_id)
    words = tags or []
    if clear:
        new, dropped = run.update_tags(replace=[])
    elif replace:
        new, dropped = run.update_tags(replace=words)
    elif remove:
        new, dropped = run.update_tags(remove=words)
    else:
        new, dropped = run.update_tags(add=words)
    if dropped:
        notice(f"{run.id}: {one_line(dropped)}")
    err.print(f"{run.id}: {' '.join(new) or 'no tags'}")


@runs_app.command("rm")
def runs_rm(
    run_ids: RunRefs,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Remove runs from the store (asks first). Only runs inside the store can be named; never a path."""
    store = _store(runs_dir)
    runs = [store.get(r) for r in run_ids]
    if not yes and not typer.confirm(f"remove {len(runs)} run(s): {', '.join(r.id for r in runs)}?"):
        raise typer.Exit(1)
    for run in runs:
        store.remove(run)
        err.print(f"removed {run.id}")


def main() -> None:
    """Console entry point: every failure becomes one line on stderr and an exit code (2 usage, 1 runtime,
    130 interrupted)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        code = app(args=_bare_ray_is_local(sys.argv[1:]), prog_name="normcompress", standalone_mode=False)
    except typer.TyperException as exc:  # Typer's usage errors: a bad option, a missing argument
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx else "normcompress"
        _error(f"{exc.format_message()} (see: {command} --help)")
        code = exc.exit_code
    except typer.Abort as exc:  # Click's answer to Ctrl-C or end of input outside `train` and `study`
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        err.print("normcompress: interrupted" if interrupted else "normcompress: aborted")
        code = 130 if interrupted else 1
    except KeyboardInterrupt:
        err.print("normcompress: interrupted")
        code = 130
    except NormcompressError as exc:
        _error(str(exc))
        code = exc.exit_code
    sys.exit(code or 0)


def _bare_ray_is_local(args: list[str]) -> list[str]:
    """`study --ray` with no address means a local Ray instance (Click has no option with an optional
    value): a bare --ray, last or before another option, gets the address "local"."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args.insert(i + 1, "local")
            break
    return args


def _error(message: str) -> None:
    """One line, whatever the message holds (a file name with a newline or an escape sequence)."""
    err.print(f"normcompress: error: {one_line(message)}")
