"""The main screen's keys for the chart: metric, scale, smoothing, axis, zoom, groups, panels, the value
cursor and the export. A mixin of MainScreen, which holds the chart; kept apart so that the screen's own
module stays about the panes and the runs."""

from __future__ import annotations

from textual.binding import Binding

from . import exports
from .screens import PromptScreen
from .widgets.chart import LossChart
from .widgets.chart_model import parse_zoom, zoom_spec

CHART_BINDINGS = [  # in MainScreen.BINDINGS (Textual reads bindings from its own classes only)
    Binding("m", "chart('next_metric')", "Metric"),
    Binding("l", "chart('toggle_log')", "Log"),
    Binding("a", "chart('next_smoothing')", "Smooth"),
    Binding("e", "export_chart", "Export"),
    Binding("v", "chart('next_x_axis')", "X axis"),
    Binding("z", "chart('next_zoom')", "Zoom"),
    Binding("g", "chart('next_group')", "Group", show=False),
    Binding("G", "chart('next_band')", "Band", show=False),
    Binding("p", "chart('next_panels')", "Panels", show=False),
    Binding("c", "value_cursor", "Cursor", show=False),
    Binding("Z", "zoom_range", "Zoom range", show=False),
]


class ChartKeys:
    """What the chart's keys do; MainScreen brings the chart, the store, notify and focus_runs."""

    @property
    def chart(self) -> LossChart:
        return self.query_one(LossChart)

    def action_chart(self, change: str) -> None:
        """m l a v z g G p: a change of the chart's view (a LossChart method); what the change does not show
        at once in the controls (the x axis, the zoom, the grouping, the panels) is said."""
        getattr(self.chart, change)()
        if change in ("next_group", "next_x_axis"):
            self.paint_marks()  # grouped, a run's mark takes its group's colour
        said = self.chart.model.change_text(change)
        if said:
            self.notify(said, timeout=2)

    def action_value_cursor(self) -> None:
        """c: show the value cursor and give the chart the arrow keys; c again hides it."""
        chart = self.chart
        if chart.model.cursor is not None:
            self.leave_chart()
            return
        chart.show_cursor()
        if chart.model.cursor is None:
            self.notify("the chart has no values yet for a cursor", severity="warning")
            return
        chart.focus()
        self.notify("value cursor: ← → move it, shift+← → by ten, c or Esc hides it", timeout=4)

    def leave_chart(self) -> None:
        """The cursor hidden, the keys back to the runs table."""
        self.chart.hide_cursor()
        self.focus_runs()

    def action_zoom_range(self) -> None:
        """Z: type the epochs to show (3-7), a last N (5), or nothing for every epoch."""
        chart = self.chart

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                chart.set_zoom(parse_zoom(text))
            except ValueError as exc:
                self.notify(str(exc), title="Zoom", severity="error")
                return
            self.notify(f"chart shows {chart.model.zoom_text()}", timeout=2)

        self.app.push_screen(
            PromptScreen(
                "Epochs to show", zoom_spec(chart.model.zoom), "3-7 (a range), 5 (the last 5), or empty (all)"
            ),
            answered,
        )

    def action_export_chart(self) -> None:
        exports.chart(self.app, self.store, self.chart)
