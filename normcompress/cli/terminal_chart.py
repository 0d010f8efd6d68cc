"""A terminal chart of runs' curves for `runs compare`: plotext, in colour (a marker per run under
NO_COLOR), one curve per run or a mean over a band per group, the legend under the plot as the app draws it."""

import os

import plotext
from rich.text import Text

from .. import api
from ..charts import draw_curves, group_series, legend_text, step_series
from ..errors import NormcompressError
from ..metrics import ALL_METRICS


def chart_text(
    runs,
    metric: str,
    log: bool,
    width: int,
    height: int,
    smoothing: float = 0.0,
    reference: tuple[str, float] | None = None,
    grouping: tuple[str, str] | None = None,
) -> Text:
    """A plotext chart (in colour, one per run, or per group: `grouping` is (key, band)) of one metric per
    epoch, or the loss per step, with the legend under it as the app draws it."""
    series, groups = [], []
    for run, info in runs:
        try:
            records = [r for r in run.metrics() if r.get(metric) is not None]
        except NormcompressError:
            continue  # damaged since it was listed
        steps = step_series(info.label, records) if metric == "loss" else None
        series.append(steps or (info.label, [r["epoch"] for r in records], [r[metric] for r in records]))
        groups.append(api.group_of(info, grouping[0]) if grouping else "")
    slots = None
    if grouping:
        series, slots = group_series(series, groups, grouping[1])
    plotext.clear_figure()
    plotext.plotsize(width, height)
    plotext.theme("clear")
    colour = not os.environ.get("NO_COLOR")
    entries = draw_curves(
        plotext,
        series,
        ALL_METRICS[metric].label,
        log,
        smoothing,
        width,
        reference,
        colour=colour,
        legend=False,
        slots=slots,
    )  # without colour, a marker per run
    return Text.from_ansi(plotext.build()).append("\n").append_text(legend_text(entries, width))  # never on the data
