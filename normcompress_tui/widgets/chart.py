"""The loss chart: the current run live, and the curves of the runs chosen for overlay (textual-plotext).

The legend is a line of text under the plot, not inside it: inside, a few overlays took most of the
plot's rows at 80x24. It breaks between entries, and scrolls past four lines. Under NO_COLOR each run gets its own marker.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from rich.text import Text
from textual.widgets import Checkbox, Label, Select, Static
from textual_plotext import PlotextPlot

from normcompress.charts import (SMOOTHING_CHOICES, X_AXES, LegendEntry, draw_curves, epoch_mapping, series_look,
                                 step_positions, step_series, time_unit)
from normcompress.text import count, printable

from ..lines import pack_lines
from normcompress.metrics import ALL_METRICS, MS_SSIM_MIN_SIZE

if TYPE_CHECKING:  # the baseline's numbers arrive from a worker; its module (torch) is not needed here
    from normcompress.baseline import Baseline

REDRAW_INTERVAL_S = 1.0  # the shortest time between two redraws for training progress
REDRAW_SHARE = 0.01  # ... lengthened so that plotting takes at most this share of the time (turning the plot
# into strips costs about as much again); the UI shares two cores with training
REDRAW_LONGEST_S = 5.0
SHORT_CHART_ROWS = 16  # below this the x axis title is left out, a row more for the data
ZOOM_LAST = (None, 10, 5, 2, 1)  # z steps through: every epoch, then the last N


class SafePlot(PlotextPlot):
    """A PlotextPlot that shows a line of text instead of crashing the app when plotext fails on odd data,
    and remembers how long its last drawing took (the chart spaces its redraws by it)."""

    render_s = 0.0

    def render(self):
        started = time.perf_counter()
        try:
            return super().render()
        except Exception as exc:  # plotext raises IndexError/ValueError on some degenerate inputs
            return f"the chart cannot be drawn for this data ({type(exc).__name__}); try another metric or scale"
        finally:
            self.render_s = time.perf_counter() - started


class LossChart(Vertical):
    BORDER_TITLE = "Chart"

    def __init__(self) -> None:
        super().__init__(id="chart")
        self.current_label = ""
        self.current_steps: list[tuple[float, float]] = []  # (fractional epoch, that step's training loss)
        self.current_epochs: list[dict] = []
        self.overlays: dict[str, tuple[str, list[dict]]] = {}  # run id -> (label, per-epoch records)
        self.reference: Baseline | None = None  # PCA on the first charted run's data: a dashed line
        self.slots: dict[str, int] = {}  # run id -> palette slot; 0 is the live run's, overlays keep theirs
        self.x_axis = "epoch"
        self.zoom: tuple[float, float] | int | None = None  # epochs (first, last), the last N, or all
        self._live_clock: list[tuple[float, float]] = []  # (fractional epoch, seconds since the live run began)
        self._live_steps: int | None = None  # the live run's steps per epoch
        self._live_started = 0.0
        self._dirty = True
        self._drawn_at = 0.0  # when the chart was last redrawn (time.monotonic)
        self._legend_lines = -1
        self._legend_most = -1
        self._draw_s = 0.0  # how long preparing that redraw took

    def compose(self) -> ComposeResult:
        with Horizontal(id="chart-bar"):
            yield Label("Metric ")
            yield Select([(m.label, k) for k, m in ALL_METRICS.items()], value="loss", allow_blank=False,
                         id="metric", compact=True)
            yield Select([("raw" if w == 0 else f"smooth {w:g}", w) for w in SMOOTHING_CHOICES], value=0.0,
                         allow_blank=False, id="smoothing", compact=True)
            yield Checkbox("log", id="log", compact=True)
        yield SafePlot(id="plot")
        yield Static(id="legend")

    @property
    def metric(self) -> str:
        return str(self.query_one("#metric", Select).value)

    @property
    def smoothing(self) -> float:
        return float(self.query_one("#smoothing", Select).value)

    @property
    def log_scale(self) -> bool:
        return self.query_one("#log", Checkbox).value

    def next_metric(self) -> None:
        select = self.query_one("#metric", Select)
        keys = list(ALL_METRICS)  # the options of the Select, built from the same registry in compose
        select.value = keys[(keys.index(select.value) + 1) % len(keys)]

    def next_smoothing(self) -> None:
        select = self.query_one("#smoothing", Select)
        select.value = SMOOTHING_CHOICES[(SMOOTHING_CHOICES.index(select.value) + 1) % len(SMOOTHING_CHOICES)]

    def toggle_log(self) -> None:
        self.query_one("#log", Checkbox).toggle()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.changed(now=True)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.changed(now=True)

    def on_resize(self) -> None:
        self.changed(now=True)

    def changed(self, now: bool = False) -> None:
        """Mark the chart for a redraw: at the app's tick for training progress (at most one redraw a
        second, so the chart never slows training), at once for what the user did (a key, an overlay)."""
        self._dirty = True
        if now:
            self.call_later(self._redraw_if_dirty)

    def start_run(self, label: str, earlier: list[dict] | None = None) -> None:
        """A new live run; a resumed one brings the records of its epochs before the stop."""
        earlier = earlier or []
        steps = step_series(label, earlier) if earlier else None
        self.current_label, self.current_epochs = label, list(earlier)
        self.current_steps = list(zip(steps[1], steps[2])) if steps else []
        seconds = sum(r.get("epoch_time_s") or 0.0 for r in earlier)
        self._live_clock = [(0.0, 0.0)] + ([(float(len(earlier)), seconds)] if earlier else [])
        self._live_started = time.monotonic() - seconds
        self.changed()

    def add_steps(self, epoch: int, step: int, steps: int, losses: list[float]) -> None:
        """Each step's loss, the last of them at `step` of `steps` in (1-based) `epoch`."""
        self.current_steps += zip(step_positions(epoch, step - len(losses), len(losses), steps), losses)
        self._live_clock.append((epoch - 1 + step / steps, time.monotonic() - self._live_started))
        self._live_steps = steps
        self.changed()

    # -- the view: x axis and zoom, kept between launches --------------------------------------------
    def view_state(self) -> dict:
        return {"metric": self.metric, "smoothing": self.smoothing, "log": self.log_scale, "x_axis": self.x_axis,
                "zoom": zoom_spec(self.zoom)}

    def restore_view(self, state: dict) -> None:
        """Take back a saved view; a value that is not one the chart offers is left at its default."""
        if state.get("metric") in ALL_METRICS:
            self.query_one("#metric", Select).value = state["metric"]
        if state.get("smoothing") in SMOOTHING_CHOICES and not isinstance(state["smoothing"], bool):
            self.query_one("#smoothing", Select).value = float(state["smoothing"])
        if isinstance(state.get("log"), bool):
            self.query_one("#log", Checkbox).value = state["log"]
        if state.get("x_axis") in X_AXES:
            self.x_axis = state["x_axis"]
        if isinstance(state.get("zoom"), str):
            try:
                self.zoom = parse_zoom(state["zoom"][:40])
            except ValueError:
                pass
        self.changed(now=True)

    def next_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.changed(now=True)

    def next_zoom(self) -> None:
        """Every epoch, then the last 10, 5, 2 and 1 epochs (of the longest run on the chart)."""
        position = ZOOM_LAST.index(self.zoom) if self.zoom in ZOOM_LAST else 0
        self.set_zoom(ZOOM_LAST[(position + 1) % len(ZOOM_LAST)])

    def set_zoom(self, zoom: tuple[float, float] | int | None) -> None:
        self.zoom = zoom
        self.changed(now=True)

    def zoom_text(self) -> str:
        if self.zoom is None:
            return "all epochs"
        if isinstance(self.zoom, int):
            return f"last {count(self.zoom, 'epoch')}"
        return f"epochs {self.zoom[0]:g}-{self.zoom[1]:g}"

    def title_note(self) -> str:
        """What the chart's title (and an export's) adds to the metric's name: the zoom, when there is one."""
        return "" if self.zoom is None else f", {self.zoom_text()}"

    def view(self) -> tuple[list[tuple[str, list[float], list[float]]], list[int], str]:
        """What is drawn: series() cut to the zoom and moved onto the x axis, their palette slots, and the
        axis title. A run without what the axis needs (no recorded times) is left out of a time axis."""
        series, slots = self.series(), self.series_slots()
        ends = [max(xs) for _, xs, _ in series if xs]
        if isinstance(self.zoom, int) and ends:
            window = (max(ends) - self.zoom, max(ends))
        elif isinstance(self.zoom, tuple):
            window = (self.zoom[0] - 1, self.zoom[1])  # epochs 3-5: from the start of 3 to the end of 5
        else:
            window = (-math.inf, math.inf)
        mappings = self._mappings()
        shown, shown_slots = [], []
        for (label, xs, ys), slot, mapping in zip(series, slots, mappings):
            if mapping is None:
                continue
            points = [(mapping(x), y) for x, y in zip(xs, ys) if window[0] < x <= window[1]]
            shown.append((label, [p[0] for p in points], [p[1] for p in points]))
            shown_slots.append(slot)
        title = self.x_axis
        if self.x_axis == "time":
            longest = max((max(xs) for _, xs, _ in shown if xs), default=0.0)
            unit, seconds = time_unit(longest)
            shown = [(label, [x / seconds for x in xs], ys) for label, xs, ys in shown]
            title = f"training time ({unit})"
        return shown, shown_slots, title

    def _mappings(self) -> list:
        """For each series of series(), its function from epochs to the x axis (None: cannot be shown)."""
        live = bool((self.metric == "loss" and self.current_steps) or self.current_epochs)
        mappings = []
        if live:
            if self.x_axis == "time":  # the wall clock as the steps arrived (epoch records lag a whole epoch)
                mappings.append(_interpolation(sorted(self._live_clock)))
            else:
                mappings.append(epoch_mapping(self.current_epochs, self.x_axis, self._live_steps))
        mappings += [epoch_mapping(records, self.x_axis) for _, records in self.overlays.values()]
        return mappings

    def add_epoch(self, record: dict) -> None:
        self.current_epochs.append(record)
        self.changed()

    def set_overlay(self, run_id: str, label: str, records: list[dict] | None) -> None:
        if records is None:
            self.overlays.pop(run_id, None)
            self.slots.pop(run_id, None)
        else:
            self.overlays[run_id] = (label, records)
            taken = set(self.slots.values())
            self.slots.setdefault(run_id, next(n for n in range(1, len(taken) + 2) if n not in taken))
        self.changed(now=True)

    def set_reference(self, baseline: Baseline) -> None:
        self.reference = baseline
        self.changed(now=True)

    def reference_line(self) -> tuple[str, float] | None:
        """The baseline's value of the chart's metric (none for the training loss, which is in each run's norm)."""
        if self.reference is None or self.metric not in self.reference.metrics:
            return None
        return f"{self.reference.label} on {self.reference.data}", self.reference.metrics[self.metric]

    def series(self) -> list[tuple[str, list[float], list[float]]]:
        """What the chart shows now: (label, x, y) per series, the current run first."""
        key = self.metric
        result = []
        if key == "loss" and self.current_steps:
            xs, ys = zip(*self.current_steps)
            result.append((f"{self.current_label} (live)", list(xs), list(ys)))
        elif self.current_epochs:
            result.append(self._per_epoch(f"{self.current_label} (live)", self.current_epochs, key))
        for label, records in self.overlays.values():
            steps = step_series(label, records) if key == "loss" else None
            result.append(steps or self._per_epoch(label, records, key))
        return result

    def series_slots(self) -> list[int]:
        """Each series' palette slot, in the order of series(): the live run 0, each overlay its own."""
        live = [0] if (self.metric == "loss" and self.current_steps) or self.current_epochs else []
        return live + [self.slots[run_id] for run_id in self.overlays]

    def swatch(self, run_id: str) -> Text:
        """The overlay mark of a run in the runs table: a dot in its curve's colour, or its marker without colour."""
        strong, _, marker = series_look(self.slots[run_id], colour=not os.environ.get("NO_COLOR"))
        return Text("●", style="rgb({},{},{})".format(*strong)) if marker == "braille" else Text(marker)

    @staticmethod
    def _per_epoch(label: str, records: list[dict], key: str) -> tuple[str, list[float], list[float]]:
        """A run's per-epoch values of one metric; epochs without it (MS-SSIM on small images) are left out."""
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        return label, [p[0] for p in points], [p[1] for p in points]

    def redraw_interval(self) -> float:
        """Seconds between redraws for training progress: at least REDRAW_INTERVAL_S, longer when drawing
        is slow, so that drawing stays under REDRAW_SHARE of the time."""
        spent = self._draw_s + self.query_one(SafePlot).render_s
        return min(max(REDRAW_INTERVAL_S, spent / REDRAW_SHARE), REDRAW_LONGEST_S)

    def redraw_when_due(self, early_s: float) -> None:
        """Called at the app's tick: redraw for training progress when the last redraw is old enough, or
        will be within early_s (ticks come a little late or early, and a miss would double the wait)."""
        if self._dirty and time.monotonic() - self._drawn_at >= self.redraw_interval() - early_s:
            self._redraw_if_dirty()

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            started = time.perf_counter()
            self.redraw()
            self._drawn_at, self._draw_s = time.monotonic(), time.perf_counter() - started

    def redraw(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        series, slots, x_title = self.view()
        title = ALL_METRICS[self.metric].label + self.title_note()
        if not any(xs for _, xs, _ in series) and (self.current_epochs or self.overlays):
            # Runs are on the chart but none has this metric: say why instead of an empty frame.
            title += (f": not measured on images under {MS_SSIM_MIN_SIZE} px" if self.metric == "ms_ssim"
                      else ": nothing in this zoom" if self.zoom is not None and any(xs for _, xs, _ in self.series())
                      else ": no values yet")
        short = self.content_region.height < SHORT_CHART_ROWS
        entries = draw_curves(plt, series, title, self.log_scale, self.smoothing, width=max(plot.size.width, 20),
                              reference=self.reference_line(), legend=False, colour=not os.environ.get("NO_COLOR"),
                              slots=slots, x_axis=self.x_axis, x_title=x_title)
        if short:  # every row for the data: the ticks say what the axis counts (epochs are whole numbers)
            plt.xlabel("")
        legend = self.query_one("#legend", Static)
        text = legend_text(entries, max(legend.content_region.width or plot.size.width, 20))
        lines = text.plain.count("\n")
        most = legend_rows(self.content_region.height)
        if most != self._legend_most:
            legend.styles.max_height = self._legend_most = most  # the rest scrolls: the plot keeps its rows
        legend.update(text, layout=lines != self._legend_lines)  # a layout pass costs training time
        self._legend_lines = lines
        plot.refresh()


def parse_zoom(text: str) -> tuple[float, float] | int | None:
    """What the zoom prompt takes: `3-7` (epochs 3 to 7), `5` (the last 5 epochs), or nothing (all);
    ValueError with a sentence otherwise."""
    text = text.strip()
    if not text:
        return None
    first, dash, last = text.partition("-")
    try:
        if not dash:
            last_epochs = int(text)
            if last_epochs >= 1:
                return last_epochs
        elif 1 <= float(first) <= float(last):
            return float(first), float(last)
    except ValueError:
        pass
    raise ValueError(f"{printable(text, keep_newlines=False)!r} is not a zoom: give 3-7 (epochs 3 to 7), "
                     f"5 (the last 5 epochs) or nothing (every epoch)")


def zoom_spec(zoom: tuple[float, float] | int | None) -> str:
    """A zoom as the prompt takes it (the inverse of parse_zoom)."""
    if zoom is None:
        return ""
    return str(zoom) if isinstance(zoom, int) else f"{zoom[0]:g}-{zoom[1]:g}"


def _interpolation(points: list[tuple[float, float]]):
    """The function through `points` (sorted by x), straight between them, level past either end."""
    xs = [p[0] for p in points]

    def at(x: float) -> float:
        i = bisect.bisect_left(xs, x)
        if i == 0:
            return points[0][1]
        if i == len(points):
            return points[-1][1]
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        return y1 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    return at


def legend_rows(chart_rows: int) -> int:
    """How many rows the legend may take (it scrolls past them): a quarter of the chart's, 1 to 4."""
    return min(max(chart_rows // 4, 1), 4)


def legend_text(entries: list[LegendEntry], width: int) -> Text:
    """One entry per series, in its colour (or with its marker), packed into lines of `width` cells:
    a line breaks between entries, never inside one (an entry wider than the line is cut with …)."""
    parts = []
    for entry in entries:
        label = printable(entry.label, keep_newlines=False)
        if len(entry.symbol) + 1 + len(label) > width:
            label = label[: max(width - len(entry.symbol) - 2, 1)] + "…"
        style = "rgb({},{},{})".format(*entry.colour) if entry.colour else ""
        parts.append(Text.assemble((entry.symbol, style), " " + label))
    return pack_lines(parts, width, "   ")
