"""Modal screens: a run's details, and a yes/no confirmation."""

from dataclasses import asdict

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError
from normcompress.metrics import ALL_METRICS, EPOCH_METRICS
from normcompress.runs import Run
from normcompress.study_config import StudyConfig
from normcompress.text import printable

from .widgets.preview import ReconstructionPreview



class DetailsScreen(ModalScreen[None]):
    """Config, per-epoch metrics and reconstructions of one run. Escape closes."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        info = self.run.info()
        config = "  ".join(f"{k}={v}" for k, v in (asdict(info.config) if info.config else {}).items())
        summary = info.summary
        message = summary.message if summary else ""
        with VerticalScroll(id="details"):  # scrolls: on a short terminal the error maps are below the fold
            yield Static(Text.assemble((info.id, "bold"), f"  {info.status}  ", printable(message)), id="details-title")
            where = f"data={info.data_source}  device={summary.device if summary else '-'}"
            yield Static(Text.assemble(printable(f"{config}\n{where}"),
                                       (printable(f"\ndamaged: {info.problem}"), "red") if info.problem else ""),
                         id="details-config")
            yield DataTable(id="details-epochs", cursor_type="row")
            yield ReconstructionPreview(id="details-preview")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("epoch", *(ALL_METRICS[k].column for k in EPOCH_METRICS))
        try:
            records = self.run.metrics()
        except NormcompressError as exc:
            self.notify(str(exc), severity="error")
            records = []
        for r in records:
            table.add_row(str(r["epoch"]), *(ALL_METRICS[k].text(r.get(k)) for k in EPOCH_METRICS))
        self.query_one(ReconstructionPreview).show(self.run.recon_path, "originals / reconstructions / |error|")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(Text(printable(self.question)))
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (n)", id="no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[str | None]):
    """One line of text asked for: Enter answers with it, Escape with None (nothing changes)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, value: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(Text(printable(self.title_text, keep_newlines=False)))
            yield Input(self.value, id="prompt-input")
            yield Label(Text(f"{self.hint} · Enter saves · Escape cancels"), classes="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)


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


HELP = """\
Panes
  Run              the settings of the next run: a norm from the list or a custom one (Lp:3,
                   0.5*L1+0.5*L2, Linf-smooth:0.05), epochs, batch, learning rate, seed, data, device
  Reconstructions  the highlighted run's validation images: originals, reconstructions, error maps
  Chart            the live run and the overlaid runs; the dashed line is PCA at the runs' latent
                   size on their data (no line for the training loss, which is in each run's norm)
  Runs             every run in the store, also those started from the CLI: the overlay mark in the
                   run's curve colour, the short id the legend shows, norm, seed, status, epochs,
                   best validation PSNR, then tags, lr, time, model, data, batch, device, id as width allows

Keys
  s  start a run            x  stop it after the current batch (kept as interrupted)
  m  next metric            l  log scale            a  next smoothing (the raw curve stays)
  v  x axis: epoch, step, training time       z  zoom: all, the last 10, 5, 2, 1 epochs
  Z  zoom to a range of epochs (3-7)          e  export the chart's view as PNG and SVG
                                                 (under the store's exports/ folder)
  space  overlay the highlighted run      enter  open it      d  delete it
  t  tag it (words of your own; `normcompress runs tag` does the same)
  r  resume it: an interrupted or failed run trains on from its last complete epoch
  S  a study: norms x seeds queued with the Run pane's settings (runs done are reused)
  /  filter runs by id, norm, tags or settings (every word must match; escape clears)
  o  sort by the next column (or click a header; again to turn the order round)
  ctrl+p  command palette (every action above, overlay all or none)
  ?  this help              q  quit (asks while a run is going)
"""


class HelpScreen(ModalScreen[None]):
    """Every key and what each pane shows. Escape closes."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Text(HELP), id="help-text")
            yield Label("Escape closes", classes="note")
