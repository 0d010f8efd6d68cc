"""Metric curves drawn with plotext, shared by the CLI and the app: one way to plot, one log axis.

`plt` is the plotext module or textual-plotext's Plot, which offer the same calls.
A log axis is drawn as log10(y) on a linear axis with ticks labelled in real values, because
plotext's own log mode fails on narrow ranges and with explicit limits.
"""

import math

COLOURS = ["cyan", "orange", "green", "magenta", "red", "blue", "yellow", "gray"]
Series = tuple[str, list[float], list[float]]  # label, x, y


def padded_limits(values: list[float]) -> tuple[float, float]:
    """y limits a little wider than the data, so no point sits on (or, after rounding, past) the frame."""
    low, high = min(values), max(values)
    margin = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - margin, high + margin


def log_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], list[str]]:
    """Tick positions in log10 space, labelled with the real values they stand for."""
    positions = [low + (high - low) * i / (count - 1) for i in range(count)]
    return positions, [f"{10 ** p:.3g}" for p in positions]


def draw_curves(plt, series: list[Series], title: str, log: bool = False) -> None:
    """Plot each series in its own colour with a legend; values <= 0 are left out on a log axis."""
    shown: list[float] = []
    for number, (label, xs, ys) in enumerate(series):
        points = [(x, math.log10(y) if log else y) for x, y in zip(xs, ys) if y > 0 or not log]
        if points:
            plt.plot([p[0] for p in points], [p[1] for p in points], label=label, marker="braille",
                     color=COLOURS[number % len(COLOURS)])
            shown += [p[1] for p in points]
    if shown:
        low, high = padded_limits(shown)
        plt.ylim(low, high)
        if log:
            plt.yticks(*log_ticks(low, high))
    plt.title(title + (" (log scale)" if log else ""))
    plt.xlabel("epoch")
