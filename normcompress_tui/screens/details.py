"""A run's details: its settings, outcome, per-epoch metrics and reconstructions."""

from dataclasses import asdict

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from normcompress.errors import NormcompressError
from normcompress.history import HISTORY_FILE, HistoryError, read_history, strip
from normcompress.metrics import epoch_table
from normcompress.runs import Run
from normcompress.text import printable

from ..widgets.preview import ReconstructionPreview
from ..words import in_form_words


class DetailsScreen(ModalScreen[None]):
    """Config, per-epoch metrics and reconstructions of one run. Escape closes."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        info = self.run.info()
        settings = asdict(info.config) if info.config else {}
        config = "  ".join(f"{k}={'-' if v is None else v}" for k, v in settings.items())  # as `runs show` has them
        summary = info.summary
        message = in_form_words(summary.message) if summary else ""  # "completed 10 epochs" says its status
        heading = message if message.startswith(str(info.status)) else f"{info.status}  {message}"
        with VerticalScroll(id="details"):  # scrolls: on a short terminal the error maps are below the fold
            yield Static(Text.assemble((info.id, "bold"), "  ", printable(heading)), id="details-title")
            if info.name or info.note:  # the user's words: text, never markup
                yield Static(
                    Text(printable("\n".join(filter(None, [f"name: {info.name}" if info.name else "", info.note])))),
                    id="details-note",
                )
            where = f"data={info.data_source}  trained on {summary.device if summary else '-'}"
            if summary:
                where += f"\nversions: {summary.versions_text}" + "".join(f"\nnotice: {n}" for n in summary.notices)
            yield Static(
                Text.assemble(
                    printable(f"{config}\n{where}"),
                    (printable(f"\ndamaged: {info.problem}"), "red") if info.problem else "",
                ),
                id="details-config",
            )
            yield DataTable(id="details-epochs", cursor_type="row")
            yield ReconstructionPreview(id="details-preview")
            yield ReconstructionPreview(id="details-history")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        try:
            records = self.run.metrics()
        except NormcompressError as exc:
            self.notify(str(exc), severity="error")
            records = []
        headers, rows = epoch_table(records)  # the machine's figures too, where the run kept them
        table.add_columns(*(Text(header, justify="right") for header in headers))
        for row in rows:
            table.add_row(*(Text(cell, justify="right") for cell in row))  # the digits line up
        self.query_one("#details-preview", ReconstructionPreview).show(
            self.run.recon_path, "originals / reconstructions / |error|"
        )
        self.show_history()

    def show_history(self) -> None:
        """The run's image history: the originals on top, then its reconstructions at each epoch kept."""
        strip_pane = self.query_one("#details-history", ReconstructionPreview)
        strip_pane.border_title = "Image history"
        try:
            history = read_history(self.run.path / HISTORY_FILE)
        except HistoryError as exc:
            strip_pane.say(f"image history: {exc.reason}")
            return
        if history is None:
            strip_pane.display = False  # a run from before the history, or one with no epoch yet
            return
        epochs = ", ".join(map(str, history.epochs))
        strip_pane.show_picture(strip(history), f"originals, then the reconstructions after epochs {epochs}")
