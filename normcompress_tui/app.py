"""normcompress-tui: configure, start, watch, stop and compare training runs in any terminal.

The app holds the store, the training controller (training.py) and the main screen (main_screen.py);
here are the keys that work everywhere, the command palette, quitting, signals and the terminal.
"""

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.worker import Worker, WorkerState

from normcompress.api import installed_version
from normcompress.errors import NormcompressError
from normcompress.runs import RUNS_DIR_ENV, RunStore
from normcompress.text import escape_what_the_terminal_cannot_show, one_line, printable

from . import exports
from .main_screen import MainScreen
from .messages import StudyUpdate, TrainingEvent
from .screens import ConfirmScreen, HelpScreen
from .training import TrainingController

# textual-image asks the terminal what it can draw; it must do so before Textual takes the terminal over.

QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class NormcompressApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses defined elsewhere find it too
    TITLE = "normcompress"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, store: RunStore | None = None) -> None:
        super().__init__()
        self.store = store or RunStore()
        self.sub_title = one_line(self.store.root)  # a path is data: no raw control codes
        self.controller = TrainingController(self.store, self.post_message, self._start_training_worker)
        self.main = self.controller.view = MainScreen(self.store, self.controller)

    def get_default_screen(self) -> MainScreen:
        return self.main

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification as plain text: messages carry file names, norms and stored strings."""
        super().notify(printable(message), title=printable(title), severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:  # `kill`, and the SSH session dropping
            loop.add_signal_handler(sig, self.quit_after_stopping)

    def on_unmount(self) -> None:
        # Whatever closes the app, a run in progress stops within one batch and is kept as interrupted.
        self.controller.cancel.set()
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            loop.remove_signal_handler(sig)

    # -- training: the controller's worker and what it reports ---------------------------------------
    def _start_training_worker(self, function, *args) -> Worker:
        return self.run_worker(
            lambda: function(*args), thread=True, exclusive=True, group="training", exit_on_error=False
        )

    def on_training_event(self, message: TrainingEvent) -> None:
        try:
            self.controller.on_event(message.event)
        except NoMatches:  # the app is being taken down under a run (a test's app closed): nothing to show
            return

    def on_study_update(self, message: StudyUpdate) -> None:
        try:
            self.controller.on_study_update(message.progress)
        except NoMatches:
            return

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "training" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        try:
            quit_now = self.controller.worker_ended(event.worker, event.state == WorkerState.ERROR)
        except NoMatches:  # the app is being taken down (a test's app closed under its run): nothing to show
            return
        if quit_now:
            self.exit()

    # -- everywhere: help, the palette, screenshots ------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        """The command palette offers the app's own actions beside Textual's."""
        yield from super().get_system_commands(screen)
        main = self.main
        table = main.query_one("RunsTable")
        yield SystemCommand("Start a run", "Train with the settings of the Run pane (s)", main.action_start)
        yield SystemCommand(
            "Stop the run", "Stop after the current batch, keep it as interrupted (x)", main.action_stop
        )
        yield SystemCommand(
            "Resume the run", "Train the highlighted interrupted run on from its last epoch (r)", main.action_resume
        )
        yield SystemCommand("Start a study", "Queue norms x seeds with the Run pane's settings (S)", main.action_study)
        yield SystemCommand(
            "Open the run", "The highlighted run's settings, epochs and reconstructions (enter)", table.action_details
        )
        yield SystemCommand(
            "Delete the run", "Remove the highlighted run from the store, after a question (d)", table.action_delete
        )
        yield SystemCommand(
            "Export runs as CSV",
            "Every run's settings and per-epoch metrics into one file under the store's exports/",
            lambda: exports.runs_csv(self, self.store),
        )
        yield SystemCommand("Overlay all runs", "Put every run of the store on the chart", main.overlay_all)
        yield SystemCommand("Overlay none", "Take every run off the chart", main.overlay_none)
        yield SystemCommand(
            "Export the chart", "Write the chart's current view as PNG and SVG (e)", main.action_export_chart
        )
        yield SystemCommand("Next metric", "Chart the next metric (m)", lambda: main.action_chart("next_metric"))
        yield SystemCommand(
            "Toggle log scale", "A true logarithmic y axis (l)", lambda: main.action_chart("toggle_log")
        )
        yield SystemCommand(
            "Group the runs", "A mean and a band per group of a setting the runs differ in (g)",
            lambda: main.action_chart("next_group"),
        )  # fmt: skip
        yield SystemCommand("Keys and panes", "What every key does and what each pane shows (?)", self.action_help)

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """The palette's Screenshot, as SVG into <store>/exports/ (Textual's ~/Downloads is missing on many servers)."""
        exports.screenshot(self, self.store, filename, path)

    def get_driver_class(self):
        """Textual's driver, with Linux's (also macOS's) made safe for a terminal that vanishes."""
        driver = super().get_driver_class()
        if driver.__name__ == "LinuxDriver":  # not imported elsewhere: it needs termios
            from .terminal import VanishingTerminalDriver

            return VanishingTerminalDriver
        return driver

    # -- quitting -----------------------------------------------------------------------------------
    def exit(self, *args, **kwargs) -> None:
        """Every way out saves the state first (the timer may not have run since the last change)."""
        if self.main.is_mounted:
            self.main.save_state()
        super().exit(*args, **kwargs)

    async def action_quit(self) -> None:
        """q, ctrl+q and the palette's Quit: ask while a run is in progress, then stop it and quit."""
        if not self.controller.training:
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
        if not self.controller.training:
            self.exit()
            return
        self.controller.quit_when_stopped = True
        self.controller.cancel.set()

    def action_help_quit(self) -> None:
        """ctrl+c: say how to quit (Textual's own message is markup, which notifications here never are)."""
        self.notify("Press q or ctrl+q to quit", title="Do you want to quit?")


cli = typer.Typer(  # the plain help of normcompress --help, and its -h
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@cli.command()
def run(
    runs_dir: Annotated[
        Path | None, typer.Option("--runs-dir", envvar=RUNS_DIR_ENV, help="Run store directory.", show_default="runs")
    ] = None,
    show_version: Annotated[bool, typer.Option("--version", "-V", help="Print the version and exit.")] = False,
) -> None:
    """The normcompress terminal app: pick a norm, train, watch the loss live, compare runs.

    Runs: s start, x stop, r resume, S a study of norms x seeds, q quit.

    Chart: m metric, l log scale, a smoothing, v x axis, z zoom, Z epochs to show, e export.

    Runs table: Space overlay, Enter open, d delete, t tag, o sort, / filter.

    ? every key and pane; Ctrl+P every action.
    """
    if show_version:
        typer.echo(f"normcompress-tui {installed_version()}")
        raise typer.Exit(0)
    app = NormcompressApp(RunStore(runs_dir))
    app.run()
    raise typer.Exit(app.return_code or 0)  # an app that died (Textual printed why) exits non-zero


def main() -> None:
    """Console entry point: a bad store or option is one line on stderr and an exit code, never a traceback."""
    escape_what_the_terminal_cannot_show()
    try:
        code = cli(prog_name="normcompress-tui", standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors: a bad option
        print(
            f"normcompress-tui: error: {one_line(exc.format_message())} (see: normcompress-tui --help)", file=sys.stderr
        )
        code = exc.exit_code
    except NormcompressError as exc:
        print(f"normcompress-tui: error: {one_line(exc)}", file=sys.stderr)
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("normcompress-tui: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
