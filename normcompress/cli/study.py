"""`normcompress study` and `normcompress rd`: many runs trained (or reused) and what they say, as a
report of norms (or any grid of settings) over seeds, and as rate-distortion curves against WebP."""

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..config import DATASETS, DEFAULTS, MODELS, TrainConfig
from ..console import ConsoleReport, StudyConsole, out
from ..devices import DEVICE_FORMS
from ..errors import UsageError
from ..study_config import GRID_KEYS, StudyConfig, parse_grid
from ..style import DEFAULT_DPI
from .options import (
    Amp,
    BatchSize,
    ChannelsLast,
    Compile,
    CudaGraph,
    DataDir,
    Dataset,
    Dpi,
    Epochs,
    FigureFormat,
    FigureKind,
    ImageSize,
    LearningRate,
    Limit,
    Model,
    Optimizer,
    RateLambda,
    RunsDir,
    Schedule,
    StudyMetric,
    ValidationMetricKey,
    interruptible,
    out_dir,
    positive_numbers,
    store,
)
from .tables import terminal_table

app = typer.Typer()
D = DEFAULTS
STUDY_NORMS = "L2,L1,Linf,Linf-image,0.5*L1+0.5*L2"
RESUME_HINT = "interrupted: finished runs are kept; run the same command again to resume"
Devices = Annotated[
    str,
    typer.Option(metavar="DEVICES", help=f"Comma-separated devices ({DEVICE_FORMS}); runs go to them side by side."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="[ADDRESS]",
        help="Send each run to a Ray cluster as a task: --ray alone starts a local Ray instance; --ray auto joins one "
        "`ray start` began here; --ray HOST:PORT or ray://HOST:10001 a remote one. Needs the extra: "
        "pip install -e '.[cluster]'.",
    ),
]
Retries = Annotated[int, typer.Option(metavar="N", min=0, help="On Ray: times a run whose worker died is tried again.")]
RayCpus = Annotated[
    int, typer.Option(metavar="N", min=1, help="On Ray, runs on the CPU: cores (and torch threads) per run.")
]
Stack = Annotated[
    bool | None,
    typer.Option(
        "--stack/--no-stack",
        help="Train the runs that share a model and data together as one stacked model, each still its own run "
        "(default: on one GPU; on the CPU it measured slower).",
        show_default=False,
    ),
]


@app.command(short_help="Train every norm x seed (or grid point) and write a report.")
def study(
    out_path: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Directory for the report.")],
    norms: Annotated[
        str | None, typer.Option(metavar="NORMS", help="Comma-separated norms.", show_default=STUDY_NORMS)
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SETTING=V1,V2",
            help=f"A setting and its values, SETTING=V1,V2 (repeat for more: every combination trains): "
            f"{', '.join(GRID_KEYS)}.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(metavar="N", min=1, help="Seeds per grid point (0, 1, ...).")] = 3,
    epochs: Epochs = D.epochs,
    dataset: Dataset = D.dataset,
    data_dir: DataDir = Path(D.data_dir),
    batch_size: BatchSize = D.batch_size,
    lr: LearningRate = D.lr,
    optimizer: Optimizer = D.optimizer,
    schedule: Schedule = D.schedule,
    limit: Limit = D.limit,
    model: Model = D.model,
    rate_lambda: RateLambda = D.rate_lambda,
    image_size: ImageSize = D.image_size,
    amp: Amp = D.amp,
    channels_last: ChannelsLast = D.channels_last,
    compile_model: Compile = D.compile,
    cuda_graph: CudaGraph = D.cuda_graph,
    devices: Devices = "auto",
    ray: RayAddress = None,
    retries: Retries = 1,
    ray_cpus: RayCpus = 1,
    stack: Stack = None,
    metric: StudyMetric = ValidationMetricKey("psnr"),
    figure_format: FigureFormat = FigureKind.png,
    dpi: Dpi = DEFAULT_DPI,
    runs_dir: RunsDir = None,
) -> None:
    """Train every norm (or grid point) x seed and write a report; completed runs are reused.

    Interrupted runs are resumed. The report directory gets report.md, report.html (self-contained), curves.png,
    reconstructions.png, errors.png, metrics.csv and metrics.json.
    """
    if metric.value == "loss":
        raise UsageError("--metric loss is in each run's own norm; choose a validation metric for the study")
    base = TrainConfig(
        epochs=epochs,
        dataset=dataset,
        data_dir=str(data_dir),
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        limit=limit,
        model=model,
        rate_lambda=rate_lambda,
        image_size=image_size,
        amp=amp,
        channels_last=channels_last,
        compile=compile_model,
        cuda_graph=cuda_graph,
    )
    config = StudyConfig(
        base,
        _grid(norms, grid),
        seeds,
        [d.strip() for d in devices.split(",") if d.strip()] or ["auto"],
        ray,
        retries,
        ray_cpus,
        stack,
    ).validated()  # every option's form, the --ray address's too
    report_dir, runs_store = out_dir(out_path), store(runs_dir)
    api.check_placement(config)
    report = ConsoleReport(epoch_lines=False)
    console = StudyConsole(report, config.runs_count(), config.ray is not None)
    on_ray = " (the runs out on Ray were cancelled)" if config.ray is not None else ""
    with interruptible(lambda: RESUME_HINT + on_ray), report:
        runs = api.run_study(config, runs_store, console.on_progress, report.on_event)
        report.progress.update(report.steps, visible=False)
        report.say("writing the report…")
        files, summary = api.write_report(
            runs, report_dir, metric.value, str(data_dir), runs_store, figure_format.value, dpi
        )
    headers, rows, claims = api.summary_text(summary)
    out.print(terminal_table(headers, rows, turn=True))
    for line in claims:
        out.print(line)
    for path in files:
        out.print(str(path))


def _grid(norms: str | None, items: list[str] | None) -> dict[str, list]:
    """--norms and --grid as one grid, the norms first (the default norms when neither names any)."""
    points = parse_grid(items or [])
    if norms is not None and "norm" in points:
        raise UsageError("give the norms once: --norms, or --grid norm=...")
    if "norm" in points:
        return points
    return {"norm": [n.strip() for n in (norms or STUDY_NORMS).split(",") if n.strip()], **points}


@app.command(short_help="Rate-distortion of runs against WebP, JPEG and PCA.")
def rd(
    out_path: Annotated[
        str, typer.Option("--out", "-o", metavar="DIR", help="Directory for rd.csv, rd.md and rd.png.")
    ],
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="RUN", help="Runs to measure: ids, or unique prefixes or suffixes."),
    ] = None,
    rate_lambdas: Annotated[
        str | None,
        typer.Option(
            metavar="λ1,λ2",
            help="Comma-separated λ: train (or reuse) one run of --model per λ, on norm + λ·bits, and draw their "
            "curve (0.001-0.01 suits L2).",
        ),
    ] = None,
    norm: Annotated[str, typer.Option(metavar="NORM", help="With --rate-lambdas: the runs' norm.")] = D.norm,
    model: Annotated[
        str, typer.Option(metavar="MODEL", help=f"With --rate-lambdas: the runs' model ({', '.join(MODELS)}).")
    ] = "hyperprior",
    epochs: Annotated[int, typer.Option(metavar="N", min=1, help="With --rate-lambdas: epochs per run.")] = D.epochs,
    lr: LearningRate = D.lr,
    device: Annotated[
        str, typer.Option(metavar="DEVICE", help=f"With --rate-lambdas: training device: {DEVICE_FORMS}.")
    ] = D.device,
    limit: Annotated[
        int | None, typer.Option(metavar="N", min=1, help="With --rate-lambdas: train on the first N images.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            metavar="DATASET",
            help=f"Images: {', '.join(DATASETS)}; default: the first run's (cifar10 for runs trained here).",
        ),
    ] = None,
    images: Annotated[
        int | None, typer.Option(metavar="N", min=1, help="Use this many test images (evenly spaced).")
    ] = None,
    data_dir: DataDir = Path(D.data_dir),
    figure_format: FigureFormat = FigureKind.png,
    dpi: Dpi = DEFAULT_DPI,
    runs_dir: RunsDir = None,
) -> None:
    """Rate-distortion of runs against WebP, JPEG and a PCA floor, with the BD-rate against WebP.

    A run of an autoencoder gives one point per quantisation step.
    With --rate-lambdas, one codec run per λ is trained (or a completed one reused) and gives one point.
    bpp counts whole files, one per image; the container's share is a column of its own.
    """
    lambdas = positive_numbers(rate_lambdas, "--rate-lambdas") if rate_lambdas is not None else []
    if not run_ids and not lambdas:
        raise UsageError("rd needs runs, or --rate-lambdas to train them")
    sweep = None
    if lambdas:  # every setting checked before anything trains
        base = TrainConfig(
            norm=norm,
            epochs=epochs,
            dataset=dataset or D.dataset,
            lr=lr,
            limit=limit,
            model=model,
            rate_lambda=lambdas[0],
            data_dir=str(data_dir),
        )
        sweep = StudyConfig(base, {"rate_lambda": lambdas}, seeds=1, devices=[device]).validated()
        api.check_device(device)
    runs_store, target = store(runs_dir), out_dir(out_path)
    runs = [runs_store.get(r) for r in run_ids or []]
    if sweep is not None:
        report = ConsoleReport(epoch_lines=False)
        console = StudyConsole(report, sweep.runs_count(), False, lines=("reused", "finished", "failed"))
        with interruptible(lambda: RESUME_HINT), report:
            runs += api.run_study(sweep, runs_store, console.on_progress, report.on_event)
            report.progress.update(report.steps, visible=False)
            report.say("measuring…")
    paths = api.write_rd(runs, target, dataset, str(data_dir), images, figure_format.value, dpi)
    out.print((target / "rd.md").read_text())
    for path in paths:
        out.print(str(path))
