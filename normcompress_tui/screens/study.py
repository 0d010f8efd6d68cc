"""The study dialog: norms x any other settings x seeds, queued with the Run pane's other settings, here
or on Ray (the CLI's `study --norms ... --grid ... --seeds ...`)."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError, UsageError
from normcompress.study_config import StudyConfig, parse_grid
from normcompress.text import printable

from ..words import in_form_words

STACK_CHOICES = {"auto": None, "on": True, "off": False}  # None: the app decides (stacked on one GPU)


def field_row(name: str, field: Input) -> Horizontal:
    """One line of the dialog: the field's name in a column of its own, then the field."""
    return Horizontal(Label(f"{name:<6}"), field, classes="row")


class StudyScreen(ModalScreen):
    """A study: norms x seeds, queued and trained one after another (runs that exist are reused,
    interrupted ones resumed), with the Run form's other settings. Enter starts, Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, base: TrainConfig) -> None:
        super().__init__()
        self.base = base

    def compose(self) -> ComposeResult:
        with Vertical(id="study"):
            yield Label("A study: every norm x grid point x seed, here or side by side on Ray")
            yield field_row("Norms", Input("L2, L1, Linf-image", id="study-norms", compact=True))
            yield field_row(
                "Grid",
                Input(
                    "",
                    placeholder="more settings to sweep: lr=1e-3,3e-3 model=seed,pca-refine",
                    id="study-grid",
                    compact=True,
                ),
            )
            yield field_row("Seeds", Input("2", type="integer", id="study-seeds", compact=True))
            yield field_row(
                "Ray",
                Input(
                    "",
                    placeholder="empty: here, one run after another; local; or HOST:PORT",
                    id="study-ray",
                    compact=True,
                ),
            )
            yield field_row(
                "Stack",
                Input(
                    "", placeholder="auto (as one stacked model on one GPU); on; off", id="study-stack", compact=True
                ),
            )
            yield Label(
                Text(
                    printable(
                        f"the rest as in the Run pane: {self.base.epochs} epochs, batch "
                        f"{self.base.batch_size}, lr {self.base.lr:g}, data {self.base.dataset}, "
                        f"device {self.base.device}"
                    )
                ),
                classes="note",
            )
            yield Static("", id="study-problem", classes="note")
            yield Label("Enter starts · Escape cancels · the same study again reuses the runs done", classes="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            study = self.study()
        except (NormcompressError, ValueError) as exc:
            message = in_form_words(str(exc))
            self.query_one("#study-problem", Static).update(Text(printable(f"✗ {message}"), style="red"))
            return
        self.dismiss(study)

    def study(self) -> StudyConfig:
        """The study the fields describe, checked by the same StudyConfig as `normcompress study`."""
        seeds_text = self.query_one("#study-seeds", Input).value.strip()
        if not seeds_text.isdigit():
            raise UsageError(f"Seeds: {seeds_text!r} is not a whole number")
        norms = [n.strip() for n in self.query_one("#study-norms", Input).value.split(",") if n.strip()]
        if not norms:
            raise UsageError("Norms: type at least one norm, e.g. L2, L1")
        grid = parse_grid(self.query_one("#study-grid", Input).value.split())
        if "norm" in grid:
            raise UsageError("Grid: the norms have a field of their own (Norms)")
        ray = self.query_one("#study-ray", Input).value.strip() or None
        stack_text = self.query_one("#study-stack", Input).value.strip().lower() or "auto"
        if stack_text not in STACK_CHOICES:
            raise UsageError(f"Stack: {stack_text!r} is not one of auto, on, off")
        return StudyConfig(
            self.base,
            {"norm": norms, **grid},
            int(seeds_text),
            [self.base.device],
            ray,
            stack=STACK_CHOICES[stack_text],
        ).validated()
