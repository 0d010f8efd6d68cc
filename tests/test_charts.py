import itertools
import math

import plotext
import pytest

from normcompress.charts import (
    LegendEntry,
    draw_curves,
    envelope,
    epoch_mapping,
    epoch_ticks,
    legend_text,
    log_ticks,
    nice_ticks,
    smooth,
)


@pytest.mark.parametrize("log", [False, True])
def test_narrow_ranges_draw_on_linear_and_log_axes(log):
    # Two runs whose PSNR differs in the fourth digit: plotext's own log mode raised IndexError here.
    series = [("L1 aaaaaa", [1, 2], [12.2277, 12.2291]), ("L2 bbbbbb", [1, 2], [12.2278, 12.2297])]
    plotext.clear_figure()
    plotext.plotsize(80, 20)
    draw_curves(plotext, series, "val PSNR (dB)", log)
    text = plotext.build()
    assert "L1 aaaaaa" in text and "L2 bbbbbb" in text and ("(log scale)" in text) == log
    assert "12.2" in text  # ticks read in real values on both axes


def test_log_ticks_are_round_real_values():
    positions, labels = log_ticks(-3, 0)  # three decades: the powers of ten
    assert positions == [-3, -2, -1, 0] and labels == ["0.001", "0.01", "0.1", "1"]
    positions, labels = log_ticks(math.log10(0.04), math.log10(0.6))  # 1-2-5 within, one precision
    assert labels == ["0.05", "0.10", "0.20", "0.50"]
    assert positions == pytest.approx([math.log10(v) for v in (0.05, 0.1, 0.2, 0.5)])
    _, labels = log_ticks(math.log10(12.05), math.log10(12.35))  # no 1-2-5 number inside: even steps
    assert labels == ["12.1", "12.2", "12.3"]
    assert len(log_ticks(-12, 12)[0]) <= 6


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (11.2, 26.2, ["15", "20", "25"]),
        (0.032, 0.524, ["0.1", "0.2", "0.3", "0.4", "0.5"]),
        (12.2277, 12.2297, ["12.2280", "12.2285", "12.2290", "12.2295"]),
        (0, 1000, ["0", "200", "400", "600", "800", "1000"]),
    ],
)
def test_linear_ticks_are_round_evenly_spaced_and_alike(low, high, expected):
    values, labels = nice_ticks(low, high)
    assert labels == expected
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    assert len(gaps) == 1 and low <= values[0] and values[-1] <= high


def test_an_epoch_maps_to_its_steps_and_training_time():
    records = [
        {"epoch": 1, "step_losses": [0.1] * 10, "epoch_time_s": 2.0},
        {"epoch": 2, "step_losses": [0.1] * 8, "epoch_time_s": 3.0},
    ]
    steps, seconds = epoch_mapping(records, "step"), epoch_mapping(records, "time")
    assert [steps(x) for x in (0.1, 1.0, 1.5, 2.0, 2.5)] == pytest.approx([1, 10, 14, 18, 22])  # past: 8 a epoch
    assert [seconds(x) for x in (0.5, 1.0, 1.5, 2.0, 3.0)] == pytest.approx([1, 2, 3.5, 5, 8])
    assert epoch_mapping(records, "epoch")(1.5) == 1.5
    assert epoch_mapping([{"epoch": 1, "loss": 0.1}], "time") is None  # saved without times: not on a time axis
    assert epoch_mapping([], "step", steps_per_epoch=5)(0.4) == pytest.approx(2)  # a live run's first epoch


def test_non_positive_values_are_left_out_of_a_log_axis():
    plotext.clear_figure()
    plotext.plotsize(60, 15)
    draw_curves(plotext, [("a", [1, 2, 3], [0.0, 0.1, 0.01])], "loss", log=True)
    assert "0.1" in plotext.build()


def test_smoothing_is_a_debiased_moving_average():
    assert smooth([3.0, 1.0, 2.0], 0.0) == [3.0, 1.0, 2.0]
    assert smooth([5.0] * 4, 0.9) == pytest.approx([5.0] * 4)  # no pull toward zero at the start
    assert smooth([0.0, 10.0], 0.5) == pytest.approx([0.0, 10.0 * 0.5 / 0.75])
    step = smooth([0.0] * 50 + [1.0] * 50, 0.9)
    assert step[49] == 0 and 0 < step[50] < 0.2 and step[-1] > 0.99
    with pytest.raises(ValueError):
        smooth([1.0], 1.0)


def test_thinning_keeps_every_spike():
    xs = list(range(10_000))
    ys = [1.0] * 10_000
    ys[1234], ys[8765] = 50.0, -7.0
    tx, ty = envelope(xs, ys, buckets=100)
    assert len(tx) <= 200 and tx == sorted(tx)
    assert (1234, 50.0) in zip(tx, ty, strict=False) and (8765, -7.0) in zip(tx, ty, strict=False)
    assert envelope([1, 2], [3, 4], buckets=100) == ([1, 2], [3, 4])


class RecordingPlot:
    """Stands in for plotext: records what draw_curves plots."""

    def __init__(self):
        self.curves = []

    def plot(self, xs, ys, **style):
        self.curves.append((xs, ys, style))

    def ylim(self, *args): ...
    def xticks(self, *args):
        self.x_ticks = args[0]

    def yticks(self, *args): ...
    def title(self, text): ...
    def xlabel(self, text): ...


def test_smoothed_curves_keep_the_raw_data_under_them():
    zigzag = ("L1 aaaaaa", [i / 10 for i in range(200)], [1.0 + (i % 2) for i in range(200)])
    plt = RecordingPlot()
    draw_curves(plt, [zigzag], "loss", smoothing=0.9, width=80)
    (raw_x, raw_y, raw_style), (_, smooth_y, smooth_style) = plt.curves
    assert raw_y == zigzag[2] and raw_x == zigzag[1]  # 200 points fit 80 columns of braille: all kept
    assert "label" not in raw_style and raw_style["color"] != smooth_style["color"]  # faint, unlabelled
    assert smooth_style["label"] == "L1 aaaaaa (smoothed 0.9)"
    assert max(smooth_y[50:]) - min(smooth_y[50:]) < 0.2  # the smoothed line sits near 1.5
    plain = RecordingPlot()
    draw_curves(plain, [zigzag], "loss")
    assert len(plain.curves) == 1 and plain.curves[0][2]["label"] == "L1 aaaaaa"
    assert plain.x_ticks == [0, 5, 10, 15]  # whole epochs, evenly spaced, over 0-19.9


def test_epoch_ticks_are_whole_and_evenly_spaced():
    assert epoch_ticks(1, 10) == [2, 4, 6, 8, 10]
    assert epoch_ticks(0.02, 3) == [1, 2, 3]
    assert epoch_ticks(1, 1000) == [200, 400, 600, 800, 1000]
    assert epoch_ticks(0.1, 0.9) == []  # within one epoch: no whole epoch to mark


def test_the_reference_is_a_labelled_line_across_the_data():
    plt = RecordingPlot()
    draw_curves(plt, [("L2 aaaaaa", [1, 2, 3], [10.0, 11.0, 12.0])], "psnr", reference=("PCA (256 values)", 25.5))
    xs, ys, style = plt.curves[-1]
    assert (xs, ys, style["label"]) == ([1, 3], [25.5, 25.5], "PCA (256 values)")


def test_a_thinned_curve_says_so_in_its_legend():
    """No silent downsampling: 10,000 steps on an 80-column chart are drawn as each column's min and max,
    and the legend entry says how many points there are; 200 points fit and carry no note."""
    plt = RecordingPlot()
    long = ("L1 aaaaaa", [i / 1000 for i in range(10_000)], [1.0 + (i % 7) for i in range(10_000)])
    (entry,) = draw_curves(plt, [long], "loss", width=80)
    assert entry.label == "L1 aaaaaa [10,000 points as min–max per column]"
    assert len(plt.curves[0][0]) <= 2 * 160  # what was drawn: at most two points per braille column
    short = ("L2 bbbbbb", [i / 10 for i in range(200)], [1.0] * 200)
    (entry,) = draw_curves(RecordingPlot(), [short], "loss", width=80)
    assert entry.label == "L2 bbbbbb"


def test_runs_fold_into_a_mean_over_a_band_per_group():
    """Two L1 runs and one L2 run: by hand, L1's mean at x=1 is (1+3)/2 = 2 with min 1 and max 3, its
    sample sd there sqrt(((1-2)² + (3-2)²)/1) = sqrt(2); a run alone has no spread."""
    from normcompress.charts import group_series

    series = [("a", [1, 2], [1.0, 3.0]), ("b", [1, 2, 3], [3.0, 5.0, 7.0]), ("c", [1, 2], [10.0, 10.0])]
    folded, slots = group_series(series, ["norm=L1", "norm=L1", "norm=L2"])
    labels = [None, None, "norm=L1 (n=2, band min–max)", None, None, "norm=L2 (n=1, band min–max)"]
    assert [label for label, _, _ in folded] == labels
    (_, xs, low), (_, _, high), (_, _, mean) = folded[:3]
    assert xs == [1, 2, 3] and low == [1.0, 3.0, 7.0] and high == [3.0, 5.0, 7.0] and mean == [2.0, 4.0, 7.0]
    assert slots == [0, 0, 0, 1, 1, 1]  # one colour per group
    folded, _ = group_series(series, ["norm=L1", "norm=L1", "norm=L2"], band="sd")
    assert folded[0][2][0] == pytest.approx(2 - math.sqrt(2)) and folded[1][2][0] == pytest.approx(2 + math.sqrt(2))
    assert folded[3][2] == folded[4][2] == [10.0, 10.0]  # a group of one: no band
    assert folded[2][0] == "norm=L1 (n=2, band ±1 sd)"
    plt = RecordingPlot()
    entries = draw_curves(plt, folded, "loss", slots=[0, 0, 0, 1, 1, 1])
    assert [e.label for e in entries] == ["norm=L1 (n=2, band ±1 sd)", "norm=L2 (n=1, band ±1 sd)"]  # edges unnamed
    assert len(plt.curves) == 6 and "label" not in plt.curves[0][2]


def test_a_legend_with_more_entries_than_its_rows_says_how_many_it_leaves_unnamed():
    entries = [LegendEntry(f"run {n:02d}", (200, 0, 0), "braille") for n in range(10)]
    # Each entry is "⢕⢕ run 00" (9 cells), 3 cells apart: three to a line of 40 (33 cells), not four (45).
    assert legend_text(entries, 40).plain.count("\n") == 3  # all ten in four lines, with no limit
    lines = legend_text(entries, 40, rows=2).plain.split("\n")
    assert lines[0] == "⢕⢕ run 00   ⢕⢕ run 01   ⢕⢕ run 02"
    assert lines[1] == "⢕⢕ run 03   ⢕⢕ run 04   +5 more"  # a third entry and "+4 more" would take 43 cells
    assert legend_text(entries[:6], 40, rows=2).plain.count("more") == 0  # six fit in two lines: all named
    assert legend_text(entries, 5, rows=1).plain == "+10 more"  # not even one fits beside the count


def test_a_legend_entry_too_wide_for_its_line_puts_its_thinning_note_under_its_name():
    """At 80x24 the app's chart legend cut "[410 points as min–max per column]" to "[410 points as min–max
    per…": the one place that says the curve is thinned lost its end."""
    thinned = LegendEntry("L2 18fff2 [410 points as min–max per column]", (200, 0, 0), "braille")
    other = LegendEntry("L1 abc123", (0, 0, 200), "braille")
    lines = legend_text([thinned, other], 40).plain.split("\n")
    assert lines == ["⢕⢕ L2 18fff2", "   [410 points as min–max per column]", "⢕⢕ L1 abc123"]
    assert legend_text([thinned, other], 80).plain == "⢕⢕ L2 18fff2 [410 points as min–max per column]   ⢕⢕ L1 abc123"
    narrow = legend_text([thinned], 20).plain.split("\n")
    assert narrow == ["⢕⢕ L2 18fff2", "   [410 points as m…"] and all(len(line) <= 20 for line in narrow)
    assert legend_text([thinned, other], 40, rows=2).plain.split("\n") == [  # no room for it: cut, as before
        "⢕⢕ L2 18fff2 [410 points as min–max per…",
        "⢕⢕ L1 abc123",
    ]
