"""The runs table's columns: what each shows of a run, how it sorts, and which fit a width.

The columns that tell runs apart come first and are always shown. Then a column for each training
setting in which the listed runs differ (lr, model, rate_lambda, limit...): the settings table a tracker
user expects, sortable like any column; then the final metrics beside best PSNR, and the rest as the
width allows.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields

from normcompress.config import TrainConfig
from normcompress.runs import RunInfo
from normcompress.text import printable


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
    words: bool = False  # never right-aligned as figures are (a hex id such as 61e272 only looks like one)

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


def _metric(info: RunInfo, key: str) -> float:
    value = info.metrics.get(key)
    return -1e9 if value is None else value


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


STARTING = "starting"  # the status of a run's row from the key press until the store lists it as running
STATUS_MARKS = {"completed": "✓", "running": "▶", "interrupted": "‖", "failed": "✗", "damaged": "!", STARTING: "…"}
NARROW_NORM = 10  # characters of a norm shown in a narrow table (0.5*L1+0.…)


COLUMNS = (
    Column("overlay", "", lambda i: "", lambda i: 0, always=True),
    Column(
        "short",
        "run",
        lambda i: "…" if i.status == STARTING else i.id[-6:],
        lambda i: i.id[-6:],
        always=True,
        words=True,
    ),
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
    Column(  # a codec model's rate: blank for the other runs, no column without one
        "bpp",
        "bpp",
        lambda i: "" if i.metrics.get("bpp") is None else f"{i.metrics['bpp']:.3f}",
        lambda i: _metric(i, "bpp"),
        when_any=True,
    ),
    Column("tags", "tags", lambda i: " ".join(i.tags), lambda i: " ".join(i.tags)),
    Column("ssim", "SSIM", lambda i: _number(i.metrics.get("ssim"), ".3f"), lambda i: _metric(i, "ssim")),
    Column(
        "maxabs",
        "max|e|",
        lambda i: _number(i.metrics.get("maxabs_worst"), ".3f"),
        lambda i: _metric(i, "maxabs_worst"),
    ),
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
SETTING = "setting:"  # the key of a setting's column: setting:lr
# Settings with a column of their own anyway (norm, seed; epochs as done/asked), and the settings the
# fixed columns show when the runs do not differ in them.
OWN_COLUMNS = {"norm", "seed", "epochs", "data_dir"}
FIXED_SETTINGS = {"lr": "lr", "model": "model", "dataset": "dataset", "batch_size": "batch"}
SETTING_NAMES = tuple(f.name for f in fields(TrainConfig))


def _sortable(value: object) -> tuple:
    """One setting's values sort together; a run without it (damaged) last."""
    if value is None:
        return (1, 0.0, "")
    if isinstance(value, bool | int | float):
        return (0, float(value), "")
    return (0, 0.0, str(value))


def _setting(name: str) -> Callable[[RunInfo], object]:
    """A run's value of a setting as the table shows it; for the dataset, the data it really trained on
    (a run that asked for CIFAR-10 and fell back to the sample trained on the sample), as the CLI shows it."""
    if name == "dataset":
        return lambda info: info.data_source if info.config else None
    return _config(name)


def setting_column(name: str) -> Column:
    """A column of one training setting."""
    read = _setting(name)
    return Column(
        SETTING + name,
        "data" if name == "dataset" else name,
        lambda i: "-" if read(i) is None else format(read(i), "g") if isinstance(read(i), float) else str(read(i)),
        lambda i: _sortable(read(i)),
    )


def column_for(key: str) -> Column | None:
    """The column of a key (a fixed column's, or setting:NAME), None for one this table does not have."""
    if key.startswith(SETTING) and key[len(SETTING) :] in SETTING_NAMES:
        return setting_column(key[len(SETTING) :])
    return BY_KEY.get(key)


def differing_settings(infos: list[RunInfo]) -> list[str]:
    """The settings whose values differ among these runs (those with their own column left out)."""
    known = [i for i in infos if i.config is not None]
    return [
        name for name in SETTING_NAMES if name not in OWN_COLUMNS and len({repr(_setting(name)(i)) for i in known}) > 1
    ]


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
    chosen, used = list(always), sum(needed(c, compact) for c in always)
    differing = differing_settings(infos)
    shown_fixed = {FIXED_SETTINGS[name] for name in differing if name in FIXED_SETTINGS}
    after_always = [c for c in COLUMNS if c.when_any] + [setting_column(name) for name in differing]
    for column in after_always + [c for c in COLUMNS if not (c.always or c.when_any)]:
        if column.key in shown_fixed:
            continue  # the runs differ in it: its setting's column, further left, shows it
        if column.when_any and not any(column.text(i) for i in infos):
            continue
        if used + needed(column, compact) <= width:
            chosen.append(column)
            used += needed(column, compact)
    return chosen, compact
