"""What every matplotlib figure shares: the style of style.py (palette, line styles, markers), integer
epoch ticks, a dashed baseline, and one way to save in png, svg or pdf."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from .files import atomic_write
from .style import DEFAULT_DPI, LINE_STYLES, MARKERS, PALETTE

BASELINE_STYLE = {"color": "black", "linestyle": (0, (4, 3)), "linewidth": 1.2}  # PCA, dashed, in every figure
ERROR_COLOURMAP = "magma"  # black (no error) to white: its lightness rises steadily, so it reads in grey too


def series_style(index: int) -> dict:
    """Colour, line style and marker of the index-th series."""
    return {
        "color": PALETTE[index % len(PALETTE)],
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
        "marker": MARKERS[index % len(MARKERS)],
    }


def integer_ticks(axis) -> None:
    """Epoch axes: ticks on whole epochs only (no 1.2, 1.4), also for a study of one epoch, whose single
    point matplotlib would frame with ticks at 0.95 ... 1.05 (it is framed from the epoch before to the
    one after). Two epochs or more keep their own frame: widening that drew epochs 1-2 out to 3."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    low, high = axis.get_xlim()
    if high - low < 1:
        middle = round((low + high) / 2)
        axis.set_xlim(middle - 1, middle + 1)


def series_figure(
    series: list[tuple[str, list[float], list[float]]],
    metric: str,
    log: bool = False,
    smoothing: float = 0.0,
    reference: tuple[str, float] | None = None,
    slots: list[int] | None = None,
    x_title: str = "epoch",
    title_note: str = "",
):
    """Curves given as (label, x, y) as the app's chart shows them, each in its palette slot's style (the
    app's colours): smoothed over the faint raw values when smoothing > 0, the reference dashed, a log
    axis when asked; x titled `x_title` (whole ticks when it counts epochs or steps); `title_note`
    ends the title (the app's zoom)."""
    from .charts import smooth
    from .metrics import ALL_METRICS

    figure, axis = plt.subplots(figsize=(8, 4.8))
    for position, (label, xs, ys) in enumerate(series):
        style = series_style(slots[position] if slots else position)
        every = max(1, len(xs) // 12)  # a marker every twelfth of a long series: the line stays readable
        if smoothing > 0:
            axis.plot(xs, ys, color=style["color"], alpha=0.3, linewidth=1)
            axis.plot(
                xs,
                smooth(ys, smoothing),
                label=f"{label} (smoothed {smoothing:g})",
                linewidth=2,
                markevery=every,
                **style,
            )
        else:
            axis.plot(xs, ys, label=label, linewidth=1.5, markevery=every, **style)
    if reference is not None:
        axis.axhline(reference[1], label=reference[0], **BASELINE_STYLE)
    if log:
        axis.set_yscale("log")
    if x_title in ("epoch", "step"):
        integer_ticks(axis)
    axis.set_xlabel(x_title)
    axis.set_ylabel(ALL_METRICS[metric].label)
    axis.set_title(ALL_METRICS[metric].label + title_note + (" (log scale)" if log else ""))
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the plot, never on the data
    return figure


def save_figure(figure, path: Path, fmt: str = "png", dpi: int = DEFAULT_DPI) -> Path:
    """Write the figure as path with the format's suffix, atomically; close it; return the path written."""
    target = path.with_suffix(f".{fmt}")
    buffer = io.BytesIO()
    # A fixed creation date keeps svg and pdf files identical across runs of the same data.
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
    figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    plt.close(figure)
    atomic_write(target, buffer.getvalue())
    return target
