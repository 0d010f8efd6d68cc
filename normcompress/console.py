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
    """A console that prints strings as data: no markup, no highlighting, control characters escaped.
    On a terminal its lines break between words at the terminal's width (the terminal itself broke them
    mid-word); in a pipe or a file every line is whole, for grep and awk."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.soft_wrap = not self.is_terminal

    def print(self, *objects, **kwargs) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("highlight", False)
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


out = PlainConsole()
err = PlainConsole(stderr=True)


def terminal_width(console: Console = out) -> int | None:
    """The console's width where it writes to a terminal (stdout's by default); None in a pipe or a file,
    where lines are whole."""
    return console.width if console.is_terminal else None


def notice(message: str) -> None:
    err.print(Text.assemble(("notice: ", "yellow"), one_line(message)))


class ConsoleReport:
    """Training as train and study show it on stderr: notices, a bar over the run's steps with its loss
    and speed, and (epoch_lines) a line when a run starts and at the end of each epoch."""

    def __init__(self, quiet: bool = False, epoch_lines: bool = True) -> None:
        self.epoch_lines = epoch_lines and not quiet
        self.run_id: str | None = None
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet or not err.is_terminal,
            transient=True,
        )
        self.steps = self.progress.add_task("starting", total=None, detail="")
        self.stepping: dict[str, events.StepProgress] = {}  # each training run's latest step (a stack has several)

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
                    self.say(
                        f"{verb} {event.run_id}: {event.config.norm} on {event.data_source} "
                        f"({event.train_images} train / {event.val_images} val images), {event.device}"
                    )
            case events.StepProgress():
                self.stepping[event.run_id] = event
                self.progress.update(
                    self.steps,
                    total=event.epochs * event.steps,
                    completed=(event.epoch - 1) * event.steps + event.step,
                    description=f"epoch {event.epoch}/{event.epochs}",
                    detail=step_detail(list(self.stepping.values())),
                )
            case events.RunEnded():
                self.stepping.pop(event.run_id, None)
            case events.EpochEnd() if self.epoch_lines:
                self.say(epoch_line(event.record, event.epochs, terminal_width(self.progress.console)))


def epoch_line(r: dict, epochs: int, width: int | None = None) -> str:
    """An epoch's line: every metric, or on a terminal narrower than that the most telling that fit on
    one line (a line of 104 characters broke mid-word at 80 columns). metrics.jsonl keeps them all."""
    parts = [  # (how soon it goes, the text): MSE and MAE first (PSNR and the norms say as much)
        (0, f"epoch {r['epoch']:>3}/{epochs}"),
        (0, f"loss {r['loss']:.5f}"),
        (0, f"PSNR {r['psnr']:.2f} dB"),
        (3, f"MSE {r['mse']:.5f}"),
        (3, f"MAE {r['mae']:.4f}"),
        (2, f"SSIM {r['ssim']:.3f}"),
        (1, f"max-abs {r['maxabs_mean']:.3f}/{r['maxabs_worst']:.3f}"),
        (0, f"{r['images_per_s']:,.0f} img/s"),
    ]
    for kept in (3, 2, 1, 0):
        line = "  ".join(text for level, text in parts if level <= kept)
        if width is None or len(line) < width:
            return line
    return line


def step_detail(latest: list[events.StepProgress]) -> str:
    """Beside the step bar: one run's loss and speed, or for runs trained together (a stack, each in
    its own norm, so no one loss speaks for them) how many and their images/s together."""
    if len(latest) == 1:
        return f"loss {latest[0].loss:.4g}  {latest[0].images_per_s:,.0f} img/s"
    return f"{len(latest)} runs together  {sum(e.images_per_s for e in latest):,.0f} img/s"


def running_detail(running: dict[str, str]) -> str:
    """The runs under way beside the study's bar: each by name while they fit (two), else how many and
    the epochs they are at ("3/10", or "starting"), so that the bars keep their width with a stack of 16."""
    if len(running) <= 2:
        return ", ".join(f"{label} {epoch}" for label, epoch in running.items())
    done = sorted({e for e in running.values() if e[:1].isdigit()}, key=lambda e: int(e.partition("/")[0]))
    others = sorted({e for e in running.values() if not e[:1].isdigit()})
    return f"{len(running)} runs at {', '.join(done + others)}"


class StudyConsole:
    """A study's progress as `study` and `rd --rate-lambdas` show it: a bar over the runs, a line for each
    run reused, finished or failed, the epoch each running run is at when several run at once (on Ray, in
    a stack), and on Ray where each started."""

    def __init__(self, report: ConsoleReport, total: int, on_ray: bool, lines: tuple[str, ...] | None = None) -> None:
        self.report, self.on_ray = report, on_ray
        self.lines = lines or ("reused", "finished", "failed", "retrying")
        self.overall = report.progress.add_task(f"runs 0/{total}", total=total, detail="")
        self.running: dict[str, str] = {}  # on Ray or in a stack: each running run's epoch, shown beside the bar
        if on_ray:
            report.progress.update(report.steps, visible=False)  # no steps come back from Ray, only epochs

    def on_progress(self, p: events.StudyProgress) -> None:
        if p.state == "epoch" or (p.state in ("training", "resuming", "retrying") and self.on_ray):
            self.running[p.label] = f"{p.epoch}/{p.epochs}" if p.epochs else "starting"
        else:
            self.running.pop(p.label, None)
        detail = running_detail(self.running)
        self.report.progress.update(
            self.overall,
            completed=p.done,
            description=f"runs {p.done}/{p.total}",
            detail=f"running: {detail}" if detail else "",
        )
        if p.state in self.lines or (p.where and p.state == "training"):
            where = f" on {p.where}" if p.where else ""
            message = f": {one_line(p.message)}" if p.message and p.state != "training" else ""
            self.report.say(f"{p.state:>8}  {one_line(p.label)}{where}{message}")
