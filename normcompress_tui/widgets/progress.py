"""Progress of the current run: epoch x of N, a bar with ETA, images/s, the current and best values."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

from normcompress.events import EpochEnd, RunStarted, StepProgress
from normcompress.text import printable


class TrainingProgress(Vertical):
    def __init__(self) -> None:
        super().__init__(id="progress")
        self.best_psnr: float | None = None
        self.last_psnr: float | None = None
        self.last_step: StepProgress | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("idle", id="epoch-label")
            yield ProgressBar(total=1, show_eta=True, id="bar")  # a set total: no idle animation
        yield Label("", id="stats")

    def _say(self, label_id: str, text: str) -> None:
        # The labels have fixed sizes (app.tcss), so an update needs no layout pass: during training,
        # layout passes were the largest cost of the UI thread, which shares the cores with training.
        self.query_one(f"#{label_id}", Label).update(Text(printable(text, keep_newlines=False)), layout=False)

    def _psnr_text(self) -> str:
        last = f"  PSNR {self.last_psnr:.2f} dB" if self.last_psnr is not None else ""
        best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
        return last + best

    def started(self, event: RunStarted) -> None:
        self.best_psnr = self.last_psnr = self.last_step = None
        self._say("epoch-label", f"epoch {event.start_epoch + 1}/{event.config.epochs}")
        self._say("stats", f"{event.config.norm} on {event.data_source}, {event.device}")
        self.query_one(ProgressBar).update(total=1, progress=0)

    def step(self, event: StepProgress) -> None:
        self.last_step = event
        self._say("epoch-label", f"epoch {event.epoch}/{event.epochs}")
        self.query_one(ProgressBar).update(total=event.epochs * event.steps,
                                           progress=(event.epoch - 1) * event.steps + event.step)
        self._show_stats()

    def epoch_end(self, event: EpochEnd) -> None:
        self.last_psnr = event.record["psnr"]
        self.best_psnr = max(self.best_psnr or self.last_psnr, self.last_psnr)
        self._show_stats()  # the new PSNR now, not with the next epoch's first step

    def _show_stats(self) -> None:
        if self.last_step is not None:
            step = self.last_step
            self._say("stats", f"{step.images_per_s:,.0f} img/s  loss {step.loss:.4g}{self._psnr_text()}")

    def finished(self, status: str, message: str) -> None:
        self._say("epoch-label", status)
        best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
        self._say("stats", message + best)
