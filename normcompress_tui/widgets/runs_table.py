"""The run store as a table: Space marks a run for the chart overlay, Enter opens it, d deletes it."""

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from normcompress.runs import RunInfo
from normcompress.text import printable

COLUMNS = ("", "norm", "status", "epochs", "val PSNR", "duration", "id")  # the long id last
COLUMN_KEYS = ("overlay", *COLUMNS[1:])


class RunsTable(DataTable):
    BORDER_TITLE = "Runs"
    BINDINGS = [
        Binding("space", "toggle_overlay", "Overlay"),
        Binding("enter", "details", "Open"),
        Binding("d", "delete", "Delete"),
    ]

    class OverlayToggled(Message):
        def __init__(self, info: RunInfo, on: bool) -> None:
            super().__init__()
            self.info, self.on = info, on

    class DetailsRequested(Message):
        def __init__(self, info: RunInfo) -> None:
            super().__init__()
            self.info = info

    class DeleteRequested(Message):
        def __init__(self, info: RunInfo) -> None:
            super().__init__()
            self.info = info

    def __init__(self) -> None:
        super().__init__(id="runs", cursor_type="row", zebra_stripes=True)
        self.infos: dict[str, RunInfo] = {}
        self.overlay_ids: set[str] = set()
        self.swatches: dict[str, Text] = {}  # run id -> its curve's colour (or marker), set by the app

    def on_mount(self) -> None:
        for label, key in zip(COLUMNS, COLUMN_KEYS):
            self.add_column(label, key=key)

    def update_runs(self, infos: list[RunInfo]) -> None:
        """Add, update and remove rows in place, newest first, so the cursor stays on the run the user left it on."""
        highlighted = self.highlighted_info()
        added = False
        fresh = {i.id: i for i in infos}
        for gone in set(self.infos) - set(fresh):
            self.remove_row(gone)
            self.overlay_ids.discard(gone)
        for info in infos:
            if self.infos.get(info.id) is info:
                continue  # the store hands back the same object for a run that did not change
            cells = self._cells(info)
            if info.id in self.infos:
                if self._cells(self.infos[info.id]) != cells:
                    for column, value in zip(COLUMN_KEYS, cells):
                        self.update_cell(info.id, column, value)
            else:
                self.add_row(*cells, key=info.id)
                added = True
        self.infos = fresh
        if added:
            self.sort("id", key=lambda cell: cell.plain, reverse=True)  # ids begin with their start time: newest on top
            if highlighted is not None and highlighted.id in fresh:
                self.move_cursor(row=self.get_row_index(highlighted.id), animate=False)

    def _cells(self, info: RunInfo) -> tuple[Text, ...]:
        """The row's cells as plain text: a norm or an id is data, never markup."""
        psnr = "-" if info.psnr is None else f"{info.psnr:.2f}"
        cells = (info.norm, str(info.status), f"{info.epochs_done}/{info.epochs}", psnr, info.duration_text, info.id)
        return (self._mark(info.id), *(Text(printable(c, keep_newlines=False)) for c in cells))

    def _mark(self, run_id: str) -> Text:
        return self.swatches.get(run_id, Text("●")) if run_id in self.overlay_ids else Text(" ")

    def paint(self, run_id: str, swatch: Text) -> None:
        """Show an overlaid run's mark in its curve's colour, so that a row and a curve match at a glance."""
        self.swatches[run_id] = swatch
        if run_id in self.infos:
            self.update_cell(run_id, "overlay", self._mark(run_id))

    def highlighted_info(self) -> RunInfo | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.infos.get(key)

    def action_toggle_overlay(self) -> None:
        if info := self.highlighted_info():
            self.set_overlay(info.id, info.id not in self.overlay_ids)

    def set_overlay(self, run_id: str, on: bool) -> None:
        """Put a run on the chart or take it off (and say so to the app); nothing when it already is so."""
        info = self.infos.get(run_id)
        if info is None or (run_id in self.overlay_ids) == on:
            return
        (self.overlay_ids.add if on else self.overlay_ids.discard)(run_id)
        if not on:
            self.swatches.pop(run_id, None)
        self.update_cell(run_id, "overlay", self._mark(run_id))
        self.post_message(self.OverlayToggled(info, on))

    def action_details(self) -> None:
        if info := self.highlighted_info():
            self.post_message(self.DetailsRequested(info))

    def action_delete(self) -> None:
        if info := self.highlighted_info():
            self.post_message(self.DeleteRequested(info))
