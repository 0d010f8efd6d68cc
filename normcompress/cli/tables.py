"""Plain-text tables as the commands print them: text left-aligned and numbers right-aligned, like
`docker ps`; on a terminal narrower than the table, in blocks of columns that fit, nothing cut."""

from ..console import terminal_width
from ..text import figure_columns, one_line


def columns(headers: list[str], rows: list[list[str]]) -> str:
    """Aligned columns, every cell on one line with its control characters escaped: a column of figures
    right-aligned (its digits line up), any other left-aligned (a path or a tag list reads from its start)."""
    headers, rows = [one_line(h) for h in headers], [[one_line(c) for c in row] for row in rows]
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    shape = list(zip(widths, figure_columns(rows) if rows else [False] * len(headers), strict=True))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if right else c.ljust(w) for c, (w, right) in zip(cells, shape, strict=True))

    return "\n".join(line(r).rstrip() for r in [headers, *rows])


def fitted_columns(headers: list[str], rows: list[list[str]], width: int, turn: bool = True) -> str:
    """`columns` fitted to `width`: as it is when it fits, else (`turn`) turned round (one row per column,
    as `runs compare` prints), else in blocks of columns that each fit, the first column repeated in
    each. Nothing is cut."""
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


def terminal_table(headers: list[str], rows: list[list[str]], turn: bool = False) -> str:
    """`columns` in a pipe or a file (a line per row, for grep and awk); on a terminal narrower than the
    table, turned round where `turn` says so (a study's few norms over its metrics), else in blocks of
    columns that fit, the first column in each (a row broke over two lines)."""
    width = terminal_width()
    return fitted_columns(headers, rows, width, turn) if width else columns(headers, rows)


def _block(headers: list[str], rows: list[list[str]], start: int, end: int) -> str:
    """The first column and columns start to end-1."""
    picked = [0, *range(start, end)]
    return columns([headers[i] for i in picked], [[row[i] for i in picked] for row in rows])


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def side_by_side(headers: list[str], rows: list[list[str]]) -> str:
    """Values to read across (`runs diff`'s two runs): `columns` in a pipe or where it fits; on a narrower
    terminal each row's first cell over its values, each beside its column's header (blocks of columns
    would part the values to compare)."""
    text, width = columns(headers, rows), terminal_width()
    if not width or _widest(text) <= width:
        return text
    labels = [one_line(h) for h in headers[1:]]
    pad = max(map(len, labels), default=0)
    lines = []
    for first, *cells in rows:
        lines += [
            one_line(first),
            *(f"    {label:<{pad}}  {one_line(c)}" for label, c in zip(labels, cells, strict=True)),
        ]
    return "\n".join(lines)
