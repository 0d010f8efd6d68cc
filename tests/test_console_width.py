"""The study's console table fits the terminal it is printed in (it printed 143 columns at 120)."""

from normcompress.cli.tables import columns, fitted_columns
from normcompress.text import figures

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


def test_a_study_table_is_whole_in_a_pipe_and_turned_round_on_a_narrow_terminal(monkeypatch):
    """Piped, it was fitted to a made-up 100 columns (turned round in a log), unlike every other table."""
    from normcompress.cli import tables

    monkeypatch.setattr(tables, "terminal_width", lambda: None)
    assert tables.terminal_table(HEADERS, ROWS, turn=True) == columns(HEADERS, ROWS)  # a line per norm
    monkeypatch.setattr(tables, "terminal_width", lambda: 100)
    assert tables.terminal_table(HEADERS, ROWS, turn=True).splitlines()[0].split() == ["norm", "L2", "L1", "Linf-image"]


def test_figures_are_right_aligned_and_text_left_aligned_wherever_the_column_is():
    """Alignment went by position: a path or a tag list after the figures was right-aligned, its start
    ragged ("  /tmp/rec/odd.png" under "/tmp/rec/gray.png"), and a size column left-aligned in one command
    and right in another."""
    text = columns(
        ["image", "size", "PSNR dB", "epochs", "took", "file"],
        [
            ["a.png", "20x20", "10.90", "2/2", "0.8s", "/out/long-name.png"],
            ["bb.png", "1x1", "-", "10/10", "2m05s", "/o.png"],
        ],
    )
    assert text.splitlines() == [
        "image    size  PSNR dB  epochs   took  file",
        "a.png   20x20    10.90     2/2   0.8s  /out/long-name.png",
        "bb.png    1x1        -   10/10  2m05s  /o.png",
    ]
    assert columns(["run", "PSNR dB"], []) == "run  PSNR dB"  # no rows: nothing to align by
    mixed = columns(["key", "a"], [["lr", "0.003"], ["norm", "L1"], ["mean", "11.914 ± 0.029"]])
    assert mixed.splitlines()[1] == "lr    0.003"  # a column of figures and words reads as words


def test_a_row_of_figures_shares_its_decimals_so_the_points_line_up():
    """Five significant digits each printed 11.84 beside 11.896 and 0.065469 beside 0.0045751."""
    assert figures([11.84, 11.896, 23.396]) == ["11.840", "11.896", "23.396"]
    assert figures([0.065469, 0.0045751, None]) == ["0.0654690", "0.0045751", "-"]
    assert figures([5860.3, 0.0]) == ["5860.3", "0.0"]  # a zero says nothing of the size
    assert figures([123456.0]) == ["123456"]
    assert figures([1e-12, 0.5]) == ["0.00000000", "0.50000000"]  # at most 8 decimals
    assert figures([None, None]) == ["-", "-"]


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
