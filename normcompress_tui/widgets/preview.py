"""Reconstructions drawn in the terminal: originals, reconstructions and error maps of a run.

textual-image picks the terminal's best method (Kitty graphics, Sixel) and falls back to coloured
half-block characters, which work over plain SSH.
"""

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image.widget import Image

from normcompress.images import ImageFileError, open_image
from normcompress.text import printable

MAX_PREVIEW_BYTES = 16 * 2**20
MAX_PREVIEW_PIXELS = 4 * 2**20  # a recon.png is a few hundred pixels a side; a larger one is not ours


class ReconstructionPreview(Vertical):
    BORDER_TITLE = "Reconstructions"

    def __init__(self, id: str = "preview") -> None:
        super().__init__(id=id)
        self.shown: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static("no run yet: originals, reconstructions and error maps appear here", id="preview-caption")
        yield Image(id="preview-image")

    def show(self, path: Path, caption: str) -> None:
        """Show a run's recon.png; it is read into memory because the run rewrites it each epoch."""
        caption_widget = self.query_one("#preview-caption", Static)
        try:
            image = open_image(path, MAX_PREVIEW_PIXELS, MAX_PREVIEW_BYTES, follow_symlinks=False)
        except ImageFileError:
            caption_widget.update(Text(printable(f"{caption}: no reconstruction yet")))
            self.query_one(Image).image = None
            self.shown = None
            return
        caption_widget.update(Text(printable(caption)))
        self.query_one(Image).image = image
        self.shown = path
