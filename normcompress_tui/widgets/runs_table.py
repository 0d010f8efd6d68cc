"""The run store as a table: Space marks a run for the chart overlay, Enter opens it, d deletes it.

The columns that tell runs apart come first and are always shown: the overlay mark in the run's curve
colour, the short id that the chart's legend shows, norm, seed, status, epochs and best validation PSNR;
the others appear as the table's width allows. A click on a header (or `o`) sorts by that column; the
filter (`/` in the app) keeps the runs that hold every term typed: comparisons such as `psnr>25` or
`model=seed`, and words to find (normcompress.runs.where, the grammar of `runs list --where` too).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from normcompress.config import TrainConfig
from normcompress.errors import UsageError
from normcompress.runs import RunInfo, Status
from normcompress.runs.where import RunFilter
from normcompress.text import count, printable


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    text: Callable[[RunInfo], str]
    sort: Callable[[RunInfo], object]  # a value of one type for every run, so that any two compare
    always: bool = False  # shown at any width; the others come in order while they fit
    when_any: bool = False  # shown only when a listed run has a value (a name)
    brief: Callable[[RunInfo], str] | None = None  # a narrower text for narrow tables
    brief_header: str | None = None

    def cell(self, info: RunInfo, compact: bool) -> str:
        return (self.brief if compact and self.brief else self.text)(info)

    def title(self, compact: bool) -> str:
        return self.brief_header if compact and self.brief_header is not None else self.header


def _config(name: str, missing=None) -> Callable[[RunInfo], object]:
    return lambda info: getattr(info.config, name) if info.config else missing


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _best(info: RunInfo) -> float | None:
    """The run's best validation PSNR over its epochs (its last one for runs saved before best was kept)."""
    return info.metrics.get("best_psnr", info.psnr)


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


STARTING = "starting"  # the status of a run's row from the key press until the store lists it as running
STATUS_MARKS = {"completed": "✓", "running": "▶", "interrupted": "‖", "failed": "✗", "damaged": "!", STARTING: "…"}
NARROW_NORM = 10  # characters of a norm shown in a narrow table (0.5*L1+0.…)


COLUMNS = (
    Column("overlay", "", lambda i: "", lambda i: 0, always=True),
    Column("short", "run", lambda i: "…" if i.status == STARTING else i.id[-6:], lambda i: i.id[-6:], always=True),
    Column("norm", "norm", lambda i: i.norm, lambda i: i.norm, always=True, brief=lambda i: _clip(i.norm, NARROW_NORM)),
    Column("seed", "seed", lambda i: _number(_config("seed")(i), "d"), lambda i: _config("seed", -1)(i), always=True),
    Column(
        "status",
        "status",
        lambda i: str(i.status),
        lambda i: str(i.status),
        always=True,
        brief=lambda i: STATUS_MARKS.get(str(i.status), "?"),
        brief_header="",
    ),
    Column(
        "epochs",
        "epochs",
        lambda i: f"{i.epochs_done}/{i.epochs}",
        lambda i: (i.epochs_done, i.epochs),
        always=True,
        brief_header="ep",
    ),
    Column(
        "psnr",
        "best dB",
        lambda i: _number(_best(i), ".2f"),
        lambda i: -1e9 if _best(i) is None else _best(i),
        always=True,
        brief_header="best",
    ),
    Column("name", "name", lambda i: i.name, lambda i: i.name, when_any=True),
    Column("tags", "tags", lambda i: " ".join(i.tags), lambda i: " ".join(i.tags)),
    Column("lr", "lr", lambda i: _number(_config("lr")(i), "g"), lambda i: _config("lr", 0.0)(i)),
    Column("duration", "time", lambda i: i.duration_text, lambda i: i.duration_s or 0.0),
    Column("model", "model", lambda i: str(_config("model", "?")(i)), lambda i: str(_config("model", "")(i))),
    Column("dataset", "data", lambda i: i.data_text, lambda i: i.data_text),
    Column("batch", "batch", lambda i: _number(_config("batch_size")(i), "d"), lambda i: _config("batch_size", 0)(i)),
    Column(
        "device",
        "device",
        lambda i: (i.summary.device if i.summary else "") or "-",
        lambda i: (i.summary.device if i.summary else "") or "",
    ),
    Column("id", "id", lambda i: i.id, lambda i: i.id),
)
BY_KEY = {c.key: c for c in COLUMNS}
CELL_PADDING = 1  # DataTable's default, each side of a cell


def fitting_columns(infos: list[RunInfo], width: int) -> tuple[list[Column], bool]:
    """The columns shown at `width` cells, and whether they are the narrow forms: every `always` column
    (narrowed, with one space between columns, when they do not fit as they are), then the others in
    order while they fit."""

    def needed(column: Column, compact: bool) -> int:
        cells = [column.title(compact) + "▼", *(printable(column.cell(i, compact), keep_newlines=False) for i in infos)]
        return max(len(c) for c in cells) + (1 if compact else 2 * CELL_PADDING)

    always = [c for c in COLUMNS if c.always]
    compact = sum(needed(c, False) for c in always) > width
    chosen, used = always, sum(needed(c, compact) for c in always)
    for column in COLUMNS:
        if column.when_any and not any(column.text(i) for i in infos):
            continue
        if not column.always and used + needed(column, compact) <= width:
            chosen.append(column)
            used += needed(column, compact)
    return sorted(chosen, key=COLUMNS.index), compact


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
        # The row under the cursor keeps its cells' own colours on the cursor's background: its overlay mark
        # is its curve's colour there too
        super().__init__(id="runs", cursor_type="row", zebra_stripes=True, cursor_foreground_priority="renderable")
        self.infos: dict[str, RunInfo] = {}  # every run of the store, shown or filtered out
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
            reverse = not self.sort_reverse if key == self.sort_key else key in ("psnr", "epochs", "duration")
        self.sort_key, self.sort_reverse = key, reverse
        self._show()

    def order_state(self) -> dict:
        return {"sort": self.sort_key, "descending": self.sort_reverse}

    def restore_order(self, state: dict) -> None:
        if state.get("sort") in BY_KEY and state["sort"] != "overlay" and isinstance(state.get("descending"), bool):
            self.sort_by(state["sort"], state["descending"])

    def action_next_sort(self) -> None:
        keys = [c.key for c in self.shown_columns if c.key != "overlay"]
        if keys:
            self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0])
            self.app.notify(
                f"runs sorted by {BY_KEY[self.sort_key].header or self.sort_key}"
                f"{' (descending)' if self.sort_reverse else ''}",
                timeout=2,
            )

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value != "overlay":
            self.sort_by(event.column_key.value)

    def on_resize(self) -> None:
        self._show()

    def visible_infos(self) -> list[RunInfo]:
        """The runs shown, in the order shown: filtered, then sorted (ties by id, newest first)."""
        shown = [i for i in self.infos.values() if self.query_filter.matches(i)]
        column = BY_KEY[self.sort_key]
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
        order = f"by {BY_KEY[self.sort_key].header or self.sort_key} {'▼' if self.sort_reverse else '▲'}"
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

    def action_delete(self) -> None:
        if self._starting_row("it is being trained: stop it first (x), then delete it"):
            return
        if info := self.highlighted_info():
            self.post_message(self.DeleteRequested(info))
