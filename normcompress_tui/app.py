"""normcompress-tui: configure, start, watch, stop and compare training runs in any terminal."""

import asyncio
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Header, Input
from textual.worker import Worker, WorkerState

# textual-image asks the terminal what it can draw; it must do so before Textual takes the terminal over.
from .widgets.preview import ReconstructionPreview  # noqa: I001

from normcompress import api, probe
from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError
from normcompress.events import EpochEnd, Notice, RunEnded, RunStarted, StepProgress
from normcompress.runs import RUNS_DIR_ENV, Run, RunStore, run_label
from normcompress.text import count, printable

from .messages import StudyUpdate, TrainingEvent
from .trainer import train_in_process
from .state import load_state, save_state, state_path
from .screens import ConfirmScreen, DetailsScreen, HelpScreen, PromptScreen, StudyScreen
from .widgets.chart import LossChart, parse_zoom, zoom_spec
from .widgets.controls import Controls
from .widgets.progress import TrainingProgress
from .widgets.runs_table import RunsTable
from .widgets.study_queue import StudyQueue
from .widgets.system_line import SystemLine

STORE_POLL_S = 2.0  # how often runs started elsewhere (the CLI, another app) are picked up
STATE_SAVE_S = 2.0  # how often the form, the chart's view and the overlays are saved when they changed
MAX_SAVED_OVERLAYS = 100
PROGRESS_INTERVAL_S = 1.0  # how often the engine sends step progress
TICK_S = 1.0  # what changes while a run trains is drawn at this tick, in one repaint
PREVIEW_INTERVAL_S = 5.0  # the live run's reconstructions are shown again at most this often
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
TRAINING_ENV = "NORMCOMPRESS_TUI_TRAINING"  # "thread": train in the app's process (for the overhead benchmark)


class NormcompressApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses defined elsewhere find it too
    TITLE = "normcompress"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("m", "next_metric", "Metric"),
        Binding("l", "toggle_log", "Log"),
        Binding("a", "next_smoothing", "Smooth"),
        Binding("e", "export_chart", "Export"),
        Binding("v", "next_x_axis", "X axis"),
        Binding("z", "next_zoom", "Zoom"),
        Binding("Z", "zoom_range", "Zoom range", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("t", "tag", "Tag"),
        Binding("r", "resume", "Resume"),
        Binding("S", "study", "Study", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, store: RunStore | None = None, defaults: TrainConfig | None = None) -> None:
        super().__init__()
        self.store = store or RunStore()
        self.defaults = defaults
        self.sub_title = printable(self.store.root, keep_newlines=False)  # a path is data: no raw control codes
        self.cancel = threading.Event()
        self.training = False
        self.current_run: Run | None = None
        self._quit_when_stopped = False
        self._resuming: str | None = None  # the id of the run being resumed
        self._preview_at, self._preview_epoch = 0.0, None  # when, and which epoch's, reconstructions were shown
        self._overlays_to_restore: list[str] = []
        self._saved_state: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Controls(self.defaults)
                yield ReconstructionPreview()
                yield SystemLine()
            with Vertical(id="right"):
                yield LossChart()
                yield TrainingProgress()
                yield StudyQueue()
                yield Input(placeholder="filter: words of an id, norm, tag or setting (escape clears)", id="filter",
                            compact=True)
                yield RunsTable()
        yield Footer(compact=True, show_command_palette=False)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification as plain text: messages carry file names, norms and stored strings."""
        super().notify(printable(message), title=printable(title), severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        self.restore_state()
        self.refresh_runs()
        self.set_interval(STORE_POLL_S, self.refresh_runs)
        self.set_interval(STATE_SAVE_S, self.save_state)
        self.set_interval(TICK_S, self.tick)
        self.query_one(RunsTable).focus()
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:  # `kill`, and the SSH session dropping
            loop.add_signal_handler(sig, self.quit_after_stopping)

    def on_unmount(self) -> None:
        # Whatever closes the app, a run in progress stops within one batch and is kept as interrupted.
        self.cancel.set()
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            loop.remove_signal_handler(sig)

    # -- what is kept between launches ------------------------------------------------------------
    def current_state(self) -> dict:
        table = self.query_one(RunsTable)
        return {"form": self.query_one(Controls).form_state(), "chart": self.query_one(LossChart).view_state(),
                "runs": {**table.order_state(), "overlays": sorted(table.overlay_ids)[:MAX_SAVED_OVERLAYS]}}

    def restore_state(self) -> None:
        """The form, the chart's view, the table's order and (once the runs are listed) the overlays of the
        last session; a damaged state file is ignored with a notice."""
        state, problem = load_state(state_path(self.store.root))
        if problem:
            self.notify(problem, severity="warning", timeout=10)
        if self.defaults is None:  # settings given on the command line win over the saved form
            self.query_one(Controls).restore(state["form"])
        self.query_one(LossChart).restore_view(state["chart"])
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
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self.runs_listed, infos)

    def runs_listed(self, infos) -> None:
        table = self.query_one(RunsTable)
        table.update_runs(infos)
        overlays, self._overlays_to_restore = self._overlays_to_restore, []
        for run_id in overlays:  # the last session's overlays, once their runs are known
            table.set_overlay(run_id, True)

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
        chart = self.query_one(LossChart)
        chart.set_overlay(info.id, info.label, records)
        if message.on:
            self.query_one(RunsTable).paint(info.id, chart.swatch(info.id))
        if message.on and chart.reference is None:
            self.load_reference(info.id)

    # -- finding runs: filter, sort, tags --------------------------------------------------------
    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.query_one(RunsTable).set_query(event.value)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self) -> None:
        self.query_one(RunsTable).focus()  # the filter stays; `/` again edits it

    def action_leave_field(self) -> None:
        """Escape in a text field gives the keys back to the runs table; in the filter it also clears it."""
        if isinstance(self.focused, Input) and self.focused.id == "filter":
            self.clear_filter()
        elif isinstance(self.focused, Input):
            self.query_one(RunsTable).focus()

    def clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self.query_one(RunsTable).set_query("")
        self.query_one(RunsTable).focus()

    def action_tag(self) -> None:
        info = self.query_one(RunsTable).highlighted_info()
        if info is None:
            return
        try:
            run = self.store.get(info.id)
        except NormcompressError as exc:
            self.notify(str(exc), severity="error")
            return
        try:
            shown = run.tags()
        except NormcompressError as exc:  # saving replaces the damaged file
            self.notify(f"{exc}; saving replaces them", severity="warning")
            shown = None

        def answered(text: str | None) -> None:
            if text is None:
                return
            typed = text.split()
            try:  # what was added and removed in the prompt, applied to the tags as they are now: a tag
                # added from the shell while the prompt was open is kept
                if shown is None:
                    tags, _ = run.update_tags(replace=typed)
                else:
                    tags, _ = run.update_tags(add=[t for t in typed if t not in shown],
                                              remove=[t for t in shown if t not in typed])
            except NormcompressError as exc:
                self.notify(str(exc), title="Tags not saved", severity="error")
                return
            self.notify(f"{info.id}: {' '.join(tags) or 'no tags'}", title="Tags saved")
            self.refresh_runs()

        self.push_screen(PromptScreen(f"Tags of {info.id}", " ".join(shown or ()), "words separated by spaces"),
                         answered)

    @work(thread=True, exclusive=True, group="reference", exit_on_error=False)
    def load_reference(self, run_id: str) -> None:
        """The PCA baseline on a run's data, for the chart's dashed line: from the store's cache, or
        fitted once (seconds), in a child process (the app never loads torch) waited on off the UI thread."""
        try:
            baseline = probe.run_baseline(self.store, run_id)
        except NormcompressError:
            return  # the chart simply has no reference line; the run's own problems are shown elsewhere
        if baseline is not None:
            self.call_from_thread(self.query_one(LossChart).set_reference, baseline)

    @on(RunsTable.RowHighlighted)
    def run_highlighted(self, message: RunsTable.RowHighlighted) -> None:
        # The table that sent it, not a query: the message can arrive while another screen is on top (a
        # run from the CLI appears under the help screen) or while the app is closing.
        table = message.data_table
        info = table.infos.get(message.row_key.value) if isinstance(table, RunsTable) else None
        if info and not self.training:
            for preview in table.screen.query(ReconstructionPreview):
                preview.show(Run(info.path).recon_path, info.label)

    @on(RunsTable.DetailsRequested)
    def open_details(self, message: RunsTable.DetailsRequested) -> None:
        try:
            run = self.store.get(message.info.id)
        except NormcompressError as exc:  # removed (or damaged) since the table was drawn
            self.notify(str(exc), severity="error")
            return
        self.push_screen(DetailsScreen(run))

    @on(RunsTable.DeleteRequested)
    def delete_run(self, message: RunsTable.DeleteRequested) -> None:
        info = message.info
        if info.status == "running" or Run(info.path).is_live():  # trained here, by the CLI or another app
            self.notify(f"{info.id} is being trained: stop it first (x)", severity="warning")
            return  # asking first, then refusing, was the old way

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.remove(self.store.get(info.id))
            except NormcompressError as exc:
                self.notify(str(exc), severity="error")
                return
            self.query_one(LossChart).set_overlay(info.id, "", None)
            self.notify(f"removed {info.id}")
            self.refresh_runs()

        self.push_screen(ConfirmScreen(f"Delete run {info.id} ({info.norm}, {info.status})?"), answered)

    # -- training ----------------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.training:
            return
        config = self.form_config("Cannot start")
        if config is not None:
            self.begin_training(config)

    def form_config(self, refusal: str) -> TrainConfig | None:
        """The Run pane's settings, or None after a notification titled `refusal` naming the bad field."""
        try:
            return self.query_one(Controls).config()
        except NormcompressError as exc:
            self.notify(str(exc), title=refusal, severity="error")
            return None

    def action_resume(self) -> None:
        """r: train the highlighted interrupted (or failed) run on from its last complete epoch, with its
        own settings; the chart shows the epochs it had before the new ones."""
        info = self.query_one(RunsTable).highlighted_info()
        if info is None:
            return
        if self.training:
            self.notify("a run is being trained: stop it first (x), then resume", severity="warning")
            return
        if info.status not in ("interrupted", "failed"):
            self.notify(f"{info.id} is {info.status}: only an interrupted or failed run can be resumed",
                        severity="warning")
            return
        self.begin_training(info.config, resume=info.id)

    def action_study(self) -> None:
        """S: queue norms x seeds with the Run pane's other settings, trained one after another."""
        if self.training:
            self.notify("a run is being trained: stop it first (x), then start a study", severity="warning")
            return
        base = self.form_config("Cannot start a study")
        if base is None:
            return

        def answered(study) -> None:
            if study is None:
                return
            self.claim_training()
            self.query_one(StudyQueue).begin([study.label(c) for c in study.run_configs()])
            self.run_study_queue(study)

        self.push_screen(StudyScreen(base), answered)

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def run_study_queue(self, study) -> None:
        """The study in the training worker: a run that fails is reported and the queue goes on."""
        runs = api.run_study(study, self.store, lambda p: self.post_message(StudyUpdate(p)),
                         lambda event: self.post_message(TrainingEvent(event)), self.cancel, keep_going=True,
                         trainer=self.train_one)
        total = len(study.run_configs())
        ending = ("stopped" if self.cancel.is_set() else "done") + f": {len(runs)} of {total} runs completed"
        self.call_from_thread(self.query_one(StudyQueue).ended, ending)

    def on_study_update(self, message: StudyUpdate) -> None:
        self.query_one(StudyQueue).progress(message.progress)
        if message.progress.state == "failed":
            self.notify(f"{message.progress.label} failed: {message.progress.message}; the study goes on",
                        title="Study", severity="error", timeout=10)

    def begin_training(self, config: TrainConfig | None, resume: str | None = None) -> None:
        self.claim_training(resume)
        self.run_training(config, resume)

    def claim_training(self, resume: str | None = None) -> None:
        """A run (or a study) is starting: a fresh cancel flag, Start disabled until its worker ends."""
        self.training = True
        self.cancel = threading.Event()
        self._resuming = resume
        self.query_one(Controls).set_running(True)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.training:
            self.cancel.set()
            self.notify("stopping after the current batch…")

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def run_training(self, config: TrainConfig | None, resume: str | None = None) -> None:
        """The run, trained by train_one; its events come back as messages."""
        self.train_one(config, self.store, lambda event: self.post_message(TrainingEvent(event)), self.cancel,
                       resume=resume)

    def train_one(self, config, store, on_event, cancel, resume=None):
        """One run, as normcompress.train would (same arguments, the run or None), in a child process
        (measured faster: see trainer.py) or, with NORMCOMPRESS_TUI_TRAINING=thread, in the calling worker
        thread. Runs and a study's runs alike train this way."""
        if os.environ.get(TRAINING_ENV) == "thread":  # torch: loaded when a run starts, not at launch
            return api.train_run(config, store, on_event, cancel, resume=resume, progress_interval_s=PROGRESS_INTERVAL_S)
        return train_in_process(config, store, on_event, cancel, resume=resume, progress_interval_s=PROGRESS_INTERVAL_S)

    def on_training_event(self, message: TrainingEvent) -> None:
        try:
            progress, chart = self.query_one(TrainingProgress), self.query_one(LossChart)
        except NoMatches:  # the app is being taken down under a run (a test's app closed): nothing to show
            return
        match message.event:
            case StepProgress() as event:
                progress.step(event)
                chart.add_steps(event.epoch, event.step, event.steps, event.step_losses)
            case EpochEnd() as event:
                progress.epoch_end(event)
                chart.add_epoch(event.record)
            case RunStarted() as event:
                self.current_run = Run(self.store.root / event.run_id)
                earlier = []
                if self._resuming == event.run_id:  # the epochs before the stop stay on the chart
                    try:
                        earlier = self.current_run.metrics()
                    except NormcompressError:
                        earlier = []
                chart.start_run(run_label(event.config.norm, event.run_id), earlier)
                progress.started(event)
                self.refresh_runs()
            case RunEnded() as event:
                progress.finished(event.status, event.message)
                if self.current_run is not None and chart.current_epochs:
                    self.show_live_preview(chart.current_epochs[-1]["epoch"])
                self.refresh_runs()
                if chart.reference is None and event.status == "completed":
                    self.load_reference(event.run_id)
                self.notify(f"{event.run_id}: {event.message}",
                            severity="information" if event.status == "completed" else "warning")
            case Notice() as event:
                self.notify(event.message, title="Notice", severity="warning", timeout=10)

    def show_live_preview(self, epoch: int) -> None:
        self._preview_at, self._preview_epoch = time.monotonic(), epoch
        self.query_one(ReconstructionPreview).show(self.current_run.recon_path, f"{count(epoch, 'epoch')}, live")

    def tick(self) -> None:
        """Draw what changed: progress, the system line, the chart when a redraw is due, the live run's
        reconstructions every few seconds. Events only record; on two cores each repaint is taken from
        training, and one a second costs less than one for each event and each widget's own timer."""
        try:
            self.query_one(SystemLine).sample()
            self.query_one(TrainingProgress).show()
            chart = self.query_one(LossChart)
        except NoMatches:  # the app is being taken down; the tick came between two widgets' removal
            return
        early = TICK_S / 2  # what is due within half a tick is done at this one
        chart.redraw_when_due(early)
        if (self.training and self.current_run is not None and chart.current_epochs
                and chart.current_epochs[-1]["epoch"] != self._preview_epoch
                and time.monotonic() - self._preview_at >= PREVIEW_INTERVAL_S - early):
            self.show_live_preview(chart.current_epochs[-1]["epoch"])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The training worker has ended (completed, stopped, or failed): the UI may start another run.
        A failure is a notification; it never takes the app down."""
        if event.worker.group != "training" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                                    WorkerState.CANCELLED):
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            message = str(error) if isinstance(error, NormcompressError) else f"{type(error).__name__}: {error}"
            self.notify(message, title="Training stopped", severity="error", timeout=10)
        self.training = False
        if self._quit_when_stopped:
            self.exit()
            return
        try:
            self.query_one(Controls).set_running(False)
        except NoMatches:  # the app is being taken down (a test's app closed under its run): nothing to show
            return
        self.refresh_runs()

    # -- chart, help, palette and quitting ---------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        """The command palette offers the app's own actions beside Textual's."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Start a run", "Train with the settings of the Run pane (s)", self.action_start)
        yield SystemCommand("Stop the run", "Stop after the current batch, keep it as interrupted (x)",
                            self.action_stop)
        yield SystemCommand("Resume the run", "Train the highlighted interrupted run on from its last epoch (r)",
                            self.action_resume)
        yield SystemCommand("Start a study", "Queue norms x seeds with the Run pane's settings (S)",
                            self.action_study)
        yield SystemCommand("Open the run", "The highlighted run's settings, epochs and reconstructions (enter)",
                            self.query_one(RunsTable).action_details)
        yield SystemCommand("Delete the run", "Remove the highlighted run from the store, after a question (d)",
                            self.query_one(RunsTable).action_delete)
        yield SystemCommand("Export runs as CSV", "Every run's settings and per-epoch metrics into one file under "
                            "the store's exports/", self.export_runs_csv)
        yield SystemCommand("Overlay all runs", "Put every run of the store on the chart", self.overlay_all)
        yield SystemCommand("Overlay none", "Take every run off the chart", self.overlay_none)
        yield SystemCommand("Export the chart", "Write the chart's current view as PNG and SVG (e)",
                            self.action_export_chart)
        yield SystemCommand("Next metric", "Chart the next metric (m)", self.action_next_metric)
        yield SystemCommand("Toggle log scale", "A true logarithmic y axis (l)", self.action_toggle_log)
        yield SystemCommand("Keys and panes", "What every key does and what each pane shows (?)", self.action_help)

    def exports_folder(self) -> Path:
        """Where the chart exports, the runs CSV and the screenshots go: the store's own exports/ folder,
        always writable where runs are (Textual's default, ~/Downloads, does not exist on many servers),
        and refused when something other than a real folder is there (a link would send files elsewhere)."""
        return self.store.folder("exports")

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """The palette's Screenshot, saved as SVG into <store>/exports/ beside the chart exports: Textual's
        default folder, ~/Downloads, does not exist on many servers, and the screenshot then failed. Written
        through a temporary file and a rename like every file of the store, never seen half-written."""
        from normcompress.files import atomic_write

        try:
            folder = Path(path) if path else self.exports_folder()
            target = folder / (filename or f"normcompress_{datetime.now():%Y-%m-%dT%H_%M_%S_%f}.svg")
            atomic_write(target, self.export_screenshot().encode())
        except NormcompressError as exc:
            self.notify(f"cannot save a screenshot: {exc}", severity="error")
            return
        self.notify(f"screenshot saved to {target}", title="Screenshot")

    @work(thread=True, group="export", exit_on_error=False)
    def export_runs_csv(self) -> None:
        """The CLI's `runs export` of the whole store, into <store>/exports/, off the UI thread."""
        try:
            path = self.exports_folder() / f"runs-{time.strftime('%Y%m%d-%H%M%S')}.csv"
            runs, rows = api.export_runs(self.store, path, inside_store=True)
        except NormcompressError as exc:
            self.call_from_thread(self.notify, f"cannot export the runs: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"exported {runs} runs ({rows} epoch rows) to {path}", timeout=10)

    def overlay_all(self) -> None:
        table = self.query_one(RunsTable)
        for run_id in list(table.infos):
            table.set_overlay(run_id, True)

    def overlay_none(self) -> None:
        table = self.query_one(RunsTable)
        for run_id in list(table.overlay_ids):
            table.set_overlay(run_id, False)

    def action_export_chart(self) -> None:
        chart = self.query_one(LossChart)
        series, slots, x_title = chart.view()
        shown = [(s, slot) for s, slot in zip(series, slots) if s[1]]
        if not shown:
            self.notify("nothing on the chart to export: start a run or overlay one (space)", severity="warning")
            return
        self.export_chart([s for s, _ in shown], [slot for _, slot in shown], chart.metric, chart.log_scale,
                          chart.smoothing, chart.reference_line(), x_title, chart.title_note())

    @work(thread=True, group="export", exit_on_error=False)
    def export_chart(self, series, slots, metric: str, log: bool, smoothing: float, reference, x_title: str,
                     note: str) -> None:
        """The chart's current view as a matplotlib figure in the figures' style, PNG and SVG, into
        <store>/exports/; the paths in a notification. Off the UI thread: matplotlib takes a second."""
        try:
            paths = api.export_chart(self.exports_folder(), f"chart-{time.strftime('%Y%m%d-%H%M%S')}-{metric}", series,
                                     slots, metric, log, smoothing, reference, x_title, note)
        except NormcompressError as exc:
            self.call_from_thread(self.notify, f"cannot export the chart: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, "chart exported: " + ", ".join(str(p) for p in paths), timeout=10)

    def action_next_metric(self) -> None:
        self.query_one(LossChart).next_metric()

    def action_next_smoothing(self) -> None:
        self.query_one(LossChart).next_smoothing()

    def action_toggle_log(self) -> None:
        self.query_one(LossChart).toggle_log()

    def action_next_x_axis(self) -> None:
        chart = self.query_one(LossChart)
        chart.next_x_axis()
        self.notify(f"x axis: {chart.x_axis}", timeout=2)

    def action_next_zoom(self) -> None:
        chart = self.query_one(LossChart)
        chart.next_zoom()
        self.notify(f"chart shows {chart.zoom_text()}", timeout=2)

    def action_zoom_range(self) -> None:
        """Z: type the epochs to show (3-7), a last N (5), or nothing for every epoch."""
        chart = self.query_one(LossChart)

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                chart.set_zoom(parse_zoom(text))
            except ValueError as exc:
                self.notify(str(exc), title="Zoom", severity="error")
                return
            self.notify(f"chart shows {chart.zoom_text()}", timeout=2)

        self.push_screen(PromptScreen("Epochs to show", zoom_spec(chart.zoom),
                                      "3-7 (a range), 5 (the last 5), or empty (all)"), answered)

    def get_driver_class(self):
        """Textual's driver, with Linux's (also macOS's) made safe for a terminal that vanishes."""
        driver = super().get_driver_class()
        if driver.__name__ == "LinuxDriver":  # not imported elsewhere: it needs termios
            from .terminal import VanishingTerminalDriver

            return VanishingTerminalDriver
        return driver

    def exit(self, *args, **kwargs) -> None:
        """Every way out saves the state first (the timer may not have run since the last change)."""
        self.save_state()
        super().exit(*args, **kwargs)

    async def action_quit(self) -> None:
        """q, ctrl+q and the palette's Quit: ask while a run is in progress, then stop it and quit."""
        if not self.training:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return  # already asking

        def answered(yes: bool | None) -> None:
            if yes:
                self.quit_after_stopping()

        self.push_screen(ConfirmScreen("A run is in progress. Stop it (kept as interrupted) and quit?"), answered)

    def quit_after_stopping(self) -> None:
        """Stop the run within one batch (kept as interrupted), then exit; at once when none is running."""
        if not self.training:
            self.exit()
            return
        self._quit_when_stopped = True
        self.cancel.set()

    def action_help_quit(self) -> None:
        """ctrl+c: say how to quit (Textual's own message is markup, which notifications here never are)."""
        self.notify("Press q or ctrl+q to quit", title="Do you want to quit?")


cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@cli.command()
def run(
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", envvar=RUNS_DIR_ENV, help="Run store directory.",
                                                  show_default="runs")] = None,
) -> None:
    """The normcompress terminal app: pick a norm, train, watch the loss live, compare runs.

    Runs: s start, x stop, r resume, S a study of norms x seeds, q quit.

    Chart: m metric, l log scale, a smoothing, v x axis, z zoom, Z epochs to show, e export.

    Runs table: Space overlay, Enter open, d delete, t tag, o sort, / filter.

    ? every key and pane; Ctrl+P every action.
    """
    app = NormcompressApp(RunStore(runs_dir))
    app.run()
    raise typer.Exit(app.return_code or 0)  # an app that died (Textual printed why) exits non-zero


def main() -> None:
    """Console entry point: a bad store or option is one line on stderr and an exit code, never a traceback."""
    try:
        code = cli(prog_name="normcompress-tui", standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors: a bad option
        print(f"normcompress-tui: error: {printable(exc.format_message(), keep_newlines=False)} "
              "(see: normcompress-tui --help)", file=sys.stderr)
        code = exc.exit_code
    except NormcompressError as exc:
        print(f"normcompress-tui: error: {printable(exc, keep_newlines=False)}", file=sys.stderr)
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("normcompress-tui: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
