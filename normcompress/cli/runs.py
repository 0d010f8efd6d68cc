"""`normcompress runs ...`: list, show, compare, export, tag and remove the runs of the store."""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from .. import api
from ..console import err, notice, out
from ..errors import NormcompressError, StoreError, UsageError
from ..metrics import ALL_METRICS, epoch_table
from ..runs import RunInfo, RunStore
from ..text import count, figures, one_line, printable
from . import annotations
from .options import ChartMetric, DataDir, Force, MetricKey, RunRef, RunRefs, RunsDir, Where, store
from .tables import side_by_side, terminal_table
from .terminal_chart import chart_text

app = typer.Typer()


@app.callback(invoke_without_command=True)
def _runs(ctx: typer.Context) -> None:
    """List, inspect, compare, export and remove saved runs."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@app.command("list", short_help="Every run in the store: settings, status, PSNR, tags.")
def runs_list(
    where: Where = None,
    order: Annotated[
        str | None,
        typer.Option(
            "--sort",
            "-s",
            metavar="KEY",
            help="Order by a setting or final metric (any key --where takes), -KEY for the largest first "
            "(--sort -psnr); runs without the value come last. Default: oldest first.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Every run in the store: id, norm, status, epochs, val PSNR, duration, tags; damaged runs with the reason."""
    runs = store(runs_dir)
    chosen = api.RunFilter.parse(where or "")
    every = runs.infos()
    infos = [i for i in every if chosen.matches(i)]
    if order is not None:
        infos = api.sorted_runs(infos, order)
    if as_json:
        rows = [_listed(i) for i in infos]
        out.print_json(json.dumps(rows), ensure_ascii=True)  # control codes as \u escapes, never raw
        return
    if not infos:
        if every:
            err.print(f"none of the {count(len(every), 'run')} in {one_line(runs.root)} holds {one_line(where)}")
        else:
            err.print(f"no runs in {one_line(runs.root)}; start one with: normcompress train")
        return
    with_rate = any(i.config and i.config.rate_lambda for i in infos)  # codec runs: their λ is told apart too
    with_name = any(i.name for i in infos)
    rows = [
        [
            i.id,
            *([i.name or "-"] if with_name else []),
            i.norm,
            str(i.status),
            f"{i.epochs_done}/{i.epochs}",
            "-" if i.psnr is None else f"{i.psnr:.2f}",
            i.duration_text,
            i.data_text,
            str(i.config.model) if i.config else "-",
            f"{i.config.lr:g}" if i.config else "-",
            f"{i.config.optimizer} {i.config.schedule}" if i.config else "-",
            *([f"{i.config.rate_lambda:g}" if i.config else "-"] if with_rate else []),
            "(unreadable)" if i.tags_problem else " ".join(i.tags),
        ]
        for i in infos
    ]
    headers = ["id", *(["name"] if with_name else []), "norm", "status", "epochs", "final PSNR", "duration", "data"]
    headers += ["model", "lr", "recipe", *(["rate λ"] if with_rate else []), "tags"]
    out.print(terminal_table(headers, rows))
    for i in infos:
        if i.problem:
            err.print(f"{i.id} is damaged: {one_line(i.problem)}")
        if i.tags_problem:
            err.print(
                f"{i.id}: its tags are unreadable ({one_line(i.tags_problem)}); "
                f"normcompress runs tag {i.id} --clear (or --replace WORDS) repairs them"
            )


def _listed(i: RunInfo) -> dict:
    """A run as `runs list --json` prints it."""
    return {
        "id": i.id,
        "norm": i.norm,
        "status": str(i.status),
        "epochs_done": i.epochs_done,
        "epochs": i.epochs,
        "final_psnr": i.psnr,
        "best_psnr": i.best_psnr,
        "duration_s": i.duration_s,
        "settings": i.settings(),
        "tags": list(i.tags),
        "name": i.name,
        "note": i.note,
        "tags_problem": i.tags_problem,
        "problem": i.problem,
        "path": str(i.path),
    }


@app.command("show")
def runs_show(run_id: RunRef, runs_dir: RunsDir = None) -> None:
    """A run's configuration, outcome and per-epoch metrics."""
    run = store(runs_dir).get(run_id)
    info = run.info()
    out.print(Text.assemble((run.id, "bold"), f"  {info.status}  ", one_line(run.path)))
    if info.problem:
        err.print(f"damaged: {one_line(info.problem)}")
    facts = [
        (key, "-" if value is None else value) for key, value in (asdict(info.config) if info.config else {}).items()
    ]
    if info.summary:
        s = info.summary
        facts += [("data", s.data or "-"), ("trained on", s.device or "-"), ("wall time", info.duration_text)]
        facts += [("versions", s.versions_text), *([("message", s.message)] if s.message else [])]
        facts += [("notice", notice) for notice in s.notices]  # a fallback, skipped files, a stack it trained in
    note = None
    try:
        own = run.annotations()  # not `annotations`: that is the module of the tag, name and note commands
        facts += [("tags", " ".join(own.tags) or "-"), ("name", own.name or "-")]
        note = own.note
    except NormcompressError as exc:
        err.print(f"tags: {one_line(exc)}")
    width = max((len(key) for key, _ in facts), default=0)
    for key, value in facts:
        out.print(f"  {key:<{width}}  {one_line(value)}")
    if note:
        out.print(Text("  note\n" + "\n".join(f"    {line}" for line in printable(note).splitlines())))
    records = run.metrics()
    if records:
        headers, rows = epoch_table(records)
        out.print(terminal_table(headers, rows))


@app.command("compare", short_help="Final metrics side by side, and a chart of one metric.")
def runs_compare(
    run_ids: RunRefs = None,
    where: Where = None,
    metric: ChartMetric = MetricKey("psnr"),
    log: Annotated[bool, typer.Option("--log", help="Log-scale y axis.")] = False,
    smoothing: Annotated[
        float,
        typer.Option(
            "--smooth",
            metavar="WEIGHT",
            min=0.0,
            max=0.999,
            help="Exponential moving average weight (0 = raw, 0.9 ~ the last 10 points). The raw curve stays, "
            "faint, under the smoothed one.",
        ),
    ] = 0.0,
    width: Annotated[int, typer.Option(metavar="N", min=20, max=1000, help="Chart width in characters.")] = 100,
    height: Annotated[int, typer.Option(metavar="N", min=5, max=500, help="Chart height in characters.")] = 25,
    baseline: Annotated[
        bool,
        typer.Option(
            help="Add a reference of the first run's kind on its data: PCA at its latent size, or for a codec "
            "model PCA quantised for its λ (fitted once per dataset, then read from the run store)."
        ),
    ] = True,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            "-g",
            metavar="KEY",
            help="Draw one curve per group of runs with the same value of KEY (norm, model, lr, seed, any "
            "setting a filter takes): their mean over a band, the number of runs in the legend.",
        ),
    ] = None,
    band: Annotated[
        str,
        typer.Option(
            metavar="BAND", help="The band under a group's mean: minmax (the runs' min and max) or sd (±1 sd)."
        ),
    ] = "minmax",
    paired: Annotated[
        bool,
        typer.Option(
            "--paired",
            help="Test each run against the first on the same validation "
            "images (Wilcoxon signed-rank on per-image PSNR; loads the models).",
        ),
    ] = False,
    data_dir: DataDir = Path("data"),
    runs_dir: RunsDir = None,
) -> None:
    """Final metrics side by side, and a terminal chart of one metric per epoch (the training loss per step).

    Names every configuration difference between the runs beyond norm and seed, since a difference in
    the table may come from any of them.
    """
    grouping = api.grouping(group_by, band)  # checked before anything is read
    runs_store = store(runs_dir)
    refs = _chosen(runs_store, run_ids, where, "compare") or []
    result = api.compare_runs(runs_store, refs, baseline, paired, str(data_dir), notice)
    for info in result.damaged:
        err.print(f"{info.id} is damaged ({one_line(info.problem)}); it is left out of the table and the chart")
    if not result.infos:
        raise StoreError("nothing to compare: every run named is damaged")
    for key, values in result.differences.items():
        err.print(f"warning: the runs differ in {key} ({one_line(', '.join(values))}), not only in norm and seed")
    reference = result.reference
    labels = [i.label for i in result.infos] + ([reference.label] if reference else [])
    rows = []
    for key, m in ALL_METRICS.items():
        values = [i.metrics.get(key) for i in result.infos]
        known = [v for v in values if v is not None]
        if not known:
            continue  # a metric none of these runs has (MS-SSIM on 32-pixel images)
        if reference:
            values.append(reference.metrics.get(key))
        rows.append([m.label, *figures(values)])
    # No run is marked best: one seed each cannot say which norm is better (docs/looking-at-runs.md).
    out.print(
        "final validation metrics, one run each "
        + (
            "(the tests below are image by image on these models, not across seeds)\n"
            if result.paired
            else "(untested: --paired tests PSNR image by image; a study gives mean ± sd over seeds)\n"
        )
    )
    out.print(terminal_table(["metric", *labels], rows))
    if result.paired:
        out.print("\n" + "\n".join(result.paired))
    line = (
        (reference.label, reference.metrics[metric.value]) if reference and metric.value in reference.metrics else None
    )
    runs = list(zip(result.runs, result.infos, strict=True))
    out.print(chart_text(runs, metric.value, log, width, height, smoothing, line, grouping))


def _chosen(
    runs_store: RunStore, run_ids: list[str] | None, where: str | None, verb: str, required: bool = True
) -> list[str] | None:
    """The runs named, or (--where) every run of the store that holds the terms, oldest first; for neither,
    a usage error where the command needs runs (`required`), else None."""
    if run_ids and where is not None:
        raise UsageError(f"name the runs to {verb} or give --where TERMS, not both")
    if where is None:
        if not run_ids and required:
            raise UsageError(f"name the runs to {verb} (ids, or unique prefixes or suffixes), or give --where TERMS")
        return run_ids or None
    every = runs_store.infos()
    chosen = api.RunFilter.parse(where)
    matching = [i.id for i in every if chosen.matches(i)]
    if not matching:
        raise StoreError(
            f"none of the {count(len(every), 'run')} in {one_line(runs_store.root)} holds {one_line(where)}"
        )
    return matching


@app.command("diff", short_help="Two runs side by side: where they differ (--all: all).")
def runs_diff(
    first: RunRef,
    second: Annotated[str, typer.Argument(metavar="OTHER", help="The run to set beside the first.")],
    every: Annotated[bool, typer.Option("--all", help="Also the keys where the two runs agree.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: every key with both values.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Two runs side by side: every setting, fact and final metric where they differ (--all: all of them)."""
    runs = store(runs_dir)
    a, b = runs.get(first).info(), runs.get(second).info()
    rows = api.diff_runs(a, b)
    if as_json:
        payload = {
            "runs": [a.id, b.id],
            "keys": [{"key": r.key, "values": list(r.values), "differs": r.differs} for r in rows],
        }
        out.print_json(json.dumps(payload), ensure_ascii=True)
        return
    shown = [r for r in rows if every or r.differs]
    differing = sum(r.differs for r in rows)
    err.print(f"{differing} of {len(rows)} keys differ" + ("" if every else " (--all shows the others)"))
    if shown:
        table = [[("≠ " if r.differs else "  ") + r.key, one_line(r.values[0]), one_line(r.values[1])] for r in shown]
        out.print(side_by_side(["key", one_line(a.label), one_line(b.label)], table))


@app.command("export", short_help="Runs' settings and metrics as CSV, JSON or TensorBoard.")
def runs_export(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="OUTPUT",
            help="Output file (a folder for --format tensorboard): .csv is a table of one row per run and "
            "epoch, .json has every step's loss too.",
        ),
    ],
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="RUN", help="The runs to export (default: every run, or those --where keeps)."),
    ] = None,
    where: Where = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="table (CSV, a row per run and epoch), json, csv (one long table: run, name, step, epoch, "
            "time_s, metric, value, for pandas and trackio) or tensorboard (a folder per run of event files: "
            "every scalar, the settings as hyperparameters, the reconstructions). Default: from the suffix.",
        ),
    ] = None,
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Export runs' configurations and metrics, for a spreadsheet, a notebook or another tracker.

    The output must be outside the run store; an existing file (or run folder) is replaced only with
    --force. Damaged runs are in the table and JSON with the reason, and left out of the others."""
    runs_store = store(runs_dir)
    if not path.exists() and _names_a_run(runs_store, str(path)):  # `runs export RUN OTHER` read RUN as the output
        raise UsageError(
            f"{one_line(path)} names a run of the store, but the first argument is the output: "
            f"runs export OUTPUT [RUN]..., e.g. runs export runs.csv {one_line(path)}"
        )
    refs = _chosen(runs_store, run_ids, where, "export", required=False)
    runs, rows = api.export_runs(runs_store, path, force, fmt=fmt, refs=refs)
    what = "epoch row" if fmt in (None, "table", "json") else "scalar"
    err.print(f"exported {count(runs, 'run')} ({count(rows, what)}) to {one_line(path)}")


# Tags, a name and a note: the user's own words about a run (annotations.py), listed here in the order of the help.
app.command("tag", short_help="Tag a run with words of your own, to filter by.")(annotations.runs_tag)
app.command("name", short_help="Name a run: legends and tables show the name.")(annotations.runs_name)
app.command("note", short_help="Keep a note with a run: what you tried, what you saw.")(annotations.runs_note)


@app.command("rm")
def runs_rm(
    run_ids: RunRefs = None,
    where: Where = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Remove runs from the store (asks first, naming each). Only runs inside the store can be named; never
    a path. --where status=failed removes every failed run."""
    runs_store = store(runs_dir)
    refs = _chosen(runs_store, run_ids, where, "remove") or []
    runs = [runs_store.get(r) for r in refs]
    if not yes and not typer.confirm(f"remove {count(len(runs), 'run')}: {', '.join(r.id for r in runs)}?"):
        raise typer.Exit(1)
    api.remove_runs(runs_store, runs, lambda run: err.print(f"removed {run.id}"))


def _names_a_run(runs_store, text: str) -> bool:
    try:
        runs_store.get(text)
    except NormcompressError:  # no run, several, or not a run reference at all (a path)
        return False
    return True
