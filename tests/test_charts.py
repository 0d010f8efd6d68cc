import plotext
import pytest

from normcompress.charts import draw_curves, log_ticks


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


def test_log_ticks_are_real_values_at_even_log_steps():
    positions, labels = log_ticks(-3, 0, count=4)
    assert positions == [-3, -2, -1, 0] and labels == ["0.001", "0.01", "0.1", "1"]


def test_non_positive_values_are_left_out_of_a_log_axis():
    plotext.clear_figure()
    plotext.plotsize(60, 15)
    draw_curves(plotext, [("a", [1, 2, 3], [0.0, 0.1, 0.01])], "loss", log=True)
    assert "0.1" in plotext.build()
