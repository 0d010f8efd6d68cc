"""The run store as a table: Space marks a run for the chart overlay, Enter opens it, d deletes it.

The columns that tell runs apart come first and are always shown: the overlay mark in the run's curve
colour, the short id that the chart's legend shows, norm, seed, status, epochs and best validation PSNR;
then the settings the listed runs differ in and their final metrics, and the others as the table's
width allows (run_columns.py). A click on a header (or `o`) sorts by that column; the
filter (`/` in the app) keeps the runs that hold every term typed: comparisons such as `psnr>25` or
`model=seed`, and words to find (normcompress.runs.where, the grammar of `runs list --where` too).
"""

from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from normcompress.config import TrainConfig
from normcompress.errors import UsageError
from normcompress.runs import RunInfo, Status
from normcompress.runs.where import RunFilter
from normcompress.text import count, figure_columns, printable

from .run_columns import BY_KEY, CELL_PADDING, STARTING, Column, column_for, fitting_columns


def starting_info(config: TrainConfig | None = None, resumed: RunInfo | None = None) -> RunInfo:
    """The row of a run that is starting: a new run of `config` (no id yet), or a run being resumed."""
    if resumed is not None:
        return replace(resumed, status=STARTING)  # "starting" is shown, never stored
    return RunInfo(STARTING, Path(), STARTING, config, None, None)


class RunsTable(DataTable):
    BORDER_TITLE = "Runs"
    BINDINGS = [
        Binding("space", "toggle_overlay", "Overlay"),
        Binding("enter", "details", "Open"),
        Binding("d", "delete", "Delete"),
        Binding("o", "next_sort", "Sort"),
        Binding("D", "diff", "Diff", show=False),
    ]

    class OverlayToggled(Message):
        def __init__(self, info: RunInfo, on: bool) -> None:
            super().__init__()
            self.info, self.on = info, on

    class DetailsRequested(Message):
        def __init__(self, info: RunInfo) -> None:
            super().__init__()
            self.info = info

    class DiffRequested(Message):
        def __init__(self, a: RunInfo, b: RunInfo) -> None:
            super().__init__()
            self.a, self.b = a, b

    class DeleteRequested(Message):
        def __init__(self, info: RunInfo) -> None:
            super().__init__()
            self.info = info

    def __init__(self) -> None:
        # The row under the cursor keeps its cells' own colours on the cursor's background: its overlay mark
        # is its curve's colour there too
        super().__init__(id="runs", cursor_type="row", zebra_stripes=True, cursor_foreground_priority="renderable")
        self.infos: dict[str, RunInfo] = {}  # every run of the store, shown or filtered out
        self._cursor_run: str | None = None  # to tell the cursor's moves from the table drawn again
        self.overlay_ids: set[str] = set()
        self.swatches: dict[str, Text] = {}  # run id -> its curve's colour (or marker), set by the app
        self.sort_key, self.sort_reverse = "id", True  # ids begin with their start time: newest on top
        self.query_text = ""
        self.query_filter = RunFilter((), ())
        self.query_problem: str | None = None  # why the typed filter cannot be read (then its words are found)
        self.shown_columns: list[Column] = []
        self._headers: list[Text] = []
        self._shown_ids: list[str] = []
        self._cells: dict[str, tuple[Text, ...]] = {}
        self.starting: RunInfo | None = None  # a run starting: shown on top until the store lists it running

    # -- what is shown -------------------------------------------------------------------------
    def update_runs(self, infos: list[RunInfo]) -> None:
        """Take the store's listing: rows change in place when the same runs are shown in the same
        order, so the cursor stays on the run the user left it on."""
        self.infos = {i.id: i for i in infos}
        self.overlay_ids &= set(self.infos)
        listed = self.starting and self.infos.get(self.starting.id)
        if listed and listed.status in (Status.RUNNING, Status.COMPLETED):
            self.starting = None  # the run itself now has its row
        self._show()

    def show_starting(self, info: RunInfo | None) -> None:
        """Show a run as `starting` on top of the table (None: no run is starting). Given its id once it has
        one, the row stays until the store's listing shows that run running."""
        self.starting = info
        self._show()

    def set_query(self, text: str) -> None:
        """Filter by what is typed; a term that cannot be read is said under the table, and meanwhile every
        term is found as a word (so a half-typed `psnr>` hides nothing it should not)."""
        self.query_text = text
        try:
            self.query_filter, self.query_problem = RunFilter.parse(text), None
        except UsageError as exc:
            self.query_filter, self.query_problem = RunFilter((), tuple(text.lower().split())), str(exc)
        self._show()

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by a column; sorting again by the same column turns the order round."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else key in ("psnr", "ssim", "epochs", "duration")
        self.sort_key, self.sort_reverse = key, reverse
        self._show()

    def order_state(self) -> dict:
        return {"sort": self.sort_key, "descending": self.sort_reverse}

    def restore_order(self, state: dict) -> None:
        sort = state.get("sort")
        if (
            isinstance(sort, str)
            and column_for(sort)
            and sort != "overlay"
            and isinstance(state.get("descending"), bool)
        ):
            self.sort_by(state["sort"], state["descending"])

    def action_next_sort(self) -> None:
        keys = [c.key for c in self.shown_columns if c.key != "overlay"]
        if keys:
            self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0])
            self.app.notify(
                f"runs sorted by {self._sort_column.header or self.sort_key}"
                f"{' (descending)' if self.sort_reverse else ''}",
                timeout=2,
            )

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value != "overlay":
            self.sort_by(event.column_key.value)

    def on_resize(self) -> None:
        self._show()

    @property
    def _sort_column(self) -> Column:
        """The column the rows are sorted by (a setting's column sorts even while it is not shown)."""
        return column_for(self.sort_key) or BY_KEY["short"]

    def visible_infos(self) -> list[RunInfo]:
        """The runs shown, in the order shown: filtered, then sorted (ties by id, newest first)."""
        shown = [i for i in self.infos.values() if self.query_filter.matches(i)]
        column = self._sort_column
        shown.sort(key=lambda i: i.id, reverse=True)
        shown.sort(key=column.sort, reverse=self.sort_reverse)
        if self.starting is not None:  # on top, whatever the order and the filter: what was just asked for
            shown = [self.starting, *(i for i in shown if i.id != self.starting.id)]
        return shown

    def _show(self) -> None:
        if not self.is_mounted:
            return
        visible = self.visible_infos()
        columns, compact = fitting_columns(visible, self.scrollable_content_region.width or self.size.width)
        self.cell_padding = 0 if compact else CELL_PADDING  # narrow: one space before each cell instead
        headers = [self._header(c, compact) for c in columns]
        ids = [i.id for i in visible]
        cells = {i.id: self._row(i, columns, compact) for i in visible}
        rows = [[cell.plain for cell in row] for row in cells.values()]
        for index, figures in enumerate(figure_columns(rows) if rows else []):  # figures right, text left
            if figures and not columns[index].words:
                for cell in [headers[index], *(row[index] for row in cells.values())]:
                    cell.justify = "right"
        if headers == self._headers and ids == self._shown_ids:
            for run_id, row in cells.items():
                if row != self._cells.get(run_id):
                    for column, value in zip(columns, row, strict=False):
                        self.update_cell(run_id, column.key, value, update_width=True)  # "9/20" -> "10/20"
        else:
            highlighted = self.highlighted_info()
            self.clear(columns=headers != self._headers)
            if headers != self._headers:
                for column, header in zip(columns, headers, strict=False):
                    self.add_column(header, key=column.key)
            for run_id in ids:
                self.add_row(*cells[run_id], key=run_id)
            if highlighted is not None and highlighted.id in cells:
                self.move_cursor(row=ids.index(highlighted.id), animate=False)
        self.shown_columns, self._headers, self._shown_ids, self._cells = columns, headers, ids, cells
        total = len(self.infos)
        shown = (
            f"{len(ids)} of {total} match {self.query_text.strip()!r}"
            if self.query_text.strip()
            else count(total, "run")
        )
        order = f"by {self._sort_column.header or self.sort_key} {'▼' if self.sort_reverse else '▲'}"
        problem = f" · {self.query_problem}" if self.query_problem else ""
        self.border_subtitle = printable(f"{shown} · {order}{problem}", keep_newlines=False)

    def _header(self, column: Column, compact: bool) -> Text:
        """The column's name, with an arrow on the column the rows are sorted by."""
        lead = " " if compact else ""
        if column.key != self.sort_key:
            return Text(lead + column.title(compact))
        return Text(lead + column.title(compact) + ("▼" if self.sort_reverse else "▲"), style="bold")

    def _row(self, info: RunInfo, columns: list[Column], compact: bool) -> tuple[Text, ...]:
        """The row's cells as plain text: a norm, an id or a tag is data, never markup."""
        lead = " " if compact else ""
        return tuple(
            self._mark(info.id, compact)
            if c.key == "overlay"
            else Text(lead + printable(c.cell(info, compact), keep_newlines=False))
            for c in columns
        )

    def _mark(self, run_id: str, compact: bool) -> Text:
        """The overlay column's cell: the run's swatch when it is on the chart (a space before it when
        narrow, as before every narrow cell)."""
        mark = self.swatches.get(run_id, Text("●")) if run_id in self.overlay_ids else Text(" ")
        return Text(" " * compact + mark.plain, style=mark.style)

    def _update_mark(self, run_id: str) -> None:
        if run_id in self._cells:
            mark = self._mark(run_id, compact=self.cell_padding == 0)
            self.update_cell(run_id, "overlay", mark)
            self._cells[run_id] = (mark, *self._cells[run_id][1:])

    def paint(self, run_id: str, swatch: Text) -> None:
        """Show an overlaid run's mark in its curve's colour, so that a row and a curve match at a glance."""
        self.swatches[run_id] = swatch
        self._update_mark(run_id)

    def highlighted_info(self) -> RunInfo | None:
        """The run under the cursor, as the store lists it (a starting run's row is none until it is listed)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.infos.get(key)

    def moved_to(self, highlighted: DataTable.RowHighlighted) -> RunInfo | None:
        """The run the cursor has moved to, or None where `highlighted` is a row the cursor only passed
        while the table was drawn again (a resize, a run joining it) or the run it was already on."""
        info = self.highlighted_info()
        if info is None or info.id != highlighted.row_key.value or info.id == self._cursor_run:
            return None
        self._cursor_run = info.id
        return info

    # -- actions ---------------------------------------------------------------------------------
    def _starting_row(self, refusal: str, unless_it_has_files: bool = False) -> bool:
        """Whether the cursor is on the row of a run that is starting, and if so say `refusal`: a new run has
        no files to open, overlay or delete yet (a resumed one has, when `unless_it_has_files`)."""
        if not self.row_count or self.starting is None:
            return False
        if self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value != self.starting.id:
            return False
        if unless_it_has_files and self.starting.id in self.infos:
            return False
        self.app.notify(f"this run is starting: {refusal}", severity="warning")
        return True

    def action_toggle_overlay(self) -> None:
        if self._starting_row("it is on the chart as the live run from its first step"):
            return
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
        self._update_mark(run_id)
        self.post_message(self.OverlayToggled(info, on))

    def action_details(self) -> None:
        if self._starting_row("open it once it has its first files", unless_it_has_files=True):
            return
        if info := self.highlighted_info():
            self.post_message(self.DetailsRequested(info))

    def action_diff(self) -> None:
        """D: the two runs on the chart side by side, or the one on the chart against the highlighted one."""
        marked = [self.infos[i] for i in sorted(self.overlay_ids) if i in self.infos]
        highlighted = self.highlighted_info()
        if len(marked) == 1 and highlighted is not None and highlighted.id != marked[0].id:
            marked.append(highlighted)
        if len(marked) != 2:
            many = f"; {len(marked)} are on the chart" if len(marked) > 2 else ""
            advice = "mark two runs for the chart (space), or one and highlight another, then press D"
            self.app.notify(f"D sets two runs side by side{many}: {advice}", severity="warning")
            return
        self.post_message(self.DiffRequested(*marked))

    def action_delete(self) -> None:
        if self._starting_row("it is being trained: stop it first (x), then delete it"):
            return
        if info := self.highlighted_info():
            self.post_message(self.DeleteRequested(info))
