"""A study's runs trained here in stacks: the runs that share a model and data train together as one
stacked model (normcompress.stack, or the app's child process), each still an ordinary run; a run that
cannot, or has no partner, trains alone as LocalExecutor trains it."""

import threading
from collections.abc import Callable
from dataclasses import replace

from ..config import TrainConfig
from ..errors import NormcompressError
from ..events import EpochEnd, RunStarted
from ..runs import RunStore, Status
from ..stackable import stacks
from .local import LocalExecutor
from .plan import Pending, Progress


class StackedExecutor:
    def __init__(self, device: str, trainer: Callable, stack_trainer: Callable | None = None) -> None:
        """`trainer` trains a run alone and `stack_trainer` a stack, with train's and train_stack's arguments
        (by default train_stack here; the app's trains in a child process, and this module loads no torch)."""
        if stack_trainer is None:
            from ..stack import train_stack as stack_trainer
        self.device, self.trainer, self.stack_trainer = device, trainer, stack_trainer

    def run(
        self,
        pending: list[Pending],
        store: RunStore,
        progress: Progress,
        on_event,
        cancel: threading.Event | None,
        keep_going: bool,
    ) -> None:
        """Train the pending runs, stack by stack. A run that fails ends the study once its stack has
        trained (its error raised here), or with keep_going is reported; a stop ends it after the stack."""
        for item in pending:
            item.config.device = self.device
        for indices in stacks([_as_trained(item) for item in pending]):
            if cancel and cancel.is_set():
                return
            items = [pending[i] for i in indices]
            if len(items) == 1:
                LocalExecutor([self.device], self.trainer).run(items, store, progress, on_event, cancel, keep_going)
                continue
            if not self._stack(items, store, progress, on_event, cancel, keep_going):
                return

    def _stack(self, items: list[Pending], store, progress: Progress, on_event, cancel, keep_going) -> bool:
        """Train one stack; whether the study goes on to the next."""
        for item in items:
            progress(item.label, "resuming" if item.interrupted else "training")
        labels: dict[str, Pending] = {}

        def relay(event) -> None:
            if isinstance(event, RunStarted):  # the runs start in the stack's order
                labels[event.run_id] = items[len(labels)]
            elif isinstance(event, EpochEnd) and event.run_id in labels:
                progress(labels[event.run_id].label, "epoch", epoch=event.epoch, epochs=event.epochs)
            if on_event:
                on_event(event)

        resumes = [item.interrupted.id if item.interrupted else None for item in items]
        runs = self.stack_trainer([item.config for item in items], store, relay, cancel, resumes)
        failure, interrupted = None, False
        for item, run in zip(items, runs, strict=True):
            summary = run.summary()
            interrupted = interrupted or summary.status == Status.INTERRUPTED
            if summary.status == Status.COMPLETED:
                progress.done(item.index, run, item.label)
            elif summary.status == Status.FAILED and keep_going:
                progress(item.label, "failed", summary.message)
            elif summary.status == Status.FAILED:
                failure = failure or NormcompressError(summary.message)  # what train raises: TrainingFailed, one line
        if failure:
            raise failure
        return not interrupted


def _as_trained(item: Pending) -> TrainConfig:
    """A pending run's configuration on the data it will train on: an interrupted run resumes on the data
    it began with (the sample, after CIFAR-10 fell back to it), so it stacks only with runs on those."""
    if item.interrupted is None:
        return item.config
    return replace(item.config, dataset=item.interrupted.info().data_source or item.config.dataset)
