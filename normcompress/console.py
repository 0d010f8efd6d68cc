"""How the CLI prints: strings as data (never markup, control characters escaped), notices, and the
progress of training as `train` and `study` show it on stderr."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from . import events
from .text import one_line, printable


class PlainConsole(Console):
    """A console that prints strings as data: no markup, no highlighting, control characters escaped."""

    def print(self, *objects, **kwargs) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("highlight", False)
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


out = PlainConsole(soft_wrap=True)
err = PlainConsole(stderr=True, soft_wrap=True)


def notice(message: str) -> None:
    err.print(Text.assemble(("notice: ", "yellow"), one_line(message)))


class ConsoleReport:
    """Training as train and study show it on stderr: notices, a bar over the run's steps with its loss
    and speed, and (epoch_lines) a line when a run starts and at the end of each epoch."""

    def __init__(self, quiet: bool = False, epoch_lines: bool = True) -> None:
        self.epoch_lines = epoch_lines and not quiet
        self.run_id: str | None = None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[detail]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=err, disable=quiet or not err.is_terminal, transient=True)
        self.steps = self.progress.add_task("starting", total=None, detail="")

    def __enter__(self) -> "ConsoleReport":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def on_event(self, event: events.Event) -> None:
        match event:
            case events.Notice():
                notice(event.message)
            case events.RunStarted():
                self.run_id = event.run_id
                verb = f"resuming after epoch {event.start_epoch}" if event.start_epoch else "training"
                if self.epoch_lines:
                    self.say(f"{verb} {event.run_id}: {event.config.norm} on {event.data_source} "
                             f"({event.train_images} train / {event.val_images} val images), {event.device}")
            case events.StepProgress():
                self.progress.update(self.steps, total=event.epochs * event.steps,
                                     completed=(event.epoch - 1) * event.steps + event.step,
                                     description=f"epoch {event.epoch}/{event.epochs}",
                                     detail=f"loss {event.loss:.4g}  {event.images_per_s:,.0f} img/s")
            case events.EpochEnd() if self.epoch_lines:
                r = event.record
                self.say(f"epoch {r['epoch']:>3}/{event.epochs}  loss {r['loss']:.5f}  PSNR {r['psnr']:.2f} dB  "
                         f"MSE {r['mse']:.5f}  MAE {r['mae']:.4f}  SSIM {r['ssim']:.3f}  "
                         f"max-abs {r['maxabs_mean']:.3f}/{r['maxabs_worst']:.3f}  {r['images_per_s']:,.0f} img/s")
