"""The study dialog: norms x seeds queued with the Run pane's other settings, here or on Ray."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError
from normcompress.study_config import StudyConfig
from normcompress.text import printable


class StudyScreen(ModalScreen):
    """A study: norms x seeds, queued and trained one after another (runs that exist are reused,
    interrupted ones resumed), with the Run form's other settings. Enter starts, Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, base: TrainConfig) -> None:
        super().__init__()
        self.base = base

    def compose(self) -> ComposeResult:
        with Vertical(id="study"):
            yield Label("A study: every norm x seed, one run after another here, or side by side on Ray")
            with Horizontal(classes="row"):
                yield Label("Norms ")
                yield Input("L2, L1, Linf-image", id="study-norms", compact=True)
            with Horizontal(classes="row"):
                yield Label("Seeds ")
                yield Input("2", type="integer", id="study-seeds", compact=True)
            with Horizontal(classes="row"):
                yield Label("Ray   ")
                yield Input("", placeholder="empty: here, one run after another; local; or HOST:PORT",
                            id="study-ray", compact=True)
            yield Label(Text(printable(f"the rest as in the Run pane: {self.base.epochs} epochs, batch "
                                       f"{self.base.batch_size}, lr {self.base.lr:g}, data {self.base.dataset}, "
                                       f"device {self.base.device}")), classes="note")
            yield Static("", id="study-problem", classes="note")
            yield Label("Enter starts · Escape cancels · the same study again reuses the runs done", classes="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            seeds = int(self.query_one("#study-seeds", Input).value or "0")
            norms = [n.strip() for n in self.query_one("#study-norms", Input).value.split(",") if n.strip()]
            study = StudyConfig(self.base, {"norm": norms}, seeds, [self.base.device],
                                self.query_one("#study-ray", Input).value.strip() or None).validated()
        except (NormcompressError, ValueError) as exc:
            self.query_one("#study-problem", Static).update(Text(printable(f"✗ {exc}"), style="red"))
            return
        self.dismiss(study)
