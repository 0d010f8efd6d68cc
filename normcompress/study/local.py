"""A study's runs trained here: one after another on one device, or side by side on several (one run
per device at a time), each by the trainer given (normcompress.train, or the app's child process)."""

import threading
from collections.abc import Callable

from ..errors import one_line_error
from ..runs import RunStore, Status
from .plan import Pending, Progress


class LocalExecutor:
    def __init__(self, devices: list[str], trainer: Callable) -> None:
        self.devices, self.train = devices, trainer

    def run(
        self,
        pending: list[Pending],
        store: RunStore,
        progress: Progress,
        on_event,
        cancel: threading.Event | None,
        keep_going: bool,
    ) -> None:
        """Train the pending runs. A run that fails ends the study (its error raised here), or with
        keep_going is reported and the queue goes on; a stop (cancel) ends it after the current run."""
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(device: str) -> None:
            while not errors and not (cancel and cancel.is_set()):
                with lock:
                    if not pending:
                        return
                    item = pending.pop(0)
                if not self._one(item, device, store, progress, on_event, cancel, keep_going, errors, lock):
                    return

        if len(self.devices) == 1:
            worker(self.devices[0])  # in this thread, so Ctrl-C reaches the training loop
        else:
            threads = [threading.Thread(target=worker, args=(d,), daemon=True) for d in self.devices]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]

    def _one(
        self, item: Pending, device: str, store, progress: Progress, on_event, cancel, keep_going, errors, lock
    ) -> bool:
        """Train one run; whether the worker goes on to the next."""
        item.config.device = device
        progress(item.label, "resuming" if item.interrupted else "training")
        try:
            run = self.train(
                item.config, store, on_event, cancel, resume=item.interrupted.id if item.interrupted else None
            )
        except Exception as exc:  # the run is kept as failed (the engine saw to it)
            if not keep_going:
                errors.append(exc)
                return False
            progress(item.label, "failed", one_line_error(exc))
            return True
        except BaseException as exc:  # Ctrl-C: handed to the caller's thread
            errors.append(exc)
            return False
        if run is None or run.info().status != Status.COMPLETED:
            return False  # cancelled (before the run was created, or during it)
        with lock:
            progress.done(item.index, run, item.label)
        return True
