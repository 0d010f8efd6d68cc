"""A study: every run of a StudyConfig trained (reusing or resuming matching runs), then a report.

Runs are ordinary runs in the run store; a study finds its runs again by their configuration, so
re-running a study trains only what is missing and resumes what was interrupted. The runs train here
(local.py: one after another, or side by side on several devices; stacked.py: many together as one
stacked model) or as tasks on a Ray cluster (cluster.py); run_study chooses, and no executor knows of
another but stacked.py, which trains a run with no partner as local.py does.
"""

import threading
from collections.abc import Callable

from ..events import Event, StudyProgress
from ..runs import Run, RunStore
from ..study_config import StudyConfig
from .plan import Pending, Progress, find_run

__all__ = ["StudyConfig", "StudyProgress", "find_run", "run_study"]


def run_study(
    study: StudyConfig,
    store: RunStore,
    on_progress: Callable[[StudyProgress], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    keep_going: bool = False,
    trainer: Callable | None = None,
    stack_trainer: Callable | None = None,
) -> list[Run]:
    """Train (or reuse, or resume) every run of the study; return the completed runs in study order.

    A run that fails ends the study, or with keep_going is reported (state "failed") and the queue goes
    on to the next; Ctrl-C ends it either way. `trainer` trains each run here, with normcompress.train's
    arguments and result, and `stack_trainer` each stack, with normcompress.stack.train_stack's (the
    app's train in a child process).
    """
    study.validated()
    configs = study.run_configs()
    progress = Progress(len(configs), on_progress or (lambda p: None))
    pending = []
    for index, config in enumerate(configs):
        done = find_run(store, config, ("completed",))
        if done:
            progress.results[index] = done
            progress(study.label(config), "reused", run_id=done.id)
        else:
            pending.append(Pending(index, config, study.label(config), find_run(store, config, ("interrupted",))))
    if pending:
        _executor(study, trainer, stack_trainer).run(pending, store, progress, on_event, cancel, keep_going)
    return [progress.results[i] for i in sorted(progress.results)]


def _executor(study: StudyConfig, trainer: Callable | None, stack_trainer: Callable | None):
    if study.ray is not None:
        from .cluster import RayExecutor

        return RayExecutor(study)
    from .local import LocalExecutor

    if trainer is None:
        from ..train import train as trainer  # torch: the names above are read without it (the app's study screen)
    if _stacking(study):
        from .stacked import StackedExecutor

        return StackedExecutor(study.devices[0], trainer, stack_trainer)
    return LocalExecutor(study.devices, trainer)


def _stacking(study: StudyConfig) -> bool:
    """Whether the study's runs train in stacks: as asked, else on one GPU only (on the CPU a stack
    measured slower than its runs one by one: benchmarks/stack.py)."""
    if study.stack is not None:
        return study.stack
    from ..devices import resolve_device

    return len(study.devices) == 1 and resolve_device(study.devices[0]).type == "cuda"
