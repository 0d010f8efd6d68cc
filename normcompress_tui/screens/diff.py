"""Two runs side by side: every setting, fact and final metric, the keys that differ first (the app's
`runs diff`). Escape closes."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from normcompress.api import DiffRow
from normcompress.runs import RunInfo
from normcompress.text import count, printable


class DiffScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, a: RunInfo, b: RunInfo, rows: list[DiffRow]) -> None:
        super().__init__()
        self.a, self.b, self.rows = a, b, rows

    def compose(self) -> ComposeResult:
        differing = sum(r.differs for r in self.rows)
        with Vertical(id="diff"):
            yield Static(
                Text(
                    printable(
                        f"{self.a.label} against {self.b.label}: {count(differing, 'key')} differ, first",
                        keep_newlines=False,
                    )
                ),
                id="diff-title",
            )
            yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("key", key="key")
        for info in (self.a, self.b):
            table.add_column(Text(printable(f"{info.label} ({info.id})", keep_newlines=False)))
        for row in self.rows:
            style = "bold" if row.differs else "dim"
            table.add_row(
                Text(("≠ " if row.differs else "  ") + row.key, style=style),
                *(Text(printable(v, keep_newlines=False), style=style) for v in row.values),
            )
        table.focus()
