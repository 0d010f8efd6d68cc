"""Metric curves drawn with plotext, shared by the CLI and the app: one way to plot, one log axis.

`plt` is the plotext module or textual-plotext's Plot, which offer the same calls.
A log axis is drawn as log10(y) on a linear axis with ticks labelled in real values, because
plotext's own log mode fails on narrow ranges and with explicit limits.

Smoothing never hides the data: the raw curve stays on the chart in a faint shade of the run's
colour, under the smoothed one, and a long curve is thinned to the minimum and maximum of each
bucket of points (one per braille column), so a single spike still shows; its legend entry says so,
with the number of points (never a silent downsampling).
"""

import bisect
import math
from dataclasses import dataclass

from rich.text import Text

from .style import PALETTE_RGB, TERMINAL_MARKERS
from .text import pack_lines, printable

# (strong, faint) per run, in the figures' palette: the faint shade is the colour pulled toward a dark background.
COLOURS = [(rgb, tuple(round(0.45 * c + 0.55 * 40) for c in rgb)) for rgb in PALETTE_RGB]
REFERENCE_COLOUR = (150, 150, 150)
SMOOTHING_CHOICES = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)
Series = tuple[str | None, list[float], list[float]]  # label (None: a band's edge, faint, unnamed), x, y
BANDS = {"minmax": "band min–max", "sd": "band ±1 sd"}


@dataclass(frozen=True)
class LegendEntry:
    """How one drawn series looks, for a legend kept outside the plot: its label, colour (None without
    colour) and the plotext marker it is drawn with."""

    label: str
    colour: tuple[int, int, int] | None
    marker: str

    @property
    def symbol(self) -> str:
        """Two characters that look like the series' line: braille, or its marker where colour is absent."""
        return {"braille": "⢕⢕", "-": "--"}.get(self.marker, self.marker * 2)


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's exponential moving average, debiased so the first points are not pulled to 0.

    weight 0 returns the values; weight 0.9 averages over roughly the last 10 points.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing must be in [0, 1), not {weight}")
    result, average, mass = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        mass = weight * mass + (1 - weight)
        result.append(average / mass if mass else value)
    return result


def envelope(xs: list[float], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most 2*buckets points: each bucket's lowest and highest point, in x order. Extremes survive."""
    if len(xs) <= 2 * buckets:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for b in range(buckets):
        lo, hi = len(xs) * b // buckets, len(xs) * (b + 1) // buckets
        i_min = min(range(lo, hi), key=ys.__getitem__)
        i_max = max(range(lo, hi), key=ys.__getitem__)
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def group_series(series: list[Series], groups: list[str], band: str = "minmax") -> tuple[list[Series], list[int]]:
    """Runs' series folded into one curve per group (in order of first appearance) over a band: for each
    group its band's two edges (unnamed, drawn faint) and its mean, named `group (n=3, band min–max)`; and
    each of those series' palette slot (one per group). At each x the group's runs that have a value there
    count; the band is their min and max, or the mean ± 1 sample sd (none for a single run)."""
    by_group: dict[str, dict[float, list[float]]] = {}
    members: dict[str, int] = {}
    for (_, xs, ys), group in zip(series, groups, strict=True):
        values = by_group.setdefault(group, {})
        members[group] = members.get(group, 0) + 1
        for x, y in zip(xs, ys, strict=True):
            values.setdefault(x, []).append(y)
    folded: list[Series] = []
    slots: list[int] = []
    for slot, (group, values) in enumerate(by_group.items()):
        xs = sorted(values)
        means = [sum(values[x]) / len(values[x]) for x in xs]
        if band == "sd":
            spread = [_sample_sd(values[x]) for x in xs]
            low, high = (
                [m - s for m, s in zip(means, spread, strict=True)],
                [m + s for m, s in zip(means, spread, strict=True)],
            )
        else:
            low, high = [min(values[x]) for x in xs], [max(values[x]) for x in xs]
        folded += [(None, xs, low), (None, xs, high), (f"{group} (n={members[group]}, {BANDS[band]})", xs, means)]
        slots += [slot] * 3
    return folded, slots


def _sample_sd(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def value_at(xs: list[float], ys: list[float], x: float) -> float | None:
    """A series' value at `x` as recorded: its last point at or before x (xs in order), None before its first."""
    position = bisect.bisect_right(xs, x + 1e-9 * max(abs(x), 1.0))
    return ys[position - 1] if position else None


def reduced_note(points: int, buckets: int) -> str:
    """What a legend adds to a series that `envelope` thins: how many points, and how they are drawn."""
    return f" [{points:,} points as min–max per column]" if points > 2 * buckets else ""


def step_positions(epoch: int, after_step: int, count: int, steps: int) -> list[float]:
    """Where `count` steps that follow step `after_step` of `steps` in (1-based) `epoch` sit on an epoch axis:
    the last step of epoch 3 is at 3.0."""
    return [epoch - 1 + (after_step + i + 1) / steps for i in range(count)]


def step_series(label: str, records: list[dict]) -> Series | None:
    """A run's training loss at every step, from its epoch records (None for runs saved before steps were)."""
    if not records or not all(r.get("step_losses") for r in records):
        return None
    xs, ys = [], []
    for r in records:
        n = len(r["step_losses"])
        xs += step_positions(r["epoch"], 0, n, n)
        ys += r["step_losses"]
    return label, xs, ys


X_AXES = ("epoch", "step", "time")  # what a chart's x axis can count


def time_unit(seconds_max: float) -> tuple[str, float]:
    """The unit a time axis reads best in, and seconds per unit: s up to 10 minutes, then min, then h."""
    return ("s", 1.0) if seconds_max <= 600 else ("min", 60.0) if seconds_max <= 36000 else ("h", 3600.0)


def epoch_mapping(records: list[dict], axis: str, steps_per_epoch: int | None = None):
    """A function from a fractional epoch (3.5 = half-way through epoch 4) to `axis`: the step count
    (from each epoch's recorded step losses) or the training time in seconds (from each epoch's
    epoch_time_s, spread evenly over its steps). Past the last record the last epoch's figures are
    used (`steps_per_epoch` when there is none). None when the records lack what the axis needs."""
    if axis == "epoch":
        return lambda x: x
    key = "step_losses" if axis == "step" else "epoch_time_s"
    sizes = [float(len(r[key]) if axis == "step" else r[key]) for r in records if r.get(key)]
    if len(sizes) != len(records) or not (sizes or (axis == "step" and steps_per_epoch)):
        return None
    last = sizes[-1] if sizes else float(steps_per_epoch)
    starts = [0.0]
    for size in sizes:
        starts.append(starts[-1] + size)

    def to_axis(x: float) -> float:
        epoch = max(math.ceil(x) - 1, 0)  # the 0-based epoch that x falls in
        if epoch < len(sizes):
            return starts[epoch] + (x - epoch) * sizes[epoch]
        return starts[-1] + (x - len(sizes)) * last

    return to_axis


def padded_limits(values: list[float]) -> tuple[float, float]:
    """y limits a little wider than the data, so no point sits on (or, after rounding, past) the frame."""
    low, high = min(values), max(values)
    margin = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - margin, high + margin


def _round_step(span: float, most: int) -> float:
    """The smallest of 1, 2, 5 x 10^k that cuts `span` into at most most-1 intervals."""
    rough = span / max(most - 1, 1)
    exponent = math.floor(math.log10(rough))
    return next(m * 10.0**exponent for m in (1, 2, 5, 10) if m * 10.0**exponent >= rough * (1 - 1e-9))


def _decimals(step: float) -> int:
    """Decimals that show every multiple of `step` exactly and alike (0.25 -> 2, 5 -> 0)."""
    return max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0


def nice_ticks(low: float, high: float, most: int = 6) -> tuple[list[float], list[str]]:
    """Round, evenly spaced ticks within [low, high] (multiples of 1, 2 or 5 x 10^k), at most `most`,
    all labelled with the same number of decimals."""
    if not high > low:
        return [low], [f"{low:.3g}"]
    step = _round_step(high - low, most)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    values = [round(k * step, 12) for k in range(first, last + 1)]
    decimals = _decimals(step)
    return values, [f"{v:.{decimals}f}" for v in values]


def log_ticks(low: float, high: float, most: int = 6) -> tuple[list[float], list[str]]:
    """Ticks for a log axis spanning log10 values [low, high]: positions in log10 space, labelled with
    the round real values they stand for (1, 2, 5 x 10^k; only powers of ten over many decades;
    evenly spaced real values when the range holds fewer than two such numbers)."""
    decades = range(math.floor(low) - 1, math.ceil(high) + 1)
    for mantissas in ((1, 2, 5), (1,)):
        values = [m * 10.0**e for e in decades for m in mantissas if low - 1e-9 <= math.log10(m) + e <= high + 1e-9]
        if len(values) > most and mantissas == (1,):
            every = math.ceil(len(values) / most)
            values = values[::every]
        if 2 <= len(values) <= most:
            break
    else:
        values, labels = nice_ticks(10**low, 10**high, most)
        kept = [(v, t) for v, t in zip(values, labels, strict=False) if v > 0]
        return [math.log10(v) for v, _ in kept], [t for _, t in kept]
    if max(values) / min(values) >= 1000:  # many decades: 1e-05 reads better than 0.00001000
        return [math.log10(v) for v in values], [f"{v:g}" for v in values]
    decimals = max(0, -math.floor(math.log10(min(values)) + 1e-9))
    return [math.log10(v) for v in values], [f"{v:.{decimals}f}" for v in values]


def epoch_ticks(low: float, high: float, most: int = 8) -> list[int]:
    """Whole epochs from low to high, evenly spaced, at most `most` of them (every 1, 2, 5, 10, 20, ... epochs)."""
    span = max(high - low, 1.0)
    step = next(s for s in (m * 10**e for e in range(10) for m in (1, 2, 5)) if span / s <= most - 1)
    first = math.ceil(low / step) * step
    return list(range(int(first), math.floor(high) + 1, step))


def series_look(slot: int, colour: bool = True) -> tuple[tuple[int, int, int], tuple[int, int, int], str]:
    """The strong and faint colours and the plotext marker of the series in palette slot `slot`."""
    strong, faint = COLOURS[slot % len(COLOURS)]
    return strong, faint, "braille" if colour else TERMINAL_MARKERS[slot % len(TERMINAL_MARKERS)]


def draw_curves(
    plt,
    series: list[Series],
    title: str,
    log: bool = False,
    smoothing: float = 0.0,
    width: int = 200,
    reference: tuple[str, float] | None = None,
    legend: bool = True,
    colour: bool = True,
    slots: list[int] | None = None,
    x_axis: str = "epoch",
    x_title: str | None = None,
) -> list[LegendEntry]:
    """Plot each series in its own colour; values <= 0 are left out on a log axis. Return the legend.

    With smoothing > 0 each series is drawn twice: raw and faint, then smoothed and strong (the legend
    names the smoothed one). `width` is the plot's width in characters, for thinning long series.
    `reference` (label, value) is drawn as a dashed grey line across the chart: the PCA baseline.
    legend=False leaves the legend out of the plot (the app shows the returned entries beside it);
    colour=False (NO_COLOR) draws each series with its own marker instead of its own colour.
    `slots` gives each series its place in the palette (default: its position), so that a run keeps
    its colour while others come and go. `x_axis` names what x counts: whole epochs are ticked as
    such, a step or time axis gets round evenly spaced ticks; `x_title` labels it (default: x_axis).
    """
    shown: list[float] = []
    entries: list[LegendEntry] = []

    def draw(xs, ys, label, colour_rgb, marker) -> None:
        style = {"marker": marker, **({"color": colour_rgb} if colour else {})}
        if label is not None:
            entries.append(LegendEntry(label, colour_rgb if colour else None, marker))
            if legend:
                style["label"] = label
        plt.plot(xs, ys, **style)

    for position, (label, xs, ys) in enumerate(series):
        points = [(x, y) for x, y in zip(xs, ys, strict=False) if y > 0 or not log]
        if not points:
            continue
        strong, faint, marker = series_look(slots[position] if slots else position, colour)
        px = [p[0] for p in points]
        raw = [math.log10(p[1]) if log else p[1] for p in points]
        shown += raw
        if label is None:  # a band's edge: faint, unnamed (without colour, dotted)
            draw(*envelope(px, raw, width * 2), None, faint, marker if colour else "·")
            continue
        label += reduced_note(len(px), width * 2)
        if smoothing > 0:
            if colour:  # without colour a faint copy cannot be told from the curve: the smoothed one alone
                draw(*envelope(px, raw, width * 2), None, faint, marker)
            # Smoothing the values (not their logs) is what TensorBoard does; the axis only maps them.
            smoothed = smooth([p[1] for p in points], smoothing)
            curve = [math.log10(v) if log else v for v in smoothed]
            draw(*envelope(px, curve, width * 2), f"{label} (smoothed {smoothing:g})", strong, marker)
        else:
            draw(*envelope(px, raw, width * 2), label, strong, marker)
    xs = [x for _, series_x, _ in series for x in series_x]
    if reference is not None and xs and (reference[1] > 0 or not log):
        level = math.log10(reference[1]) if log else reference[1]
        draw([min(xs), max(xs)], [level, level], reference[0], REFERENCE_COLOUR, "-")
        shown.append(level)
    _axes(plt, xs, shown, log, x_axis)
    plt.title(title + (" (log scale)" if log else ""))
    plt.xlabel(x_title or x_axis)
    return entries


def _axes(plt, xs: list[float], ys: list[float], log: bool, x_axis: str) -> None:
    """Ticks on both axes (whole epochs on an epoch axis, round numbers elsewhere) and padded y limits."""
    if xs and x_axis == "epoch":
        ticks = epoch_ticks(min(xs), max(xs))
        if min(xs) == max(xs) and float(min(xs)).is_integer():  # one epoch's point: centred over its tick
            plt.xlim(min(xs) - 0.5, min(xs) + 0.5)
        elif len(ticks) < 2:  # within the first epoch (0.03 ... 0.06): frame it by the whole epochs around it
            low, high = math.floor(min(xs)), max(math.ceil(max(xs)), math.floor(min(xs)) + 1)
            plt.xlim(low, high)
            ticks = [low, high]
        plt.xticks(ticks)
    elif xs:
        plt.xticks(*nice_ticks(min(xs), max(xs)))
    if ys:
        low, high = padded_limits(ys)
        plt.ylim(low, high)
        plt.yticks(*(log_ticks if log else nice_ticks)(low, high))


def legend_text(entries: list[LegendEntry], width: int, rows: int | None = None) -> Text:
    """One entry per series, in its colour (or with its marker), packed into lines of `width` cells:
    a line breaks between entries, never inside one. An entry wider than the line puts its note (how its
    points were thinned) on a line under its name where the rows allow, else is cut with ….
    Within `rows` lines, the entries that fit and then `+N more`: none is left out without a word."""
    for split in (True, False):
        parts = [_legend_part(entry, width, split) for entry in entries]
        packed = pack_lines(parts, width, "   ")
        if rows is None or _lines(packed) <= rows:
            return packed
    shown = 0
    while (
        shown < len(parts)
        and _lines(pack_lines([*parts[: shown + 1], _more(len(parts) - shown - 1)], width, "   ")) <= rows
    ):
        shown += 1
    return pack_lines([*parts[:shown], _more(len(parts) - shown)], width, "   ")


def _legend_part(entry: LegendEntry, width: int, split: bool) -> Text:
    """An entry's swatch and label within `width`: as it is, its note under its name (`split`), or cut."""
    label = printable(entry.label, keep_newlines=False)
    name, bracket, note = label.rpartition(" [")  # "L2 18fff2 [410 points as min–max per column]"
    if len(entry.symbol) + 1 + len(label) > width:
        if split and bracket and len(entry.symbol) + 1 + len(name) <= width:
            label = f"{name}\n{_cut(' ' * len(entry.symbol) + ' [' + note, width)}"
        else:
            label = label[: max(width - len(entry.symbol) - 2, 1)] + "…"
    style = "rgb({},{},{})".format(*entry.colour) if entry.colour else ""
    return Text.assemble((entry.symbol, style), " " + label)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 1)] + "…"


def _more(hidden: int) -> Text:
    return Text(f"+{hidden} more", style="italic")


def _lines(text: Text) -> int:
    return text.plain.count("\n") + 1
