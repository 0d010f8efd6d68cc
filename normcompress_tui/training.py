"""The app's runs and studies: started, stopped and resumed here, trained in a worker (each run, or each
study with all its runs, in a child process: trainer.py), their events shown on the main screen as they come.

A plain object that the app holds: it knows the main screen's widgets through `view` (an object with
the widgets as attributes), so its handling of events can be tested without a terminal.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from normcompress import api
from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError, one_line_error
from normcompress.events import EpochEnd, Event, Notice, RunEnded, RunStarted, StepProgress, StudyProgress
from normcompress.runs import Run, RunInfo, RunStore, run_label
from normcompress.study_config import StudyConfig
from normcompress.text import count

from .trainer import study_in_process, train_in_process, trainers_here
from .widgets.runs_table import starting_info
from .words import in_form_words

if TYPE_CHECKING:
    from textual.worker import Worker

PROGRESS_INTERVAL_S = 1.0  # how often the engine sends step progress
TICK_S = 1.0  # what changes while a run trains is drawn at this tick, in one repaint
PREVIEW_INTERVAL_S = 5.0  # the live run's reconstructions are shown again at most this often
TRAINING_ENV = "NORMCOMPRESS_TUI_TRAINING"  # "thread": train in the app's process (for the overhead benchmark)


class View(Protocol):
    """What the controller shows things on (the main screen, or a test's stand-in)."""

    @property
    def controls(self) -> Any: ...
    @property
    def chart(self) -> Any: ...
    @property
    def progress(self) -> Any: ...
    @property
    def queue(self) -> Any: ...
    @property
    def preview(self) -> Any: ...
    @property
    def system_line(self) -> Any: ...

    def refresh_runs(self) -> object: ...
    def overlay_when_listed(self, run_id: str) -> object: ...
    def show_starting(self, info: RunInfo | None) -> object: ...
    def load_reference(self, run_id: str) -> object: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...


class TrainingController:
    _view: View | None

    @property
    def view(self) -> View:
        """The screen this controller shows on; set once the app has built it."""
        if self._view is None:
            raise RuntimeError("the training controller has no view yet")
        return self._view

    @view.setter
    def view(self, view: View) -> None:
        self._view = view

    def __init__(self, store: RunStore, post, start_worker, view: View | None = None) -> None:
        """`post(message)` hands a worker's message to the UI thread; `start_worker(function, *args)` runs
        a function in the training worker (one at a time)."""
        self.store, self.post, self.start_worker = store, post, start_worker
        self._view = view
        self.cancel = threading.Event()
        self.training = False
        self.current_run: Run | None = None
        self.live: str | None = None  # the run the chart and progress follow (in a stack, its first) until it ends
        self.quit_when_stopped = False
        self.resuming: str | None = None  # the id of the run being resumed
        self.preview_at = 0.0  # when, and which epoch's, reconstructions were shown
        self.preview_epoch: int | None = None
        self.starting: RunInfo | None = None  # the runs table's row for the run that is starting

    # -- starting and stopping ----------------------------------------------------------------------
    def start(self, config: TrainConfig) -> None:
        self.view.queue.clear()  # a study's line ("study 2/2 … done") is not this run's
        self.claim(starting=f"{config.norm} on {config.dataset}", row=starting_info(config))
        self.start_worker(self._train_worker, config, None)

    def resume(self, info: RunInfo) -> None:
        """Train `info`'s run on; on the Run pane's Device where its own is not on this machine (a run
        trained on a GPU box, its store copied to a laptop), saying so."""
        own = info.config.device if info.config else "auto"
        resume_on = self.view.controls.device_to_resume_on(own)
        if resume_on:
            self.view.notify(f"{info.label} trained on {own}, which is not here: it goes on on {resume_on}")
        self.view.queue.clear()
        self.claim(info.id, starting=f"the resume of {info.label}", row=starting_info(resumed=info))
        self.start_worker(self._train_worker, None, info.id, resume_on)

    def start_study(self, study: StudyConfig) -> None:
        if study.stack is None and study.ray is None:  # decided here, from the probe: the app never loads torch
            study = replace(study, stack=len(study.devices) == 1 and self.on_cuda(study.devices[0]))
        first = starting_info(study.run_configs()[0])
        self.claim(starting=f"a study of {count(study.runs_count(), 'run')}", row=first)
        self.view.queue.begin([study.label(c) for c in study.run_configs()])
        if study.seeds > 1 and self.view.chart.model.group_by is None:  # g is not in the footer: say it once here
            self.view.notify(
                "The study's runs gather on the chart as they finish: g groups them, with a band over the seeds"
            )
        self.start_worker(self._study_worker, study)

    def on_cuda(self, device: str) -> bool:
        """Whether runs asked for `device` train on CUDA: as named, or `auto` where the probe found CUDA."""
        return device.startswith("cuda") or (device == "auto" and self.view.controls.cuda_available)

    def claim(self, resume: str | None = None, starting: str = "", row: RunInfo | None = None) -> None:
        """A run (or a study) is starting: a fresh cancel flag, Start disabled until its worker ends, and at
        once the words of what is starting, with a spinner until its first step, and its row in the table."""
        self.training = True
        self.cancel = threading.Event()
        self.resuming, self.live = resume, None
        self.view.controls.set_running(True)
        if starting:
            self.view.progress.starting(starting)
        self.starting = row
        self.view.show_starting(row)

    def stop(self) -> bool:
        """Stop the run within one batch (kept as interrupted); False when none is training."""
        if self.training:
            self.cancel.set()
        return self.training

    # -- the workers (threads) --------------------------------------------------------------------------
    def _train_worker(self, config: TrainConfig | None, resume: str | None, resume_on: str | None = None) -> None:
        from .messages import TrainingEvent

        self.train_one(
            config, self.store, lambda e: self.post(TrainingEvent(e)), self.cancel, resume=resume, resume_on=resume_on
        )

    def _study_worker(self, study: StudyConfig) -> None:
        """The study in the training worker: a run that fails is reported and the queue goes on."""
        from .messages import StudyUpdate, TrainingEvent

        on_progress, on_event = lambda p: self.post(StudyUpdate(p)), lambda event: self.post(TrainingEvent(event))
        try:
            if os.environ.get(TRAINING_ENV) == "thread":
                here = trainers_here(PROGRESS_INTERVAL_S)
                runs = api.run_study(study, self.store, on_progress, on_event, self.cancel, keep_going=True, **here)
            else:  # all its runs in one child, which loads torch and the data once
                runs = study_in_process(study, self.store, on_progress, on_event, self.cancel, PROGRESS_INTERVAL_S)
        except NormcompressError as exc:  # the study itself (its child died, a cluster out of reach), not a run
            ending = f"ended: {exc}; the same study again goes on from here"  # the run is kept as interrupted
            self.post(StudyUpdate(StudyProgress(0, study.runs_count(), "", "ended", ending)))
            raise
        ending = (
            "stopped" if self.cancel.is_set() else "done"
        ) + f": {len(runs)} of {study.runs_count()} runs completed"
        self.post(StudyUpdate(StudyProgress(len(runs), study.runs_count(), "", "ended", ending)))

    @staticmethod
    def train_one(config, store, on_event, cancel, resume=None, resume_on=None):
        """One run, as api.train_run would (same arguments, the run or None), in a child process (measured
        faster: see trainer.py) or, with NORMCOMPRESS_TUI_TRAINING=thread, in the calling worker thread."""
        where = {"resume": resume, "resume_on": resume_on, "progress_interval_s": PROGRESS_INTERVAL_S}
        if os.environ.get(TRAINING_ENV) == "thread":  # torch: loaded when a run starts, not at launch
            return api.train_run(config, store, on_event, cancel, **where)
        return train_in_process(config, store, on_event, cancel, **where)

    # -- what the workers report, on the UI thread --------------------------------------------------------
    def on_event(self, event: Event) -> None:
        view = self.view
        if view is None:
            return
        if isinstance(event, StepProgress | EpochEnd) and event.run_id and event.run_id != self.live:
            return  # a run of the stack beside the one shown: its rows come from the store
        if isinstance(event, RunEnded | Notice):  # "try a smaller --lr" as "try a smaller LR": the form's words
            event = replace(event, message=in_form_words(event.message))
        match event:
            case StepProgress():
                view.progress.step(event)
                view.chart.add_steps(event.epoch, event.step, event.steps, event.step_losses)
            case EpochEnd():
                view.progress.epoch_end(event)
                view.chart.add_epoch(event.record)
            case RunStarted() if self.live is None:
                self._started(event)
            case RunStarted():  # the chart follows the stack's first run; the others are overlaid on it
                view.overlay_when_listed(event.run_id)
            case RunEnded() if event.run_id != self.live:  # a run of the stack beside the one shown
                view.refresh_runs()
                self._say_ended(event)
            case RunEnded():
                self.live = None
                view.progress.finished(event.status, event.message)
                epochs = view.chart.model.current_epochs
                if self.current_run is not None and epochs:
                    self.show_live_preview(epochs[-1]["epoch"], ended=event.status)
                view.chart.model.end_run()  # its label drops "(live)", on the chart and in exports
                view.chart.redraw()
                view.refresh_runs()
                if view.chart.model.reference is None and event.status == "completed":
                    view.load_reference(event.run_id)
                self._say_ended(event)
            case Notice():
                view.notify(event.message, title="Notice", severity="warning", timeout=10)

    def _say_ended(self, event: RunEnded) -> None:
        self.view.notify(
            f"{event.run_id}: {event.message}", severity="information" if event.status == "completed" else "warning"
        )

    def _started(self, event: RunStarted) -> None:
        self.live = event.run_id
        self.current_run = Run(self.store.root / event.run_id)
        earlier = []
        if self.resuming == event.run_id:  # the epochs before the stop stay on the chart
            try:  # those alone: the child may have saved its first new epoch before this event is read
                earlier = [r for r in self.current_run.metrics() if r["epoch"] <= event.start_epoch]
            except NormcompressError:
                earlier = []
        self.view.chart.start_run(run_label(event.config.norm, event.run_id), earlier, event.run_id)
        self.view.progress.started(event)
        if self.starting is not None:  # the row has its run's id now, until the listing shows the run
            self.view.show_starting(replace(self.starting, id=event.run_id, config=event.config))
        self.view.refresh_runs()

    def on_study_update(self, update: StudyProgress) -> None:
        if self.view is None:
            return
        if update.state == "ended":
            self.view.queue.ended(update.message)
            if self.view.progress.is_starting:  # no run took a step (all reused, or failed first): say how it ended
                self.view.progress.finished(update.message.partition(":")[0], update.message)
            return
        self.view.queue.progress(update)
        if update.state in ("reused", "finished") and update.run_id:  # the study's runs gather on the chart
            self.view.overlay_when_listed(update.run_id)
        if update.state == "failed":
            self.view.notify(
                f"{update.label} failed: {in_form_words(update.message)}; the study goes on",
                title="Study",
                severity="error",
                timeout=10,
            )

    def show_live_preview(self, epoch: int, ended: str = "") -> None:
        """The current run's reconstructions after `epoch`: live, or as it `ended` (completed, interrupted)."""
        if self.current_run is None:
            return
        self.preview_at, self.preview_epoch = time.monotonic(), epoch
        self.view.preview.show(self.current_run.recon_path, f"{count(epoch, 'epoch')}, {ended or 'live'}")

    def tick(self) -> None:
        """Draw what changed: progress, the system line, the chart when a redraw is due, the live run's
        reconstructions every few seconds. Events only record; on two cores each repaint is taken from
        training, and one a second costs less than one for each event and each widget's own timer."""
        view = self.view
        view.system_line.sample()
        view.progress.show()
        early = TICK_S / 2  # what is due within half a tick is done at this one
        view.chart.redraw_when_due(early)
        epochs = view.chart.model.current_epochs
        if (
            self.training
            and self.current_run is not None
            and epochs
            and epochs[-1]["epoch"] != self.preview_epoch
            and time.monotonic() - self.preview_at >= PREVIEW_INTERVAL_S - early
        ):
            self.show_live_preview(epochs[-1]["epoch"])

    def worker_ended(self, worker: Worker, failed: bool) -> bool:
        """The training worker has ended (completed, stopped, or failed): the UI may start another run. A
        failure is a notification; it never takes the app down. True when the app should now quit."""
        progress = self.view.progress
        if failed and worker.error is not None:
            error = in_form_words(one_line_error(worker.error))
            self.view.notify(error, title="Training stopped", severity="error", timeout=10)
            if self.live is not None or progress.is_starting:  # no RunEnded will come (none, or its child died)
                progress.finished("failed", error)
                self.live = None
        elif progress.is_starting:  # no step came, and no study's ending: it was stopped before one
            progress.finished("stopped", "stopped before its first step")
        self.training = False
        if self.quit_when_stopped:
            return True
        self.starting = None
        self.view.show_starting(None)
        self.view.controls.set_running(False)
        self.view.refresh_runs()
        return False
