"""Reconstructions drawn in the terminal: originals, reconstructions and error maps of a run.

textual-image picks the terminal's best method (Kitty graphics, Sixel) and falls back to coloured
half-block characters, which work over plain SSH.
"""

import io
from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image.widget import Image


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
            image = PILImage.open(io.BytesIO(path.read_bytes()))
        except (OSError, PILImage.UnidentifiedImageError):
            caption_widget.update(f"{caption}: no reconstruction yet")
            self.query_one(Image).image = None
            self.shown = None
            return
        caption_widget.update(caption)
        self.query_one(Image).image = image
        self.shown = path
