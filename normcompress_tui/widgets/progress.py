"""Progress of the current run: epoch x of N, a bar with percentage and time left, images/s, the
current and best values.

Events only record; `show` draws, at the app's tick (once a second) or at once when a run starts or
ends. Events come several times a second (an epoch of the sample takes half a second), and on two
cores each repaint is taken from training. The bar is rich's, drawn in a Static: Textual's ProgressBar
repaints its time left on a timer of its own, a second repaint each second out of step with the tick.
"""

import time

from rich.progress_bar import ProgressBar
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from normcompress.events import EpochEnd, RunStarted, StepProgress
from normcompress.text import printable

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # one frame a tick (a second) while a run starts


def time_left(seconds: float | None) -> str:
    if seconds is None:
        return "--:--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02}:{minutes:02}:{secs:02}" if hours < 100 else f"{hours}h"


class TrainingProgress(Vertical):
    def __init__(self) -> None:
        super().__init__(id="progress")
        self.best_psnr: float | None = None
        self.last_psnr: float | None = None
        self.last_step: StepProgress | None = None
        self.done, self.total = 0, 1
        self._first: tuple[float, int] | None = None  # (when, steps done) at the first step seen this run
        self._texts: dict[str, str] = {}  # what each label should say
        self._drawn: dict[str, str] = {}  # what each label says
        self._bar: tuple[int, int] | None = None
        self._starting: tuple[float, str] | None = None  # (since, what) from the key press to the first step

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("idle", id="epoch-label")
            yield Static(id="bar")
            yield Label("", id="eta")
        yield Label("", id="stats")

    def on_mount(self) -> None:
        self.show()

    # -- what the events say -------------------------------------------------------------------
    def starting(self, what: str) -> None:
        """At the key press: the child imports torch and builds the data (10-48 s on a busy 2-core machine)
        before the first step, and the previous run's "completed 100%" must not stay meanwhile."""
        self.best_psnr = self.last_psnr = self.last_step = self._first = None
        self.done, self.total = 0, 1
        self._starting = (time.monotonic(), what)
        self.show()

    @property
    def is_starting(self) -> bool:
        """Still waiting for the first step since the key press (the spinner turns)."""
        return self._starting is not None

    def started(self, event: RunStarted) -> None:
        self.best_psnr = self.last_psnr = self.last_step = self._first = None
        self.done, self.total = 0, 1
        what = f"{event.config.norm} on {event.data_source}, {event.device}"
        if self._starting is not None:  # the data is ready; the first step is still to come
            self._starting = (self._starting[0], what)
        self._texts.update({"epoch-label": f"epoch {event.start_epoch + 1}/{event.config.epochs}", "stats": what})
        self.show()

    def step(self, event: StepProgress) -> None:
        self._starting = None
        self.last_step = event
        self.total, self.done = event.epochs * event.steps, (event.epoch - 1) * event.steps + event.step
        if self._first is None:
            self._first = (time.monotonic(), self.done)
        self._texts["epoch-label"] = f"epoch {event.epoch}/{event.epochs}"
        self._stats()

    def epoch_end(self, event: EpochEnd) -> None:
        self.last_psnr = event.record["psnr"]
        self.best_psnr = max(self.best_psnr or self.last_psnr, self.last_psnr)
        self._stats()  # the new PSNR at the next tick, not with the next epoch's first step

    def finished(self, status: str, message: str) -> None:
        self._starting = None
        self._first = None  # no time left to count: a stopped run's clock must not tick on
        best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
        self._texts.update({"epoch-label": status, "stats": message + best})
        self.show()

    def _stats(self) -> None:
        if self.last_step is not None:
            step = self.last_step
            last = f"  PSNR {self.last_psnr:.2f} dB" if self.last_psnr is not None else ""
            best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
            self._texts["stats"] = f"{step.images_per_s:,.0f} img/s  loss {step.loss:.4g}{last}{best}"

    def seconds_left(self) -> float | None:
        """From the steps done since the first one this app saw (a resumed run's earlier epochs, and the
        child's start, are not counted as speed)."""
        if self._first is None or self.done >= self.total:
            return None if self._first is None else 0.0
        since, first_done = self._first
        if self.done <= first_done:
            return None
        return (time.monotonic() - since) * (self.total - self.done) / (self.done - first_done)

    # -- drawing -------------------------------------------------------------------------------
    def show(self) -> None:
        """Draw what changed since the last call. The labels and the bar have fixed sizes (app.tcss), so
        an update needs no layout pass."""
        texts = {**self._texts, "eta": f"{100 * self.done / self.total:3.0f}% {time_left(self.seconds_left())}"}
        if self._starting is not None:
            since, what = self._starting
            waited = time.monotonic() - since
            texts["epoch-label"] = f"{SPINNER[int(waited) % len(SPINNER)]} starting"
            texts["stats"] = f"starting {what} ({waited:.0f} s: loading torch and the data)"
            texts["eta"] = "--% --:--:--"
        for label_id, text in texts.items():
            if self._drawn.get(label_id) != text:
                self._drawn[label_id] = text
                self.query_one(f"#{label_id}", Label).update(Text(printable(text, keep_newlines=False)), layout=False)
        if self._bar != (self.done, self.total):
            self._bar = (self.done, self.total)
            self.query_one("#bar", Static).update(ProgressBar(total=self.total, completed=self.done), layout=False)
