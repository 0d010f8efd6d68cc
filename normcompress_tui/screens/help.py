"""Every key and what each pane shows."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

HELP = """\
Panes
  Run              the next run's settings: a norm from the list or a
                   custom one (Lp:3, 0.5*L1+0.5*L2, Linf-smooth:0.05),
                   epochs, batch, learning rate, seed, data, device; under
                   More settings the model, optimizer, schedule, image
                   limit, crop size, rate λ
  Reconstructions  the highlighted run's validation images (the training
                   run's while it trains, and once it ends until the
                   cursor moves): originals, reconstructions, error
                   maps; [ and ] step through its epochs (image history)
  Chart            the live run and overlaid runs; the dashed line is PCA
                   at the runs' latent size on their data (none for the
                   training loss, which is in each run's own norm)
  Runs             every run in the store, also those started from the
                   CLI: the overlay mark in the run's curve colour, the
                   short id the legend shows, norm, seed, status, epochs,
                   best PSNR, then the run's name (when a run has one),
                   the settings the runs differ in, SSIM, worst |error|,
                   tags, lr, time, model, data, batch, device, id

Keys
  s  start a run        x  stop it after this batch (kept as interrupted)
  m  next metric        l  log scale
  a  next smoothing (the raw curve stays, faint, under the smoothed one)
  v  x axis: epoch, step, training time
  z  zoom: all, the last 10, 5, 2, 1 epochs     Z  zoom to epochs (3-7)
  g  group the overlaid runs by a setting they differ in (norm, lr, seed…):
     a mean per group over a band, runs counted     G  band min–max / ±1 sd
  p  panels: 1, 2 or 4 metrics side by side (fewer where they do not fit)
  c  value cursor: ← → move it (shift: ten at a time); each run's value
     at that x is listed under the chart, per panel; c or escape hides it
  e  export the chart's view as PNG and SVG (into the store's exports/)
  space  overlay the highlighted run    enter  open it    d  delete it
  D  diff: the two overlaid runs (or one and the highlighted) side by side
  t  tag it (words of your own; `normcompress runs tag` does the same)
  n  name it (legends show the name)     N  keep a note with it
  r  resume it: an interrupted or failed run goes on from its last epoch
  S  a study: norms x grid x seeds with the Run pane's settings (runs done
     are reused)
  /  filter runs: words to find in id, norm, tags or settings, and
     comparisons such as psnr>25 lr<0.01 model=seed tag=sweep (every
     term must hold; escape clears; the grammar of runs list --where)
  o  sort by the next column (or click a header; again: the other way)
  ctrl+p  command palette (every action above, overlay all or none)
  ?  this help          q  quit (asks while a run is going)
"""


class HelpScreen(ModalScreen[None]):
    """Every key and what each pane shows. Escape closes."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):  # focused: PageDown, Down, End and the mouse wheel scroll it
            yield Static(Text(HELP), id="help-text")
            yield Label("Escape closes · PageDown, End and the arrows scroll", classes="note")
