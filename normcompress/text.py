"""Showing strings that come from users and files (never as markup, never as raw control codes), and
numbers set in columns whose digits line up.

A file name, a norm, a run's stored message or a .ncz id may hold `[/x]` (Rich/Textual markup) or an
ESC sequence. Drivers print such strings as plain text, and pass them through `printable` first so a
control character shows as `\\x1b` instead of reaching the terminal.
"""

import io
import math
import re
import sys

from rich.text import Text

_KEPT = {"\n", "\t"}
_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
_UNIT = r"(?:\s?(?:%|[a-zA-Z]{1,3}))?"
# 11.84, 5,860, 1e-05, 0.8s, 12 dB, 2/2, 20x20, 11.914 ± 0.029, 2m05s: what reads as a figure
_FIGURE = re.compile(rf"{_NUMBER}{_UNIT}(?:\s?[/x±]\s?{_NUMBER}{_UNIT})?|\d+m\d\ds")
_NOTHING = ("", "-")  # a cell with no value says nothing of its column's kind


def figure_columns(rows: list[list[str]]) -> list[bool]:
    """Which columns of a table hold figures alone (to right-align, so their digits line up), not text (to
    left-align, so a path or a tag list reads from its start); an empty cell or "-" says nothing."""
    kinds = []
    for cells in zip(*rows, strict=True):
        values = [c.strip() for c in cells if c.strip() not in _NOTHING]
        kinds.append(bool(values) and all(_FIGURE.fullmatch(v) for v in values))
    return kinds


def printable(text: object, keep_newlines: bool = True) -> str:
    """`text` with every control character (C0, DEL, C1, and line/paragraph separators) written as an escape."""
    out = []
    for char in str(text):
        if (char in _KEPT and keep_newlines) or char.isprintable() or char == " ":
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def one_line(text: object) -> str:
    """`text` as printable, with newlines escaped too: a value inside a line of output (a path, a message)."""
    return printable(text, keep_newlines=False)


def count(number: int, noun: str) -> str:
    """`1 epoch`, `3 epochs`: a count with its noun in the right number."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def figures(values: list[float | None], digits: int = 5) -> list[str]:
    """Numbers to set side by side (a table's row or column) with one number of decimals: enough for
    `digits` significant digits of the smallest (at most 8), so that right-aligned their decimal points
    line up; None is "-"."""
    sizes = [math.floor(math.log10(abs(v))) for v in values if v is not None and math.isfinite(v) and v != 0]
    decimals = min(8, max(0, digits - 1 - min(sizes))) if sizes else 0
    return ["-" if v is None else f"{v:.{decimals}f}" for v in values]


def pack_lines(parts: list[Text], width: int, separator: str) -> Text:
    """The parts in lines of at most `width` cells, each line breaking between parts, never inside one
    (Rich breaks at any space, no-break ones included); a part wider than `width` gets a line of its own."""
    packed, used = Text(), 0
    for part in parts:
        if used and used + len(separator) + len(part) <= width:
            packed.append(separator)
            used += len(separator)
        elif used:
            packed.append("\n")
            used = 0
        packed.append_text(part)
        used += len(part)
    return packed


def escape_what_the_terminal_cannot_show() -> None:
    """Text the output's encoding cannot hold (the ≤ and ± of a table under PYTHONIOENCODING=ascii or a
    Latin-1 locale) is written as a backslash escape instead of ending the command in a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
