"""What the app writes into the store's exports/ folder: the chart's view (PNG and SVG), every run as CSV,
and screenshots. One folder, one naming, one way to say it failed; the work runs off the UI thread."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from normcompress import api
from normcompress.errors import NormcompressError
from normcompress.files import atomic_write
from normcompress.runs import RunStore
from normcompress.text import count

if TYPE_CHECKING:
    from textual.app import App

    from .widgets.chart import LossChart

EXPORTS = "exports"


def folder(store: RunStore) -> Path:
    """The store's exports/ folder: always writable where runs are (Textual's default for screenshots,
    ~/Downloads, does not exist on many servers), and refused when something other than a real folder is
    there (a link would send the files elsewhere)."""
    return store.folder(EXPORTS)


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def screenshot(app: App, store: RunStore, filename: str | None = None, path: str | None = None) -> None:
    """The screen as SVG, written by rename like every file of the store."""
    try:
        where = Path(path) if path else folder(store)
        target = where / (filename or f"normcompress_{datetime.now():%Y-%m-%dT%H_%M_%S_%f}.svg")
        atomic_write(target, app.export_screenshot().encode())
    except NormcompressError as exc:
        app.notify(f"cannot save a screenshot: {exc}", severity="error")
        return
    app.notify(f"screenshot saved to {target}", title="Screenshot")


def runs_csv(app: App, store: RunStore):
    """Every run's settings and per-epoch metrics as one CSV (the CLI's `runs export`), in a worker."""

    def work() -> None:
        try:
            path = folder(store) / f"runs-{stamp()}.csv"
            runs, rows = api.export_runs(store, path, inside_store=True)
        except NormcompressError as exc:
            app.call_from_thread(app.notify, f"cannot export the runs: {exc}", severity="error")
            return
        app.call_from_thread(
            app.notify, f"exported {count(runs, 'run')} ({count(rows, 'epoch row')}) to {path}", timeout=10
        )

    return app.run_worker(work, thread=True, group="export", exit_on_error=False)


def chart(app: App, store: RunStore, loss_chart: LossChart):
    """The chart's current view (the same series, metric, scale, smoothing and zoom) as PNG and SVG, drawn
    like the study's figures, in a worker (matplotlib takes a second); None when nothing is on the chart."""
    model = loss_chart.model
    series, slots, x_title = model.view()
    shown = [(s, slot) for s, slot in zip(series, slots, strict=True) if s[1]]
    if not shown:
        app.notify("nothing on the chart to export: start a run or overlay one (space)", severity="warning")
        return None
    args = (
        [s for s, _ in shown],
        [slot for _, slot in shown],
        model.metric,
        model.log_scale,
        model.smoothing,
        model.reference_line(),
        x_title,
        model.title_note(),
    )

    def work() -> None:
        try:
            paths = api.export_chart(folder(store), f"chart-{stamp()}-{model.metric}", *args)
        except NormcompressError as exc:
            app.call_from_thread(app.notify, f"cannot export the chart: {exc}", severity="error")
            return
        app.call_from_thread(app.notify, "chart exported: " + ", ".join(str(p) for p in paths), timeout=10)

    return app.run_worker(work, thread=True, group="export", exit_on_error=False)
