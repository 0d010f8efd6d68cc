"""Reconstructions drawn in the terminal: originals, reconstructions and error maps of a run.

textual-image picks the terminal's best method (Kitty graphics, Sixel) and falls back to coloured
half-block characters, which work over plain SSH. A run's recon.png holds three rows (originals,
reconstructions, error maps) of N images; the preview lays those columns out again in as many
bands as make each image largest in the pane: one band of N in a wide pane, two of N/2 in a tall one.

`[` and `]` step back and forth through the run's image history (normcompress.history: the same images
at every epoch kept); a new epoch of a live run, or another run, shows the latest picture again.
"""

import math
from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image import _terminal

try:  # textual-image 0.12 divides by the terminal's columns when it loads: 0 on a terminal that reports no size
    _terminal.get_cell_size()
except ZeroDivisionError:
    _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # its own default
from textual_image.widget import Image

from normcompress.history import HISTORY_FILE, History, HistoryError, frame, read_history
from normcompress.images import PADDING, ImageFileError, open_image
from normcompress.text import printable

MAX_PREVIEW_BYTES = 16 * 2**20
MAX_PREVIEW_PIXELS = 4 * 2**20  # a recon.png is a few hundred pixels a side; a larger one is not ours


ROWS = 3  # originals, reconstructions, error maps
CELL_ASPECT = 2.0  # a terminal cell is about twice as tall as it is wide


def grid_columns(size: tuple[int, int]) -> tuple[int, int] | None:
    """(columns, tile side) of a recon.png laid out as comparison_grid does (3 rows of square tiles
    with PADDING around each), or None for an image of another layout."""
    width, height = size
    side, extra = divmod(height - (ROWS + 1) * PADDING, ROWS)
    if side <= 0 or extra:
        return None
    columns, extra = divmod(width - PADDING, side + PADDING)
    return (columns, side) if columns >= 1 and not extra else None


def best_band_width(columns: int, width_cells: int, height_cells: int) -> int:
    """How many of the grid's columns to put side by side so that each image is drawn largest in a pane
    of width_cells x height_cells (ties go to fewer bands)."""

    def tile_cells(per_band: int) -> float:
        bands = math.ceil(columns / per_band)
        across = width_cells / per_band  # a tile's width in cells, when the width decides
        down = height_cells * CELL_ASPECT / (ROWS * bands)  # ... when the height does
        return min(across, down)

    return max(range(columns, 0, -1), key=tile_cells)


def relayout(image: PILImage.Image, per_band: int) -> PILImage.Image:
    """The recon.png's columns in bands of `per_band`, each band its three rows, a wider gap between bands."""
    layout = grid_columns(image.size)
    if layout is None or per_band >= layout[0]:
        return image
    columns, side = layout
    step = side + PADDING
    bands = math.ceil(columns / per_band)
    band_height = ROWS * step + PADDING
    out = PILImage.new(
        image.mode, (per_band * step + PADDING, bands * band_height + (bands - 1) * 2 * PADDING), "white"
    )
    for column in range(columns):
        band, place = divmod(column, per_band)
        strip = image.crop((column * step, 0, column * step + step + PADDING, band_height))
        out.paste(strip, (place * step, band * (band_height + 2 * PADDING)))
    return out


class PreviewImage(Image, Renderable=Image._Renderable):
    """textual-image's widget, except that a picture of the same size as the one it replaces is only
    repainted. The library's setter asks for a layout pass of the whole screen each time (about 50 ms on
    these 2-core machines), which a live run's preview paid every few seconds, taken from training."""

    _repaint_only = False

    def replace(self, image: PILImage.Image | None) -> None:
        shown = self.image
        self._repaint_only = isinstance(shown, PILImage.Image) and image is not None and image.size == shown.size
        try:
            self.image = image
        finally:
            self._repaint_only = False

    def refresh(self, *regions, repaint: bool = True, layout: bool = False, recompose: bool = False):
        # The widget's size depends only on its picture's size and its styles: same size, same layout.
        return super().refresh(*regions, repaint=repaint, layout=layout and not self._repaint_only, recompose=recompose)


class ReconstructionPreview(Vertical):
    BORDER_TITLE = "Reconstructions"

    def __init__(self, id: str = "preview") -> None:
        super().__init__(id=id)
        self.shown: Path | None = None
        self.original: PILImage.Image | None = None  # the recon.png as read; laid out again on resize
        self.per_band: int | None = None
        self._drawn: tuple[int, int | None] | None = None  # (which image, in what bands) is on screen
        self._caption_lines = -1
        self._label = ""
        self._history: History | None = None
        self.epoch_index: int | None = None  # the history's row on show, or None: the latest recon.png

    def compose(self) -> ComposeResult:
        yield Static("no run yet: originals, reconstructions and error maps appear here", id="preview-caption")
        yield PreviewImage(id="preview-image")

    def show(self, path: Path, caption: str) -> None:
        """Show a run's recon.png; it is read into memory because the run rewrites it each epoch."""
        self.shown, self._label, self._history, self.epoch_index = path, caption, None, None
        try:
            image = open_image(path, MAX_PREVIEW_PIXELS, MAX_PREVIEW_BYTES, follow_symlinks=False)
        except ImageFileError:
            self.say(f"{caption}: no reconstruction yet")
            return
        self._caption(caption)
        self.original = image
        self._lay_out()

    def say(self, text: str) -> None:
        """A line instead of a picture."""
        self._caption(text)
        self.query_one(PreviewImage).replace(None)
        self.original = None
        self._drawn = None

    def show_picture(self, image: PILImage.Image, caption: str) -> None:
        """Show a picture made here (a run's history strip) as it is."""
        self._caption(caption)
        self.original = image
        self._lay_out()

    def step_history(self, step: int) -> str | None:
        """Show the epoch `step` rows before or after the one shown (from the latest, -1 is the epoch
        before it). None when it moved, else why not (no history, or already at its first or latest)."""
        if self.shown is None:
            return "no run is shown"
        if self._history is None:
            try:
                self._history = read_history(self.shown.parent / HISTORY_FILE)
            except HistoryError as exc:
                return f"its image history cannot be shown: {exc.reason}"
            if self._history is None:
                return "this run has no image history (a run from before version 0.3, or no epoch yet)"
        last = len(self._history.epochs) - 1
        here = last if self.epoch_index is None else self.epoch_index
        wanted = min(max(here + step, 0), last)
        if wanted == here:
            return "this is its first epoch kept" if step < 0 else "this is its latest epoch"
        self.epoch_index = wanted
        epoch = self._history.epochs[wanted]
        self._caption(f"{self._label} · epoch {epoch} ({wanted + 1} of {last + 1} kept; [ ] step through them)")
        self.original = frame(self._history, wanted)
        self._lay_out()
        return None

    def _caption(self, text: str) -> None:
        """The line above the image; a layout pass (which costs a training run time) only when the
        caption's height in lines may change."""
        widget = self.query_one("#preview-caption", Static)
        width = max(widget.content_region.width or self.content_region.width, 1)
        text = printable(text, keep_newlines=False)
        lines = -(-len(text) // width)
        widget.update(Text(text), layout=lines != self._caption_lines)
        self._caption_lines = lines

    def on_resize(self) -> None:
        self._lay_out()

    def _lay_out(self) -> None:
        """Draw the image in the band width that makes its tiles largest in the pane as it is now, as wide
        as the pane allows without running past its bottom."""
        if self.original is None:
            return
        layout = grid_columns(self.original.size)
        region = self.content_region
        # The caption's height measured at this width, not read from its last layout: a layout pass still to
        # come (after a new caption) once left the picture a row short and a column narrow for good.
        caption = self.query_one("#preview-caption", Static)
        caption_height = caption.get_content_height(region.size, region.size, region.width) if region.width else 0
        height = max(region.height - caption_height, 1)
        widget = self.query_one(PreviewImage)
        per_band = best_band_width(layout[0], region.width, height) if layout and region.width else None
        if self._drawn != (id(self.original), per_band):
            widget.replace(relayout(self.original, per_band) if per_band else self.original)
            self.per_band, self._drawn = per_band, (id(self.original), per_band)
        shown = widget.image
        fitting_width = int(height * CELL_ASPECT * shown.width / shown.height)  # the width at which it fills the height
        width = min(region.width, max(fitting_width, 1)) if region.width else None
        if width is not None and widget.styles.width != width:
            widget.styles.width = width
