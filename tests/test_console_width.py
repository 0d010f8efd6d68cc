"""The study's console table fits the terminal it is printed in (it printed 143 columns at 120)."""

from normcompress.cli.options import fitted_columns

HEADERS = ["norm", *(f"metric {i} (dB)" for i in range(9))]
ROWS = [[norm, *(f"{i * 1.25:.3f} ± 0.0{i}" for i in range(9))] for norm in ("L2", "L1", "Linf-image")]


def cells(text: str) -> set[str]:
    return {cell for line in text.splitlines() for cell in line.split("  ") if cell.strip()}


def test_a_table_that_fits_is_printed_as_it_is():
    text = fitted_columns(HEADERS[:3], [r[:3] for r in ROWS], width=200)
    assert text.splitlines()[0].split() == ["norm", "metric", "0", "(dB)", "metric", "1", "(dB)"]


def test_a_wide_table_is_turned_round_and_then_split_with_nothing_cut():
    for width in (100, 60, 40):
        text = fitted_columns(HEADERS, ROWS, width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert {c.strip() for row in ROWS for c in row} <= {c.strip() for c in cells(text)}  # every value is there
    assert fitted_columns(HEADERS, ROWS, width=100).splitlines()[0].split() == ["norm", "L2", "L1", "Linf-image"]


def test_the_consoles_break_lines_between_words_on_a_terminal_and_never_in_a_pipe():
    """The terminal broke a long notice mid-word ("imag" / "es"); a log must keep each line whole."""
    from io import StringIO

    from normcompress.console import PlainConsole

    text = "notice: CIFAR-10 is not in data and could not be downloaded; using the embedded sample instead"
    terminal = PlainConsole(file=StringIO(), force_terminal=True, width=40)
    terminal.print(text)
    lines = terminal.file.getvalue().splitlines()
    assert len(lines) == 3 and all(len(line) <= 40 for line in lines) and " ".join(lines).split() == text.split()
    pipe = PlainConsole(file=StringIO(), width=40)
    pipe.print(text)
    assert pipe.file.getvalue() == text + "\n"
