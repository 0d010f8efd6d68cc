"""Plain-text tables as the commands print them: text left-aligned and numbers right-aligned, like
`docker ps`; on a terminal narrower than the table, in blocks of columns that fit, nothing cut."""

import re
import shutil

from ..console import terminal_width
from ..text import one_line

_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
_UNIT = r"(?:\s?(?:%|[a-zA-Z]{1,3}))?"
# 11.84, 5,860, 1e-05, 0.8s, 12 dB, 2/2, 20x20, 11.914 ± 0.029, 2m05s: what reads as a figure
_FIGURE = re.compile(rf"{_NUMBER}{_UNIT}(?:\s?[/x±]\s?{_NUMBER}{_UNIT})?|\d+m\d\ds")
_NOTHING = ("", "-")  # a cell with no value says nothing of its column's kind


def is_figure(cell: str) -> bool:
    return bool(_FIGURE.fullmatch(cell))


def columns(headers: list[str], rows: list[list[str]]) -> str:
    """Aligned columns, every cell on one line with its control characters escaped: a column of figures
    right-aligned (its digits line up), any other left-aligned (a path or a tag list reads from its start)."""
    headers, rows = [one_line(h) for h in headers], [[one_line(c) for c in row] for row in rows]
    shape = []
    for header, *cells in zip(headers, *rows, strict=True):
        values = [c for c in cells if c not in _NOTHING]
        shape.append((max(len(c) for c in [header, *cells]), bool(values) and all(map(is_figure, values))))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if right else c.ljust(w) for c, (w, right) in zip(cells, shape, strict=True))

    return "\n".join(line(r).rstrip() for r in [headers, *rows])


def fitted_columns(headers: list[str], rows: list[list[str]], width: int | None = None, turn: bool = True) -> str:
    """`columns`, fitted to the terminal (COLUMNS, or the real width): as it is when it fits, else (`turn`)
    turned round (one row per column, as `runs compare` prints), else in blocks of columns that each fit,
    the first column repeated in each. Nothing is cut."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    tables = [(headers, rows)]
    if turn:
        turned = [headers[0], *(r[0] for r in rows)], [[h, *(r[i] for r in rows)] for i, h in enumerate(headers) if i]
        tables.append(turned)
    for heads, body in tables:
        text = columns(heads, body)
        if _widest(text) <= width:
            return text
    heads, body = min(tables, key=lambda table: _widest(columns(*table)))
    blocks, start = [], 1
    while start < len(heads):
        end = start + 1
        while end < len(heads) and _widest(_block(heads, body, start, end + 1)) <= width:
            end += 1
        blocks.append(_block(heads, body, start, end))
        start = end
    return "\n\n".join(blocks)


def terminal_table(headers: list[str], rows: list[list[str]]) -> str:
    """`columns` in a pipe or a file (a line per row, for grep and awk); on a terminal narrower than the
    table, in blocks of columns that fit, the first column in each (a row broke over two lines)."""
    width = terminal_width()
    return fitted_columns(headers, rows, width, turn=False) if width else columns(headers, rows)


def _block(headers: list[str], rows: list[list[str]], start: int, end: int) -> str:
    """The first column and columns start to end-1."""
    picked = [0, *range(start, end)]
    return columns([headers[i] for i in picked], [[row[i] for i in picked] for row in rows])


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())
