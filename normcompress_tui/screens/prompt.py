"""One line of text asked for (a run's tags, the epochs to show)."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from normcompress.text import printable


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
