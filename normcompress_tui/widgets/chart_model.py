"""What the chart shows, as plain data: the live run, the overlaid runs, the PCA reference, the metric,
the x axis and the zoom. No Textual here: the widget (chart.py) draws what this class computes, and
the tests ask it directly."""

from __future__ import annotations

import bisect
import math
import time
from typing import TYPE_CHECKING

from normcompress.charts import (
    BANDS,
    X_AXES,
    epoch_mapping,
    group_series,
    step_positions,
    step_series,
    time_unit,
    value_at,
)
from normcompress.metrics import ALL_METRICS
from normcompress.text import count, printable

if TYPE_CHECKING:  # the baseline's numbers arrive from a worker; its module (torch) is not needed here
    from normcompress.baseline import Baseline

ZOOM_LAST = (None, 10, 5, 2, 1)  # z steps through: every epoch, then the last N
Series = tuple[str, list[float], list[float]]  # (label, x, y)
PANELS = (1, 2, 4)  # how many metrics the chart shows side by side
# What the other panels show, after the chosen metric: the loss, the fidelity, the structure, the worst pixel.
PANEL_METRICS = ("loss", "psnr", "ssim", "maxabs_worst", "mae")
CURSOR_LEAP = 10  # positions a shifted arrow moves the cursor by


class ChartModel:
    def __init__(self) -> None:
        self.metric, self.smoothing, self.log_scale = "loss", 0.0, False
        self.current_label = ""
        self.current_id: str | None = None  # the live (or last ended) run's id, once it has one
        self.current_steps: list[tuple[float, float]] = []  # (fractional epoch, that step's training loss)
        self.current_epochs: list[dict] = []
        self.live = False  # the current run is training now (its label says so)
        self.overlays: dict[str, tuple[str, list[dict]]] = {}  # run id -> (label, per-epoch records)
        self.groups: dict[str, dict[str, str]] = {}  # run id -> its group under each key (norm=L1, lr=0.003)
        self.group_by: str | None = None  # overlays folded into a mean and a band per group of this key
        self.band = "minmax"
        self.reference: Baseline | None = None  # PCA on the first charted run's data: a dashed line
        self.slots: dict[str, int] = {}  # run id -> palette slot, kept while the run is on the chart
        self.x_axis = "epoch"
        self.zoom: tuple[float, float] | int | None = None  # epochs (first, last), the last N, or all
        self.panels = 1
        self.cursor: float | None = None  # the value cursor's place on the x axis as drawn, or hidden
        self._live_clock: list[tuple[float, float]] = []  # (fractional epoch, seconds since the live run began)
        self._live_steps: int | None = None  # the live run's steps per epoch
        self._live_started = 0.0

    # -- the live run -----------------------------------------------------------------------------
    def start_run(self, label: str, earlier: list[dict] | None = None, run_id: str | None = None) -> None:
        """A new live run; a resumed one brings the records of its epochs before the stop."""
        earlier = earlier or []
        steps = step_series(label, earlier) if earlier else None
        if self.current_id not in self.overlays:  # the run before it leaves the chart, and frees its colour
            self.slots.pop(self.current_id or "", None)
        self.current_label, self.current_epochs, self.live = label, list(earlier), True
        self.current_id = run_id
        if run_id is not None:  # the colour it keeps when it ends and is overlaid, as a study's runs are
            self.slots.setdefault(run_id, free_slot(self.slots, first=0))
        self.current_steps = list(zip(steps[1], steps[2], strict=True)) if steps else []
        seconds = sum(r.get("epoch_time_s") or 0.0 for r in earlier)
        self._live_clock = [(0.0, 0.0)] + ([(float(len(earlier)), seconds)] if earlier else [])
        self._live_started = time.monotonic() - seconds

    def end_run(self) -> None:
        """The current run has ended (completed, stopped, failed): it stays on the chart, no longer live,
        unless it is overlaid too, as a study's finished runs are: then it is drawn once, as an overlay."""
        self.live = False
        if self.current_id in self.overlays:
            self._drop_current()

    def _drop_current(self) -> None:
        self.current_label, self.current_id, self.current_steps, self.current_epochs = "", None, [], []
        self._live_clock, self._live_steps = [], None

    def add_steps(self, epoch: int, step: int, steps: int, losses: list[float]) -> None:
        """Each step's loss, the last of them at `step` of `steps` in (1-based) `epoch`."""
        self.current_steps += zip(step_positions(epoch, step - len(losses), len(losses), steps), losses, strict=True)
        self._live_clock.append((epoch - 1 + step / steps, time.monotonic() - self._live_started))
        self._live_steps = steps

    def add_epoch(self, record: dict) -> None:
        self.current_epochs.append(record)

    # -- the overlaid runs and the reference --------------------------------------------------------
    def set_overlay(
        self, run_id: str, label: str, records: list[dict] | None, groups: dict[str, str] | None = None
    ) -> None:
        """Put a run on the chart (`groups`: its group under each key it can be grouped by) or take it off."""
        if records is None:
            self.overlays.pop(run_id, None)
            self.groups.pop(run_id, None)
            if run_id != self.current_id:  # the current run is still drawn, in its colour
                self.slots.pop(run_id, None)
        else:
            self.overlays[run_id] = (label, records)
            self.groups[run_id] = groups or {}
            if run_id == self.current_id and not self.live:  # the ended current run: one curve, not two
                self._drop_current()
            self.slots.setdefault(run_id, free_slot(self.slots, first=1))

    def reference_line(self, metric: str | None = None) -> tuple[str, float] | None:
        """The baseline's value of a metric (the chart's by default; none for the training loss, which is
        in each run's own norm)."""
        metric = metric or self.metric
        if self.reference is None or metric not in self.reference.metrics:
            return None
        return f"{self.reference.label} on {self.reference.data}", self.reference.metrics[metric]

    # -- groups ---------------------------------------------------------------------------------------
    def group_keys(self) -> list[str]:
        """The keys the overlays can be grouped by: those whose groups differ among them (norm always)."""
        keys = {key for groups in self.groups.values() for key in groups}
        differing = [k for k in sorted(keys) if len({g.get(k) for g in self.groups.values()}) > 1]
        return (["norm"] if "norm" in keys else []) + [k for k in differing if k != "norm"]

    def _group_of(self, run_id: str) -> str:
        return self.groups[run_id].get(self.group_by, f"{self.group_by}=-")

    def group_slots(self) -> dict[str, int]:
        """Each group's palette slot: in the order the overlays came, from 1, past the current run's."""
        current = self._current_slot() if self._has_current() else None
        free = (n for n in range(1, len(self.overlays) + 3) if n != current)
        return dict(zip(dict.fromkeys(map(self._group_of, self.overlays)), free, strict=False))

    def mark_slot(self, run_id: str) -> int:
        """The colour of an overlaid run's mark in the runs table: its group's while the chart is grouped
        (not on the time axis, where runs stay apart), else its own."""
        if self.group_by is None or self.x_axis == "time":
            return self.slots[run_id]
        return self.group_slots()[self._group_of(run_id)]

    def next_group(self) -> None:
        """No grouping, then each key the overlays differ in, then none again."""
        cycle = [None, *self.group_keys()]
        position = cycle.index(self.group_by) if self.group_by in cycle else 0
        self.group_by = cycle[(position + 1) % len(cycle)]

    def next_band(self) -> None:
        names = list(BANDS)
        self.band = names[(names.index(self.band) + 1) % len(names)]

    def change_text(self, change: str) -> str:
        """What a view change (a LossChart method's name) is said as, when the controls do not show it."""
        if change == "next_x_axis":
            return f"x axis: {self.x_axis}"
        if change == "next_zoom":
            return f"chart shows {self.zoom_text()}"
        if change == "next_panels":
            return f"{count(self.panels, 'panel')}: {', '.join(ALL_METRICS[m].column for m in self.panel_metrics())}"
        if change in ("next_group", "next_band"):
            return f"grouped by {self.group_by}, {BANDS[self.band]}" if self.group_by else "one curve per run"
        return ""

    def group_text(self) -> str:
        if self.group_by is None:
            return ""
        return f", grouped by {self.group_by}" + (" (on the epoch and step axes)" if self.x_axis == "time" else "")

    # -- the view: x axis and zoom ------------------------------------------------------------------
    def next_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        if self.cursor is not None:  # its place was on the other axis: start again from the last x
            self.cursor = None
            self.move_cursor(0)

    def next_zoom(self) -> None:
        """Every epoch, then the last 10, 5, 2 and 1 epochs (of the longest run on the chart)."""
        position = ZOOM_LAST.index(self.zoom) if self.zoom in ZOOM_LAST else 0
        self.set_zoom(ZOOM_LAST[(position + 1) % len(ZOOM_LAST)])

    def set_zoom(self, zoom: tuple[float, float] | int | None) -> None:
        self.zoom = zoom
        if self.cursor is not None:  # onto the nearest x the zoom still shows
            self.move_cursor(0)

    def zoom_text(self) -> str:
        if self.zoom is None:
            return "all epochs"
        if isinstance(self.zoom, int):
            return f"last {count(self.zoom, 'epoch')}"
        return f"epochs {self.zoom[0]:g}-{self.zoom[1]:g}"

    def title_note(self) -> str:
        """What the chart's title (and an export's) adds to the metric's name: the zoom and the grouping."""
        return ("" if self.zoom is None else f", {self.zoom_text()}") + self.group_text()

    def live_label(self) -> str:
        return f"{self.current_label} (live)" if self.live else self.current_label

    def series(self, metric: str | None = None) -> list[Series]:
        """What the chart shows of a metric (its own by default): (label, x, y) per series, the current run first."""
        key = metric or self.metric
        result = []
        if key == "loss" and self.current_steps:
            xs, ys = zip(*self.current_steps, strict=True)
            result.append((self.live_label(), list(xs), list(ys)))
        elif self.current_epochs:
            result.append(per_epoch(self.live_label(), self.current_epochs, key))
        for label, records in self.overlays.values():
            steps = step_series(label, records) if key == "loss" else None
            result.append(steps or per_epoch(label, records, key))
        return result

    def series_slots(self, metric: str | None = None) -> list[int]:
        """Each series' palette slot, in the order of series(): the current run's first, each overlay its own."""
        current = [self._current_slot()] if self._has_current(metric) else []
        return current + [self.slots[run_id] for run_id in self.overlays]

    def _current_slot(self) -> int:
        return self.slots.get(self.current_id or "", 0)

    def _has_current(self, metric: str | None = None) -> bool:
        return bool(((metric or self.metric) == "loss" and self.current_steps) or self.current_epochs)

    def view(self, metric: str | None = None) -> tuple[list[Series], list[int], str]:
        """What is drawn of a metric (the chart's own by default): series() cut to the zoom and moved onto
        the x axis, their palette slots, and the axis title. A run without what the axis needs (no
        recorded times) is left out of a time axis."""
        series, slots = self.series(metric), self.series_slots(metric)
        ends = [max(xs) for _, xs, _ in series if xs]
        if isinstance(self.zoom, int) and ends:
            window = (max(ends) - self.zoom, max(ends))
        elif isinstance(self.zoom, tuple):
            window = (self.zoom[0] - 1, self.zoom[1])  # epochs 3-5: from the start of 3 to the end of 5
        else:
            window = (-math.inf, math.inf)
        owners = ([None] if self._has_current(metric) else []) + list(self.overlays)  # None: the live run
        shown, shown_slots, shown_runs = [], [], []
        for (label, xs, ys), slot, owner, mapping in zip(series, slots, owners, self._mappings(metric), strict=True):
            if mapping is None:
                continue
            points = [(mapping(x), y) for x, y in zip(xs, ys, strict=True) if window[0] < x <= window[1]]
            shown.append((label, [p[0] for p in points], [p[1] for p in points]))
            shown_slots.append(slot)
            shown_runs.append(owner)
        title = self.x_axis
        if self.group_by is not None and self.x_axis != "time":  # runs' clocks differ: time stays per run
            live = int(bool(shown_runs) and shown_runs[0] is None)  # the live run is never grouped
            labels = [self._group_of(r) for r in shown_runs[live:]]
            folded, _ = group_series(shown[live:], labels, self.band)
            slot_of = self.group_slots()  # each group's colour, as the runs table marks its runs
            slots = [slot_of[group] for group in dict.fromkeys(labels) for _ in range(3)]
            shown, shown_slots = shown[:live] + folded, shown_slots[:live] + slots
        if self.x_axis == "time":
            longest = max((max(xs) for _, xs, _ in shown if xs), default=0.0)
            unit, seconds = time_unit(longest)
            shown = [(label, [x / seconds for x in xs], ys) for label, xs, ys in shown]
            title = f"training time ({unit})"
        return shown, shown_slots, title

    def _mappings(self, metric: str | None) -> list:
        """For each series of series(metric), its function from epochs to the x axis (None: cannot be shown)."""
        mappings = []
        if self._has_current(metric):
            if self.x_axis == "time":  # the wall clock as the steps arrived (epoch records lag a whole epoch)
                mappings.append(_interpolation(sorted(self._live_clock)))
            else:
                mappings.append(epoch_mapping(self.current_epochs, self.x_axis, self._live_steps))
        mappings += [epoch_mapping(records, self.x_axis) for _, records in self.overlays.values()]
        return mappings

    # -- panels and the value cursor ------------------------------------------------------------------
    def next_panels(self) -> None:
        self.panels = PANELS[(PANELS.index(self.panels) + 1) % len(PANELS)] if self.panels in PANELS else 1

    def panel_metrics(self, shown: int | None = None) -> list[str]:
        """The metric of each panel: the chosen one first, then the usual companions (`shown` of them)."""
        others = [m for m in PANEL_METRICS if m != self.metric]
        return [self.metric, *others][: shown or self.panels]

    def cursor_positions(self) -> list[float]:
        """Where the cursor can stand: every x that a named series of the first panel has, in order."""
        return sorted({x for label, xs, _ in self.view()[0] if label is not None for x in xs})

    def move_cursor(self, steps: int) -> None:
        """Show the cursor (at the last x) or move it by `steps` positions, stopping at either end."""
        positions = self.cursor_positions()
        if not positions:
            self.cursor = None
            return
        if self.cursor is None:
            self.cursor = positions[-1]
            return
        here = bisect.bisect_left(positions, self.cursor - 1e-9)  # the cursor's place, or the first one after it
        if steps > 0 and (here == len(positions) or positions[here] > self.cursor + 1e-9):
            here -= 1  # between two positions: one step right is the next one, one left the one before
        self.cursor = positions[min(max(here + steps, 0), len(positions) - 1)]

    def hide_cursor(self) -> None:
        self.cursor = None

    def cursor_text(self) -> str:
        """The cursor's x as the axis counts it: `epoch 3`, `step 1,250`, `12.5 s`."""
        if self.cursor is None:
            return ""
        if self.x_axis == "time":
            return f"{self.cursor:.4g} {self.view()[2].rpartition('(')[2].rstrip(')')}"
        return f"{self.x_axis} {self.cursor:,.6g}" if self.x_axis == "epoch" else f"{self.x_axis} {self.cursor:,.0f}"

    def cursor_values(self, metric: str) -> list[tuple[str, int, str]]:
        """Under the cursor, for each named series of a metric's panel: its label, palette slot and value
        (the raw value of its last point at or before the cursor, `-` where it has none yet)."""
        if self.cursor is None:
            return []
        series, slots, _ = self.view(metric)
        shown = ALL_METRICS[metric]
        return [
            (label, slot, shown.text(value_at(xs, ys, self.cursor)))
            for (label, xs, ys), slot in zip(series, slots, strict=True)
            if label is not None
        ]

    # -- kept between launches ------------------------------------------------------------------------
    def view_state(self) -> dict:
        return {
            "metric": self.metric,
            "smoothing": self.smoothing,
            "log": self.log_scale,
            "x_axis": self.x_axis,
            "zoom": zoom_spec(self.zoom),
            "group_by": self.group_by,
            "band": self.band,
            "panels": self.panels,
        }


def free_slot(slots: dict[str, int], first: int) -> int:
    """The lowest palette slot from `first` that no run on the chart holds (0 is the first live run's)."""
    taken = set(slots.values())
    return next(n for n in range(first, len(taken) + first + 1) if n not in taken)


def per_epoch(label: str, records: list[dict], key: str) -> Series:
    """A run's per-epoch values of one metric; epochs without it (MS-SSIM on small images) are left out."""
    points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
    return label, [p[0] for p in points], [p[1] for p in points]


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
    raise ValueError(
        f"{printable(text, keep_newlines=False)!r} is not a zoom: give 3-7 (epochs 3 to 7), "
        f"5 (the last 5 epochs) or nothing (every epoch)"
    )


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
