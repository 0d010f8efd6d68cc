"""Progress of the current run: epoch x of N, a bar with ETA, images/s, the current and best values."""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

from normcompress.train import EpochEnd, RunStarted, StepProgress


class TrainingProgress(Vertical):
    def __init__(self) -> None:
        super().__init__(id="progress")
        self.best_psnr: float | None = None
        self.last_psnr: float | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("idle", id="epoch-label")
            yield ProgressBar(total=1, show_eta=True, id="bar")  # a set total: no idle animation
        yield Label("", id="stats")

    def started(self, event: RunStarted) -> None:
        self.best_psnr = self.last_psnr = None
        self.query_one("#epoch-label", Label).update(f"epoch {event.start_epoch + 1}/{event.config.epochs}")
        self.query_one("#stats", Label).update(f"{event.config.norm} on {event.data_source}, {event.device}")
        self.query_one(ProgressBar).update(total=1, progress=0)

    def step(self, event: StepProgress) -> None:
        self.query_one("#epoch-label", Label).update(f"epoch {event.epoch}/{event.epochs}")
        self.query_one(ProgressBar).update(total=event.epochs * event.steps,
                                           progress=(event.epoch - 1) * event.steps + event.step)
        best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
        last = f"  PSNR {self.last_psnr:.2f} dB" if self.last_psnr is not None else ""
        self.query_one("#stats", Label).update(f"{event.images_per_s:,.0f} img/s  loss {event.loss:.4g}{last}{best}")

    def epoch_end(self, event: EpochEnd) -> None:
        self.last_psnr = event.record["psnr"]
        self.best_psnr = max(self.best_psnr or self.last_psnr, self.last_psnr)

    def finished(self, status: str, message: str) -> None:
        self.query_one("#epoch-label", Label).update(status)
        best = f"  best {self.best_psnr:.2f} dB" if self.best_psnr is not None else ""
        self.query_one("#stats", Label).update(message + best)
