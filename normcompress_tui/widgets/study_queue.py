"""A study's queue under the progress bar: each norm x seed with its state (and on Ray, the epoch each
running run has finished), while the study runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from normcompress.text import printable

if TYPE_CHECKING:
    from normcompress.events import StudyProgress

MARKS = {
    "waiting": ("·", "dim"),
    "training": ("▶", "bold"),
    "resuming": ("▶", "bold"),
    "epoch": ("▶", "bold"),
    "retrying": ("↻", "yellow"),
    "reused": ("✓", "green"),
    "finished": ("✓", "green"),
    "failed": ("✗", "red"),
    "interrupted": ("‖", "yellow"),  # still training when the study ended: stopped, or its process died
}
RUNNING = ("training", "resuming", "epoch", "retrying")


class StudyQueue(Static):
    """One line: `study 3/8  ✓ L2 seed 0  ✓ L2 seed 1  ▶ L1 seed 0  · L1 seed 1 …`; hidden without a study."""

    def __init__(self) -> None:
        super().__init__(id="study-queue")
        self.states: dict[str, str] = {}  # label -> state, in queue order
        self.failures: dict[str, str] = {}
        self.epochs: dict[str, str] = {}  # label -> "3/10", for runs on Ray
        self.done = self.total = 0

    def on_mount(self) -> None:
        self.display = False

    def begin(self, labels: list[str]) -> None:
        self.states = dict.fromkeys(labels, "waiting")
        self.failures, self.epochs, self.done, self.total = {}, {}, 0, len(labels)
        self.display = True
        self._show()

    def progress(self, update: StudyProgress) -> None:
        self.states[update.label] = update.state
        self.done = update.done
        if update.epochs:
            self.epochs[update.label] = f" {update.epoch}/{update.epochs}"
        if update.state == "failed":
            self.failures[update.label] = update.message
        self._show()

    def clear(self) -> None:
        """No study: the line goes (a single run started after a study)."""
        self.states, self.failures, self.epochs, self.done, self.total = {}, {}, {}, 0, 0
        self.display = False

    def ended(self, message: str) -> None:
        """The study's last word; a run it left training (a stop, a child that died) is kept interrupted."""
        for label, state in self.states.items():
            if state in RUNNING:
                self.states[label] = "interrupted"
        self._show(message)

    def _show(self, ending: str = "") -> None:
        failed = len(self.failures)
        text = Text(f"study {self.done}/{self.total}" + (f", {failed} failed" if failed else "") + "  ", "bold")
        for label, state in self.states.items():
            mark, style = MARKS.get(state, ("?", ""))
            epoch = self.epochs.get(label, "") if state in ("epoch", "retrying") else ""
            text.append(f"{mark} {printable(label, keep_newlines=False)}{epoch}  ", style)
        if ending:
            text.append(printable(ending, keep_newlines=False), "italic")
        self.update(text)
