"""The main screen: the Run pane, the reconstructions, the chart, the progress, the runs table; its keys,
and what the table's messages ask for (overlay, open, delete, tag, filter, sort).

It keeps its own state between launches (the form, the chart's view, the table's order and overlays)
and is the view the training controller shows runs on.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Select

from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError
from normcompress.runs import Run, RunStore
from normcompress.runs.where import groups_of

from .chart_keys import CHART_BINDINGS, ChartKeys
from .reference import ReferenceLoader
from .screens import StudyScreen
from .state import load_state, save_state, state_path
from .training import TICK_S, TrainingController
from .widgets.chart import LossChart
from .widgets.controls import Controls
from .widgets.footer import KeyBar
from .widgets.preview import ReconstructionPreview
from .widgets.progress import TrainingProgress
from .widgets.runs_pane import RunsPane
from .widgets.runs_table import RunsTable
from .widgets.study_queue import StudyQueue
from .widgets.system_line import SystemLine

STORE_POLL_S = 2.0  # how often runs started elsewhere (the CLI, another app) are picked up
STATE_SAVE_S = 2.0  # how often the form, the chart's view and the overlays are saved when they changed
MAX_SAVED_OVERLAYS = 100


class MainScreen(ChartKeys, Screen):
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        *CHART_BINDINGS,
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("t", "annotate('tags')", "Tag"),
        Binding("n", "annotate('name')", "Name", show=False),
        Binding("N", "annotate('note')", "Note", show=False),
        Binding("left_square_bracket", "history(-1)", "Epoch before", show=False, key_display="["),
        Binding("right_square_bracket", "history(1)", "Epoch after", show=False, key_display="]"),
        Binding("r", "resume", "Resume"),
        Binding("S", "study", "Study", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self, store: RunStore, controller: TrainingController) -> None:
        super().__init__()
        self.store, self.controller = store, controller
        self._overlays_to_restore: list[str] = []
        self._overlays_wanted: set[str] = set()  # runs to overlay once the store's listing has them
        self._saved_state: dict | None = None
        self.reference = ReferenceLoader(
            store,
            lambda probe_one: self.run_worker(probe_one, thread=True, group="reference", exit_on_error=False),
            lambda f, *args: self.app.call_from_thread(f, *args),
            lambda baseline: self.chart.set_reference(baseline),
            lambda: self.chart.model.reference is not None,
        )

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Controls()
                yield ReconstructionPreview()
                yield SystemLine()
            with Vertical(id="right"):
                yield LossChart()
                yield TrainingProgress()
                yield StudyQueue()
                yield RunsPane(self.store)
        yield KeyBar(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.restore_state()
        self.refresh_runs()
        self.set_interval(STORE_POLL_S, self.refresh_runs)
        self.set_interval(STATE_SAVE_S, self.save_state)
        self.set_interval(TICK_S, self.tick)
        self.query_one(RunsTable).focus()

    # -- the widgets, as the training controller sees them -------------------------------------------------
    @property
    def controls(self) -> Controls:
        return self.query_one(Controls)

    @property
    def progress(self) -> TrainingProgress:
        return self.query_one(TrainingProgress)

    @property
    def queue(self) -> StudyQueue:
        return self.query_one(StudyQueue)

    @property
    def preview(self) -> ReconstructionPreview:
        return self.query_one(ReconstructionPreview)

    @property
    def system_line(self) -> SystemLine:
        return self.query_one(SystemLine)

    def notify(self, message: str, **kwargs) -> None:
        self.app.notify(message, **kwargs)

    def tick(self) -> None:
        try:
            self.controller.tick()
        except NoMatches:  # the app is being taken down; the tick came between two widgets' removal
            return

    # -- what is kept between launches ------------------------------------------------------------
    def current_state(self) -> dict:
        table = self.query_one(RunsTable)
        return {
            "form": self.controls.form_state(),
            "chart": self.chart.model.view_state(),
            "runs": {**table.order_state(), "overlays": sorted(table.overlay_ids)[:MAX_SAVED_OVERLAYS]},
        }

    def restore_state(self) -> None:
        """The form, the chart's view, the table's order and (once the runs are listed) the overlays of the
        last session; what cannot be used of the state file is dropped with a notice."""
        state, problem = load_state(state_path(self.store.root))
        if problem:
            self.notify(problem, severity="warning", timeout=10)
        self.controls.restore(state["form"])
        self.chart.restore_view(state["chart"])
        self.query_one(RunsTable).restore_order(state["runs"])
        self._overlays_to_restore = state["runs"].get("overlays", [])[:MAX_SAVED_OVERLAYS]
        self._saved_state = self.current_state()  # written again only once something changes

    def save_state(self) -> None:
        """Write the state when it changed since it was last written (cheap to call every few seconds)."""
        try:
            state = self.current_state()
        except NoMatches:  # the app is already being taken down: the last save stands
            return
        if state == self._saved_state:
            return
        problem = save_state(state_path(self.store.root), state)
        if problem and self._saved_state is not None:  # say it once, not every two seconds
            self.notify(problem, severity="warning")
        self._saved_state = state if not problem else None

    # -- the run store -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="store", exit_on_error=False)
    def refresh_runs(self) -> None:
        try:
            infos = self.store.infos()
        except NormcompressError as exc:  # the store's folder is unreadable: say so, keep the app
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.runs_listed, infos)

    def show_starting(self, info) -> None:
        self.query_one(RunsTable).show_starting(info)

    def runs_listed(self, infos) -> None:
        table = self.query_one(RunsTable)
        table.update_runs(infos)
        overlays, self._overlays_to_restore = self._overlays_to_restore, []
        for run_id in overlays:  # the last session's overlays, once their runs are known
            table.set_overlay(run_id, True)
        listed = self._overlays_wanted & set(table.infos)
        self._overlays_wanted -= listed
        for run_id in sorted(listed):  # ids begin with their start time: the study's order
            table.set_overlay(run_id, True)
        gone = set(self.chart.model.overlays) - set(table.infos)
        for run_id in gone:  # removed from the store elsewhere (runs rm): off the chart, as off the table
            self.chart.set_overlay(run_id, "", None)
        if gone:
            self.paint_marks()  # a group's colour may have moved
        self.follow_overlays(infos)

    def overlay_when_listed(self, run_id: str) -> None:
        """Put a run on the chart as soon as the runs table lists it (a study's, just started or finished)."""
        self._overlays_wanted.add(run_id)
        self.refresh_runs()

    def follow_overlays(self, infos) -> None:
        """An overlaid run that has finished more epochs since it was drawn (training elsewhere: the CLI,
        another app, a stack beside the run shown) is drawn again with them."""
        drawn = self.chart.model.overlays
        for info in infos:
            if info.id not in drawn or info.epochs_done <= len(drawn[info.id][1]):
                continue
            try:
                records = self.store.get(info.id).metrics()
            except NormcompressError:
                continue  # it was drawn; a run that cannot be read now keeps what it showed
            self.chart.set_overlay(info.id, info.label, records, groups_of(info))

    @on(RunsTable.OverlayToggled)
    def overlay_toggled(self, message: RunsTable.OverlayToggled) -> None:
        info = message.info
        records = None
        if message.on:
            try:
                records = self.store.get(info.id).metrics()
            except NormcompressError as exc:
                self.notify(str(exc), severity="error")
                return
        chart = self.chart
        chart.set_overlay(info.id, info.label, records, groups_of(info))
        self.paint_marks()  # this run's, and the others' where a group's colour moved
        if message.on and chart.model.reference is None:
            self.load_reference(info.id)

    def paint_marks(self) -> None:
        """Each overlaid run's mark in the table in its colour on the chart."""
        table = self.query_one(RunsTable)
        for run_id in table.overlay_ids & set(self.chart.model.overlays):
            table.paint(run_id, self.chart.swatch(run_id))

    def load_reference(self, run_id: str) -> None:
        """The PCA baseline on a run's data, for the chart's dashed line (one probe at a time)."""
        self.reference.want(run_id)

    def overlay_all(self) -> None:
        table = self.query_one(RunsTable)
        for run_id in list(table.infos):
            table.set_overlay(run_id, True)

    def overlay_none(self) -> None:
        table = self.query_one(RunsTable)
        for run_id in list(table.overlay_ids):
            table.set_overlay(run_id, False)

    # -- finding runs: the filter and the tags (the runs pane does the work) -------------------------------
    @property
    def runs_pane(self) -> RunsPane:
        return self.query_one(RunsPane)

    def action_filter(self) -> None:
        self.runs_pane.open_filter()

    def action_leave_field(self) -> None:
        """Escape in a text field, a list or the chart gives the keys back to the runs table; in the filter it
        also clears it, in the chart it hides the value cursor."""
        if isinstance(self.focused, Input) and self.focused.id == "filter":
            self.runs_pane.clear_filter()
        elif isinstance(self.focused, LossChart):
            self.leave_chart()
        elif isinstance(self.focused, Input | Select):
            self.focus_runs()

    def focus_runs(self) -> None:
        self.query_one(RunsTable).focus()

    def action_annotate(self, what: str) -> None:
        """t, n, N: the highlighted run's tags, name or note, in a prompt."""
        self.runs_pane.edit_tags() if what == "tags" else self.runs_pane.edit_annotation(what)

    @on(RunsPane.StoreChanged)
    def store_changed(self, message: RunsPane.StoreChanged) -> None:
        if message.removed:
            self.chart.set_overlay(message.removed, "", None)
        self.refresh_runs()

    @on(RunsTable.RowHighlighted)
    def run_highlighted(self, message: RunsTable.RowHighlighted) -> None:
        """The cursor's run in the preview once the cursor moves to it: a run that has just ended stays."""
        table = message.data_table
        info = table.moved_to(message) if isinstance(table, RunsTable) else None
        if info and not self.controller.training:
            self.preview.show(Run(info.path).recon_path, info.label)

    def action_history(self, step: int) -> None:
        """[ ]: the reconstructions of the run shown, an epoch earlier or later (its image history)."""
        refusal = self.preview.step_history(step)
        if refusal:
            self.notify(refusal, timeout=3)

    # -- training ----------------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.controller.training:
            return
        config = self.form_config("Cannot start")
        if config is not None:
            self.controller.start(config)

    def form_config(self, refusal: str, with_norm: bool = True) -> TrainConfig | None:
        """The Run pane's settings, or None after a notification titled `refusal` naming the bad field."""
        try:
            return self.controls.config(with_norm)
        except NormcompressError as exc:
            self.notify(str(exc), title=refusal, severity="error")
            return None

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.controller.stop():
            self.notify("stopping after the current batch…")

    def action_resume(self) -> None:
        """r: train the highlighted interrupted (or failed) run on from its last complete epoch, with its
        own settings; the chart shows the epochs it had before the new ones."""
        info = self.query_one(RunsTable).highlighted_info()
        if info is None:
            return
        if self.controller.training:
            self.notify("a run is being trained: stop it first (x), then resume", severity="warning")
            return
        if info.status not in ("interrupted", "failed"):
            self.notify(
                f"{info.id} is {info.status}: only an interrupted or failed run can be resumed", severity="warning"
            )
            return
        self.controller.resume(info)

    def action_study(self) -> None:
        """S: queue norms x seeds with the Run pane's other settings, trained one after another."""
        if self.controller.training:
            self.notify("a run is being trained: stop it first (x), then start a study", severity="warning")
            return
        base = self.form_config("Cannot start a study", with_norm=False)  # its norms are its own
        if base is None:
            return

        def answered(study) -> None:
            if study is not None:
                self.controller.start_study(study)

        self.app.push_screen(StudyScreen(base), answered)
