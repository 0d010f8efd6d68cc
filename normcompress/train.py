"""Training: a function of a TrainConfig that reports through events and can be cancelled.

The data lives on the training device as uint8 for the whole run; each step indexes a shuffled batch
and converts it to float there, so there is no DataLoader, no per-image decode and no host copy in
the loop. The loss is accumulated on the device and copied back at the progress rate without waiting
for the stream (readback.py). On CUDA the step is replayed from a CUDA graph where the run allows it
(step.py).
"""

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from . import distributed
from .config import TrainConfig
from .data import load_data
from .devices import resolve_device
from .events import EpochEnd, Event, Notice, RunEnded, RunStarted, StepProgress
from .model import check_training_images
from .readback import Readback
from .recipe import uses_channels_last
from .runs import Run, RunStore
from .session import (
    Cancelled,
    Session,
    TrainingFailed,
    device_images,
    ended_as,
    epoch_order,
    epoch_record,
    finish_run,
    loss_failed,
    machine_sampler,
    new_summary,
    resumable,
    save_epoch,
    setup_session,
    validate,
)
from .step import graphed_step

__all__ = ["EpochEnd", "RunEnded", "RunStarted", "StepProgress", "TrainConfig", "TrainingFailed", "train"]


def train(
    config: TrainConfig,
    store: RunStore,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    resume: str | None = None,
    progress_interval_s: float = 0.25,
    resume_on: str | None = None,
) -> Run | None:
    """Train a new run (or resume one by id, on `resume_on` instead of the device it asked for) and return
    it; the run's summary holds the outcome.

    Under torchrun, every process calls this; rank 0 returns the run, the others return None.

    Raises UsageError/NormcompressError for bad input, TrainingFailed for a non-finite loss,
    and re-raises KeyboardInterrupt after saving the run as interrupted.
    """
    emit = on_event or (lambda event: None)
    run = None
    if resume is not None:
        run, config = resumable(store, resume)
        if resume_on is not None:  # where it trains changes nothing it computes (beyond float rounding)
            config = replace(config, device=resume_on).validated()
    else:
        config.validated()
    ranks, device, created_group = distributed.start(resolve_device(config.device))
    if not ranks.is_main:

        def emit(event):
            return None

    completed = False
    try:
        run = _train_process(
            run,
            config,
            store,
            device,
            ranks,
            resume is not None,
            emit,
            cancel or threading.Event(),
            progress_interval_s,
        )
        completed = True
        return run
    finally:
        distributed.finish(created_group, completed)


def _train_process(run, config, store, device, ranks, resuming, emit, cancel, progress_interval_s) -> Run | None:
    """This process's part of the run. Its session (the DDP wrapper among it) is gone when it returns,
    before the process group is torn down: gloo threads outliving the group aborted the process at exit."""
    data = load_data(config.dataset, config.data_dir, config.limit, config.image_size, lambda m: emit(Notice(m)))
    summary = new_summary(data, device)
    check_training_images(config.model, len(data.train), config.image_size)  # before a run exists
    created = ranks.is_main and run is None
    if created:
        run = store.create(config, summary)
    # Other ranks write nothing (they only read a resumed run's checkpoint), so they hold no lock.
    with run.hold() if ranks.is_main else contextlib.nullcontext():
        try:
            channels_last = uses_channels_last(config, device)
            images = device_images(data, device, channels_last)
            session = setup_session(run, config, images, channels_last, device, ranks, summary, resuming, emit, cancel)
            session.progress_interval_s = progress_interval_s
        except BaseException:
            if created:  # it never reached its first step: nothing to keep, nothing to list as interrupted
                store.discard(run)
            raise
        _train_loop(session)
    return run if ranks.is_main else None


def _train_loop(s: Session) -> None:
    """Epochs from the checkpoint's to the config's; the run's summary records how it ended."""
    s.announce()
    run_step = graphed_step(s)
    started, wall_before = time.perf_counter(), s.summary.wall_time_s
    try:
        for epoch in range(s.start_epoch, s.config.epochs):
            record = _train_epoch(s, epoch, run_step)
            s.history.append(record)
            if s.run:
                save_epoch(s, record, wall_before + time.perf_counter() - started)
    except Cancelled as exc:
        finish_run(s, *ended_as(exc, s), wall_before + time.perf_counter() - started)
        return
    except BaseException as exc:
        finish_run(s, *ended_as(exc, s), wall_before + time.perf_counter() - started)
        raise
    finish_run(s, *ended_as(None, s), wall_before + time.perf_counter() - started)


def _train_epoch(s: Session, epoch: int, run_step: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """One pass over the training images, then the validation metrics: the epoch's metrics.jsonl record."""
    config, device, n, batch, steps = s.config, s.device, len(s.train_images), s.config.batch_size, s.steps
    epoch_start = last_report = time.perf_counter()
    sampler = machine_sampler(device)
    order = epoch_order(config.seed, epoch, n).to(device)
    loss_sum = torch.zeros((), device=device)
    step_losses = torch.empty(steps, device=device)  # read with loss_sum, never a sync per step
    readback = Readback(device)
    reported: list[float] = []
    requested = local_seen = 0
    for step in range(steps):
        if s.cancel.is_set():
            raise Cancelled
        indices = s.ranks.share(order[step * batch : (step + 1) * batch])
        loss = run_step(indices)  # a graph's own tensor: read here, before the next step writes it
        if s.scheduler is not None:
            s.scheduler.step()
        loss_sum += loss * len(indices)
        step_losses[step] = loss
        local_seen += len(indices)
        now = time.perf_counter()
        if now - last_report >= s.progress_interval_s or step == steps - 1:
            last_report = now
            sampler.sample()
            # No host sync until the epoch's end: each report shows the values whose copy has landed.
            readback.request(torch.cat([loss_sum.view(1), step_losses[requested : step + 1]]), (step, local_seen, now))
            requested = step + 1
            for values, (at_step, at_seen, at) in readback.arrived(wait=step == steps - 1):
                reported += values[1:]
                _progress(s, epoch, at_step, values, at_seen, at - epoch_start)
    train_time = time.perf_counter() - epoch_start
    totals = s.ranks.sum(torch.stack([loss_sum, torch.tensor(float(local_seen), device=device)]))
    metrics = validate(s, epoch)
    images_per_s = totals[1].item() / train_time
    return epoch_record(s, epoch, (totals[0] / totals[1]).item(), metrics, images_per_s, reported, sampler, epoch_start)


def _progress(s: Session, epoch: int, step: int, values: list[float], local_seen: int, elapsed: float) -> None:
    """The StepProgress of a report made after `step`: the running mean and the step losses since the last."""
    mean_loss, fresh = values[0] / local_seen, values[1:]
    if not math.isfinite(mean_loss):
        raise loss_failed(s.config, epoch, step)
    seen = min((step + 1) * s.config.batch_size, len(s.train_images))
    s.emit(StepProgress(epoch + 1, s.config.epochs, step + 1, s.steps, mean_loss, seen / elapsed, fresh, s.run_id))
