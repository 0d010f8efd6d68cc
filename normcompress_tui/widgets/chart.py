"""The loss chart: the current run live, and the curves of the runs chosen for overlay (textual-plotext).

What is shown is computed by a ChartModel (chart_model.py); this widget holds one, keeps its metric,
smoothing and log scale in step with the controls above the plot, and draws it. The legend is a line
of text under the plot, not inside it: inside, a few overlays took most of the plot's rows at 80x24. It
breaks between entries, and past its rows says how many more curves it does not name. Under NO_COLOR
each run gets its own marker.

The chart can show one, two or four metrics side by side (`p`), sharing the runs, the x axis, the zoom
and the value cursor (`c`, then the arrow keys), whose values are listed under the plots, one line per
panel. Where the terminal is too small for the panels asked for, fewer are drawn and the title says so.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Checkbox, Label, Select, Static
from textual_plotext import PlotextPlot

from normcompress.charts import (
    BANDS,
    SMOOTHING_CHOICES,
    X_AXES,
    LegendEntry,
    draw_curves,
    legend_text,
    series_look,
)
from normcompress.metrics import ALL_METRICS, MS_SSIM_MIN_SIZE
from normcompress.runs.where import KEYS
from normcompress.text import pack_lines, printable

from .chart_model import CURSOR_LEAP, PANELS, ChartModel, parse_zoom

if TYPE_CHECKING:
    from normcompress.baseline import Baseline

REDRAW_INTERVAL_S = 1.0  # the shortest time between two redraws for training progress
REDRAW_SHARE = 0.01  # ... lengthened so that plotting takes at most this share of the time (turning the plot
# into strips costs about as much again); the UI shares two cores with training
REDRAW_LONGEST_S = 5.0
SHORT_CHART_ROWS = 16  # below this the x axis title is left out, a row more for the data
PANEL_MIN = (36, 9)  # the fewest columns and rows a panel needs to be read
CURSOR_COLOUR = (220, 220, 220)


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


class LossChart(Vertical, can_focus=True):
    BORDER_TITLE = "Chart"
    BINDINGS = [
        Binding("left", "cursor(-1)", "Cursor left", show=False),
        Binding("right", "cursor(1)", "Cursor right", show=False),
        Binding("shift+left", f"cursor(-{CURSOR_LEAP})", show=False),
        Binding("shift+right", f"cursor({CURSOR_LEAP})", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="chart")
        self.model = ChartModel()
        self._dirty = True
        self._drawn_at = 0.0  # when the chart was last redrawn (time.monotonic)
        self._legend_lines = -1
        self._legend_most = -1
        self._draw_s = 0.0  # how long preparing that redraw took
        self._grid: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="chart-bar"):
            yield Label("Metric ")
            yield Select(
                [(m.label, k) for k, m in ALL_METRICS.items()],
                value="loss",
                allow_blank=False,
                id="metric",
                compact=True,
            )
            yield Select(
                [("raw" if w == 0 else f"smooth {w:g}", w) for w in SMOOTHING_CHOICES],
                value=0.0,
                allow_blank=False,
                id="smoothing",
                compact=True,
            )
            yield Checkbox("log", id="log", compact=True)
        with Grid(id="plots"):
            for panel in range(max(PANELS)):
                yield SafePlot(id="plot" if panel == 0 else f"plot-{panel + 1}")
        yield Static(id="cursor-line")
        yield Static(id="legend")

    # -- the controls above the plot, in step with the model ---------------------------------------------
    @property
    def metric(self) -> str:
        return self.model.metric

    @property
    def smoothing(self) -> float:
        return self.model.smoothing

    @property
    def log_scale(self) -> bool:
        return self.model.log_scale

    def next_metric(self) -> None:
        keys = list(ALL_METRICS)  # the options of the Select, built from the same registry in compose
        self.query_one("#metric", Select).value = keys[(keys.index(self.metric) + 1) % len(keys)]

    def next_smoothing(self) -> None:
        position = SMOOTHING_CHOICES.index(self.smoothing)
        self.query_one("#smoothing", Select).value = SMOOTHING_CHOICES[(position + 1) % len(SMOOTHING_CHOICES)]

    def toggle_log(self) -> None:
        self.query_one("#log", Checkbox).toggle()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "metric":
            self.model.metric = str(event.value)
        elif event.select.id == "smoothing":
            self.model.smoothing = float(event.value)
        self.changed(now=True)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.model.log_scale = event.value
        self.changed(now=True)

    def on_resize(self) -> None:
        self.changed(now=True)

    def changed(self, now: bool = False) -> None:
        """Mark the chart for a redraw: at the app's tick for training progress (at most one redraw a
        second, so the chart never slows training), at once for what the user did (a key, an overlay)."""
        self._dirty = True
        if now:
            self.call_later(self._redraw_if_dirty)

    # -- what the app hands over ----------------------------------------------------------------------
    def start_run(self, label: str, earlier: list[dict] | None = None, run_id: str | None = None) -> None:
        self.model.start_run(label, earlier, run_id)
        self.changed()

    def add_steps(self, epoch: int, step: int, steps: int, losses: list[float]) -> None:
        self.model.add_steps(epoch, step, steps, losses)
        self.changed()

    def add_epoch(self, record: dict) -> None:
        self.model.add_epoch(record)
        self.changed()

    def set_overlay(
        self, run_id: str, label: str, records: list[dict] | None, groups: dict[str, str] | None = None
    ) -> None:
        self.model.set_overlay(run_id, label, records, groups)
        self.changed(now=True)

    def next_group(self) -> None:
        self.model.next_group()
        self.changed(now=True)

    def next_band(self) -> None:
        self.model.next_band()
        self.changed(now=True)

    def set_reference(self, baseline: Baseline) -> None:
        self.model.reference = baseline
        self.changed(now=True)

    def next_x_axis(self) -> None:
        self.model.next_x_axis()
        self.changed(now=True)

    def next_zoom(self) -> None:
        self.model.next_zoom()
        self.changed(now=True)

    def set_zoom(self, zoom: tuple[float, float] | int | None) -> None:
        self.model.set_zoom(zoom)
        self.changed(now=True)

    def next_panels(self) -> None:
        self.model.next_panels()
        self.changed(now=True)

    def action_cursor(self, steps: int) -> None:
        self.model.move_cursor(steps)
        self.changed(now=True)

    def show_cursor(self) -> None:
        self.model.move_cursor(0)
        self.changed(now=True)

    def hide_cursor(self) -> None:
        self.model.hide_cursor()
        self.changed(now=True)

    def fitting_panels(self) -> int:
        """How many of the panels asked for fit the chart as it is now (each needs PANEL_MIN cells)."""
        region = self.query_one("#plots").content_region
        width, height = region.width or self.content_region.width, region.height or self.content_region.height
        across, down = width // PANEL_MIN[0], height // PANEL_MIN[1]
        fitting = [n for n in PANELS if n <= self.model.panels and (n == 1 or (across >= 2 and down >= n // 2))]
        return max(fitting)

    def restore_view(self, state: dict) -> None:
        """Take back a saved view; a value that is not one the chart offers is left at its default."""
        if state.get("metric") in ALL_METRICS:
            self.query_one("#metric", Select).value = self.model.metric = state["metric"]
        if state.get("smoothing") in SMOOTHING_CHOICES:
            self.query_one("#smoothing", Select).value = self.model.smoothing = float(state["smoothing"])
        if "log" in state:
            self.query_one("#log", Checkbox).value = self.model.log_scale = state["log"]
        if state.get("x_axis") in X_AXES:
            self.model.x_axis = state["x_axis"]
        if "zoom" in state:
            try:
                self.model.zoom = parse_zoom(state["zoom"])
            except ValueError:
                pass
        if isinstance(state.get("group_by"), str) and state["group_by"] in KEYS:
            self.model.group_by = state["group_by"]
        if state.get("band") in BANDS:
            self.model.band = state["band"]
        if state.get("panels") in PANELS:
            self.model.panels = int(state["panels"])
        self.changed(now=True)

    def swatch(self, run_id: str) -> Text:
        """The overlay mark of a run in the runs table: a dot in its curve's (or group's) colour, or its
        marker without colour."""
        strong, _, marker = series_look(self.model.mark_slot(run_id), colour=not os.environ.get("NO_COLOR"))
        return Text("●", style="rgb({},{},{})".format(*strong)) if marker == "braille" else Text(marker)

    # -- drawing ---------------------------------------------------------------------------------------
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
        model = self.model
        shown = self.fitting_panels()
        grid = (1, 1) if shown == 1 else (2, shown // 2)
        plots = list(self.query(SafePlot))
        if grid != self._grid:  # a layout pass only when the panels change
            self._grid = grid
            area = self.query_one("#plots", Grid)
            area.styles.grid_size_columns, area.styles.grid_size_rows = grid
            for panel, plot in enumerate(plots):
                plot.display = panel < shown
        metrics = model.panel_metrics(shown)
        short = self.content_region.height < SHORT_CHART_ROWS * (2 if shown == 4 else 1)
        entries: list[LegendEntry] = []
        for panel, metric in enumerate(metrics):
            note = f" ({shown} of {model.panels} panels fit: a larger terminal shows them all)" if panel == 0 else ""
            drawn = self._draw_panel(plots[panel], metric, short, note if shown < model.panels else "")
            entries = entries or drawn
        self._show_cursor_values(metrics)
        legend = self.query_one("#legend", Static)
        most = legend_rows(self.content_region.height)
        text = legend_text(entries, max(legend.content_region.width or plots[0].size.width, 20), most)
        lines = text.plain.count("\n")
        if most != self._legend_most:
            legend.styles.max_height = self._legend_most = most  # the plot keeps its rows
        legend.update(text, layout=lines != self._legend_lines)  # a layout pass costs training time
        self._legend_lines = lines

    def _draw_panel(self, plot: SafePlot, metric: str, short: bool, note: str) -> list[LegendEntry]:
        """One panel: a metric's curves, the reference, the cursor; its legend entries."""
        plt = plot.plt
        plt.clear_data()
        model = self.model
        series, slots, x_title = model.view(metric)
        title = ALL_METRICS[metric].label + model.title_note() + note
        if not any(xs for _, xs, _ in series) and (model.current_epochs or model.overlays):
            # Runs are on the chart but none has this metric: say why instead of an empty frame.
            title += (
                f": not measured on images under {MS_SSIM_MIN_SIZE} px"
                if metric == "ms_ssim"
                else ": nothing in this zoom"
                if model.zoom is not None and any(xs for _, xs, _ in model.series(metric))
                else ": no values yet"
            )
        colour = not os.environ.get("NO_COLOR")
        entries = draw_curves(
            plt,
            series,
            title,
            model.log_scale,
            model.smoothing,
            width=max(plot.size.width, 20),
            reference=model.reference_line(metric),
            legend=False,
            colour=colour,
            slots=slots,
            x_axis=model.x_axis,
            x_title=x_title,
        )
        if model.cursor is not None and any(xs for _, xs, _ in series):
            plt.vline(model.cursor, CURSOR_COLOUR if colour else None)
        if short:  # every row for the data: the ticks say what the axis counts (epochs are whole numbers)
            plt.xlabel("")
        plot.refresh()
        return entries

    def _show_cursor_values(self, metrics: list[str]) -> None:
        """Under the plots, while the cursor is shown: its x, then each series' value there, per panel."""
        line = self.query_one("#cursor-line", Static)
        if self.model.cursor is None:
            line.display = False
            return
        colour = not os.environ.get("NO_COLOR")
        width = max(line.content_region.width or self.content_region.width, 20)
        rows = []
        for metric in metrics:
            parts = [Text(f"{self.model.cursor_text()} · {ALL_METRICS[metric].column}:", style="bold")]
            for label, slot, value in self.model.cursor_values(metric):
                strong, _, marker = series_look(slot, colour)
                symbol = LegendEntry(label, strong if colour else None, marker).symbol
                style = "rgb({},{},{})".format(*strong) if colour else ""
                parts.append(Text.assemble((symbol, style), " " + printable(label, keep_newlines=False) + " ", value))
            rows.append(pack_lines(parts, width, "  "))
        line.update(Text("\n").join(rows))
        line.display = True


def legend_rows(chart_rows: int) -> int:
    """How many rows the legend may take (past them it says how many more): a quarter of the chart's, 1 to 4."""
    return min(max(chart_rows // 4, 1), 4)
