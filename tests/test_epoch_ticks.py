"""Epoch axes are ticked on whole epochs only, even for a study of one epoch or a live run in its first
(curves.png ticked 0.945 ... 1.050; the live chart 0.0312 ... 0.0625 "epochs")."""

from normcompress.charts import _axes
from normcompress.figures import integer_ticks, plt


def test_a_one_epoch_figure_is_ticked_on_whole_epochs():
    figure, axis = plt.subplots()
    axis.plot([1], [20.0], marker="o")
    integer_ticks(axis)
    figure.canvas.draw()
    low, high = axis.get_xlim()
    ticks = [t for t in axis.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks) and 1 in ticks
    plt.close(figure)


def test_a_two_epoch_figure_ends_at_its_last_epoch():
    """Epochs 1 and 2 were drawn on an axis out to 3, an epoch that never ran."""
    figure, axis = plt.subplots()
    axis.plot([1, 2], [20.0, 21.0], marker="o")
    integer_ticks(axis)
    figure.canvas.draw()
    low, high = axis.get_xlim()
    assert 0.5 < low <= 1 and 2 <= high < 2.5
    assert [t for t in axis.get_xticks() if low <= t <= high] == [1, 2]
    plt.close(figure)


class Recorder:
    """Stands in for plotext: records the limits and ticks a chart asks for."""

    def __init__(self):
        self.calls = {}

    def __getattr__(self, name):
        return lambda *args: self.calls.setdefault(name, args)


def test_the_live_chart_in_its_first_epoch_is_framed_by_whole_epochs():
    chart = Recorder()
    _axes(chart, [0.03125, 0.046875, 0.0625], [0.3, 0.2, 0.1], log=False, x_axis="epoch")
    assert chart.calls["xlim"] == (0, 1) and chart.calls["xticks"] == ([0, 1],)
    later = Recorder()
    _axes(later, [0.5, 1.0, 2.0, 3.0], [0.3, 0.2, 0.1, 0.1], log=False, x_axis="epoch")
    assert "xlim" not in later.calls and later.calls["xticks"] == ([1, 2, 3],)


def test_a_chart_of_one_epoch_centres_its_point_over_the_epoch():
    """Runs of one epoch drew their point on the left edge of an axis from 1 to 2, an epoch never run."""
    chart = Recorder()
    _axes(chart, [1, 1, 1], [11.9, 11.9, 11.8], log=False, x_axis="epoch")
    assert chart.calls["xlim"] == (0.5, 1.5) and chart.calls["xticks"] == ([1],)
