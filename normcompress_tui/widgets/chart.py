"""The loss chart: the current run live, and the curves of the runs chosen for overlay (textual-plotext).

The legend is a line of text under the plot, not inside it: inside, a few overlays took most of the
plot's rows at 80x24. It breaks between entries, and scrolls past four lines. Under NO_COLOR each run gets its own marker.
"""

import os

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from rich.text import Text
from textual.widgets import Checkbox, Label, Select, Static
from textual_plotext import PlotextPlot

from normcompress.baseline import Baseline
from normcompress.charts import (SMOOTHING_CHOICES, LegendEntry, draw_curves, series_look, step_positions,
                                 step_series)
from normcompress.text import printable
from normcompress.metrics import ALL_METRICS, MS_SSIM_MIN_SIZE

REDRAW_INTERVAL_S = 1.0  # redraws are throttled so that the chart never slows training down


class SafePlot(PlotextPlot):
    """A PlotextPlot that shows a line of text instead of crashing the app when plotext fails on odd data."""

    def render(self):
        try:
            return super().render()
        except Exception as exc:  # plotext raises IndexError/ValueError on some degenerate inputs
            return f"the chart cannot be drawn for this data ({type(exc).__name__}); try another metric or scale"


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
        self._dirty = True

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

    def on_mount(self) -> None:
        self.set_interval(REDRAW_INTERVAL_S, self._redraw_if_dirty)

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
        """Mark the chart for a redraw: at the next tick for training progress (at most one redraw a
        second, so the chart never slows training), at once for what the user did (a key, an overlay)."""
        self._dirty = True
        if now:
            self.call_later(self._redraw_if_dirty)

    def start_run(self, label: str) -> None:
        self.current_label, self.current_steps, self.current_epochs = label, [], []
        self.changed()

    def add_steps(self, epoch: int, step: int, steps: int, losses: list[float]) -> None:
        """Each step's loss, the last of them at `step` of `steps` in (1-based) `epoch`."""
        self.current_steps += zip(step_positions(epoch, step - len(losses), len(losses), steps), losses)
        self.changed()

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

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self.redraw()

    def redraw(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        series = self.series()
        title = ALL_METRICS[self.metric].label
        if not any(xs for _, xs, _ in series) and (self.current_epochs or self.overlays):
            # Runs are on the chart but none has this metric: say why instead of an empty frame.
            title += (f": not measured on images under {MS_SSIM_MIN_SIZE} px" if self.metric == "ms_ssim"
                      else ": no values yet")
        entries = draw_curves(plt, series, title, self.log_scale, self.smoothing, width=max(plot.size.width, 20),
                              reference=self.reference_line(), legend=False, colour=not os.environ.get("NO_COLOR"),
                              slots=self.series_slots())
        legend = self.query_one("#legend", Static)
        legend.update(legend_text(entries, max(legend.content_region.width or plot.size.width, 20)))
        plot.refresh()


def legend_text(entries: list[LegendEntry], width: int) -> Text:
    """One entry per series, in its colour (or with its marker), packed into lines of `width` cells:
    a line breaks between entries, never inside one (an entry wider than the line is cut with …)."""
    text, used = Text(), 0
    for entry in entries:
        label = printable(entry.label, keep_newlines=False)
        size = len(entry.symbol) + 1 + len(label)
        if size > width:
            label = label[: max(width - len(entry.symbol) - 2, 1)] + "…"
            size = len(entry.symbol) + 1 + len(label)
        if used and used + 3 + size > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("   ")
            used += 3
        text.append(entry.symbol, "rgb({},{},{})".format(*entry.colour) if entry.colour else "")
        text.append(" " + label)
        used += size
    return text
