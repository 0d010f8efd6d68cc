"""`normcompress train` and `normcompress eval`: a run trained (or resumed) into the store, and a run's
checkpoint measured on a dataset."""

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..config import DATASETS, DEFAULTS, TrainConfig
from ..console import ConsoleReport, err, notice, out
from ..devices import DEVICE_FORMS
from ..errors import UsageError
from ..losses import VALID_FORMS
from ..metrics import METRICS
from ..runs import Status
from ..text import count, figures, one_line
from .options import (
    Amp,
    BatchSize,
    ChannelsLast,
    Compile,
    CudaGraph,
    DataDir,
    Dataset,
    Device,
    Epochs,
    ImageSize,
    LearningRate,
    Limit,
    Model,
    Optimizer,
    RateLambda,
    RunRef,
    RunsDir,
    Schedule,
    interruptible,
    store,
)
from .tables import columns

app = typer.Typer()
D = DEFAULTS


@app.command()
def train(
    ctx: typer.Context,
    norm: Annotated[str, typer.Option(metavar="NORM", help=f"Loss norm: {VALID_FORMS}.")] = D.norm,
    epochs: Epochs = D.epochs,
    batch_size: BatchSize = D.batch_size,
    lr: LearningRate = D.lr,
    optimizer: Optimizer = D.optimizer,
    schedule: Schedule = D.schedule,
    device: Annotated[str, typer.Option(metavar="DEVICE", help=f"Training device: {DEVICE_FORMS}.")] = D.device,
    dataset: Dataset = D.dataset,
    data_dir: DataDir = Path(D.data_dir),
    seed: Annotated[
        int, typer.Option(metavar="N", min=0, max=2**32 - 1, help="Seed for the weights and the batch order.")
    ] = D.seed,
    limit: Limit = D.limit,
    model: Model = D.model,
    image_size: ImageSize = D.image_size,
    amp: Amp = D.amp,
    channels_last: ChannelsLast = D.channels_last,
    compile_model: Compile = D.compile,
    cuda_graph: CudaGraph = D.cuda_graph,
    rate_lambda: RateLambda = D.rate_lambda,
    resume: Annotated[
        str | None,
        typer.Option(
            metavar="RUN",
            help="Continue an interrupted run (id, or a unique prefix or suffix) with its own settings; "
            "--device may move it.",
        ),
    ] = None,
    runs_dir: RunsDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run id and path.")] = False,
) -> None:
    """Train a run (or resume one) and save it in the run store.

    With no network, --dataset cifar10 falls back to the embedded sample and says so.
    """
    resume_on = None
    if resume is not None:
        _refuse_settings_beside_resume(ctx)
        if _given(ctx, "device"):  # a run asked for cuda goes on on this machine's CPU, or another GPU
            resume_on = device
    config = TrainConfig(
        norm=norm,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        device=device,
        dataset=dataset,
        data_dir=str(data_dir),
        seed=seed,
        limit=limit,
        model=model,
        image_size=image_size,
        amp=amp,
        channels_last=channels_last,
        compile=compile_model,
        cuda_graph=cuda_graph,
        rate_lambda=rate_lambda,
    ).validated()  # a bad option is refused before torch is imported
    runs = store(runs_dir)
    report = ConsoleReport(quiet=quiet or not api.is_main_process(), epoch_lines=True)  # under torchrun, rank 0 reports

    def stopped() -> str | None:
        return (
            (
                f"interrupted: run {report.run_id} kept with its last complete epoch; "
                f"resume with: normcompress train --resume {report.run_id}"
            )
            if report.run_id
            else None
        )

    with interruptible(stopped), report:
        run = api.train_run(config, runs, report.on_event, resume=resume, resume_on=resume_on)
    if run is None:  # another torchrun rank: rank 0 prints the run
        return
    summary = run.summary()
    if summary.status != Status.COMPLETED:
        err.print(f"{summary.status}: {one_line(summary.message)}")
    out.print(f"{run.id}\t{one_line(run.path)}")
    if summary.status == Status.INTERRUPTED:
        raise typer.Exit(130)


def _refuse_settings_beside_resume(ctx: typer.Context) -> None:
    """A resumed run goes on with its own settings: one typed beside --resume (--epochs 20, to train it
    longer) was silently ignored. Only where it trains may change (--device)."""
    not_settings = {"resume", "runs_dir", "quiet", "device"}
    given = [
        "/".join([param.opts[0], *param.secondary_opts[:1]])  # --cuda-graph/--no-cuda-graph
        for param in ctx.command.params
        if param.name not in not_settings and _given(ctx, param.name or "")
    ]
    if given:
        raise UsageError(
            f"--resume continues a run with its own settings; leave out {', '.join(given)} "
            "(a run with other settings is a new run: train it without --resume)"
        )


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether an option was typed on the command line (not its default, nor an environment variable)."""
    return getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"


@app.command("eval", short_help="Evaluate a run's checkpoint on a dataset's test images.")
def eval_(
    run_id: RunRef,
    dataset: Annotated[
        str | None, typer.Option(metavar="DATASET", help=f"Images: {', '.join(DATASETS)}; default: the run's own.")
    ] = None,
    data_dir: DataDir = Path(D.data_dir),
    device: Device = D.device,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Evaluate a saved run's checkpoint on a dataset's test (validation) split."""
    result = api.evaluate_run(store(runs_dir), run_id, dataset, str(data_dir), device, notice)
    if as_json:
        out.print_json(
            json.dumps({"run": result.run_id, "data": result.data, "images": result.images, **result.metrics}),
            ensure_ascii=True,
        )  # control codes as \u escapes
        return
    out.print(f"{result.run_id} on {one_line(result.data)} ({count(result.images, 'test image')})")
    out.print(columns(["metric", "value"], [[METRICS[k].label, *figures([v])] for k, v in result.metrics.items()]))
