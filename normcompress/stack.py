"""Many runs trained together as one stacked model, each saved as an ordinary run.

Runs that share a model, the data and the batch size step together: one vmap (torch.func) of the
model over the runs' stacked weights, each run with its own norm, seed, data order, learning rate and
schedule. Each run keeps its own module, optimizer and scheduler, exactly as when it trains alone; a
step stacks their parameters with torch.stack (so each run's gradient flows back to its own weights),
runs one forward for all, and sums the runs' losses, whose gradients do not mix. A run in a stack
therefore computes what it computes alone up to float rounding (a batched convolution adds in another
order), saves the same files after each epoch, and can leave the stack (stopped, failed, finished)
between any two steps while the others go on.

On a GPU this turns many launch-bound little steps into one, replayed from a CUDA graph (step.py: a
new capture whenever a run leaves); on the CPU it measured slower than the runs one by one
(benchmarks/stack.py), so a study stacks there only when asked.
"""

import contextlib
import copy
import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch.func import functional_call, vmap

from .config import TrainConfig
from .data import load_data
from .devices import resolve_device
from .distributed import Ranks
from .errors import UsageError
from .events import Event, Notice, StepProgress
from .metrics import to_float
from .model import check_training_images
from .readback import Readback
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
from .stackable import SHARED, why_not_stacked
from .step import StepGraphs
from .text import count


class StackedForward:
    """One forward of many runs' models of one architecture: vmap over their parameters stacked."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.template = copy.deepcopy(model).to("meta")  # the structure only; the weights come per call
        self.param_names = [name for name, _ in model.named_parameters()]
        self.buffer_names = [name for name, _ in model.named_buffers()]
        self.batched = vmap(self._one)

    def _one(self, params: dict, buffers: dict, images: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), (images,))

    def __call__(self, models: list[torch.nn.Module], images: torch.Tensor) -> torch.Tensor:
        """Each model's reconstruction of its own images: (runs, batch, C, H, W) in and out."""
        params = [dict(m.named_parameters()) for m in models]
        buffers = [dict(m.named_buffers()) for m in models]
        stacked_params = {n: torch.stack([p[n] for p in params]) for n in self.param_names}
        stacked_buffers = {n: torch.stack([b[n] for b in buffers]) for n in self.buffer_names}
        return self.batched(stacked_params, stacked_buffers, images)


def train_stack(
    configs: list[TrainConfig],
    store: RunStore,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    resumes: list[str | None] | None = None,
    stops: list[threading.Event] | None = None,
    progress_interval_s: float = 0.25,
) -> list[Run]:
    """Train these runs together (a new run each, or resume the run whose id `resumes` gives in its
    place) and return them in order; each run's summary holds its outcome.

    `cancel` stops every run, `stops[i]` run i alone (each kept as interrupted, resumable alone or in
    another stack). A run whose loss becomes non-finite is kept as failed and the others go on; Ctrl-C
    saves every run as interrupted and is re-raised.
    """
    emit = on_event or (lambda event: None)
    resumes = resumes or [None] * len(configs)
    stops = stops or [threading.Event() for _ in configs]
    if not configs or len(resumes) != len(configs) or len(stops) != len(configs):
        raise UsageError("a stack needs one resume (or None) and one stop per run")
    # A new run records the layout it trains in: vmap's batched convolutions run in the default one.
    members: list[tuple[Run | None, TrainConfig]] = [
        resumable(store, ref) if ref is not None else (None, replace(config, channels_last=False).validated())
        for config, ref in zip(configs, resumes, strict=True)
    ]
    _check_together([config for _, config in members])
    first = members[0][1]
    device = resolve_device(first.device)
    data = load_data(first.dataset, first.data_dir, first.limit, first.image_size, lambda m: emit(Notice(m)))
    check_training_images(first.model, len(data.train), first.image_size)  # before a run exists
    summaries = [new_summary(data, device) for _ in members]
    for summary in summaries:
        summary.notices = [*summary.notices, f"trained in a stack of {count(len(members), 'run')}"]
    images = device_images(data, device, channels_last=False)
    created: list[Run] = []
    locks: list[contextlib.ExitStack] = []  # one per run: released the moment it leaves the stack
    sessions = []
    try:
        for (run, config), summary, ref, stop in zip(members, summaries, resumes, stops, strict=True):
            if run is None:
                run = store.create(config, summary)
                created.append(run)
            locks.append(contextlib.ExitStack())
            locks[-1].enter_context(run.hold())
            sessions.append(
                setup_session(run, config, images, False, device, Ranks(), summary, ref is not None, emit, stop)
            )
    except BaseException:
        for lock in locks:
            lock.close()
        for run in created:  # none reached a first step: nothing to keep
            store.discard(run)
        raise
    try:
        _train_together(_Members(sessions, locks), cancel or threading.Event(), progress_interval_s)
    finally:
        for lock in locks:
            lock.close()
    return [s.run for s in sessions if s.run is not None]


def _check_together(configs: list[TrainConfig]) -> None:
    """UsageError where these runs cannot form one stack: one that trains alone, or a shared setting that differs."""
    for config in configs:
        why = why_not_stacked(config)
        if why:
            raise UsageError(f"a {config.norm} run cannot train in a stack: {why}")
    for key in SHARED:
        values = {str(getattr(config, key)) for config in configs}
        if len(values) > 1:
            raise UsageError(f"the runs of a stack share their {key}; these have {', '.join(sorted(values))}")


class _Members:
    """The runs still in the stack. A run leaves it the moment it ends (stopped, failed, completed):
    its summary says how, and its lock is released, so it can be resumed while the others train on."""

    def __init__(self, sessions: list[Session], locks: list[contextlib.ExitStack]) -> None:
        self.active = list(sessions)
        self.locks = {id(s): lock for s, lock in zip(sessions, locks, strict=True)}
        self.started = time.perf_counter()
        self.wall_before = {id(s): s.summary.wall_time_s for s in sessions}

    def wall(self, s: Session) -> float:
        return self.wall_before[id(s)] + time.perf_counter() - self.started

    def leave(self, s: Session, exc: BaseException | None) -> None:
        finish_run(s, *ended_as(exc, s), self.wall(s))
        self.active = [m for m in self.active if m is not s]
        self.locks[id(s)].close()


def _train_together(members: _Members, cancel: threading.Event, progress_interval_s: float) -> None:
    """Epochs until every run has its own number of them, or has left the stack."""
    for s in members.active:
        s.announce()
    forward = StackedForward(members.active[0].model)
    run_step = StepGraphs(members.active, lambda sessions, indices: stacked_update(forward, sessions, indices))
    try:
        while members.active:
            for s, record in _stack_epoch(members, run_step, cancel, progress_interval_s):
                s.history.append(record)
                save_epoch(s, record, members.wall(s))
                if s.summary.epochs_done >= s.config.epochs:
                    members.leave(s, None)
    except BaseException as exc:  # stopped all, Ctrl-C, or a failure of the step itself (out of memory)
        for s in members.active:
            members.leave(s, exc)
        if not isinstance(exc, Cancelled):
            raise


def _stack_epoch(
    members: _Members, run_step: StepGraphs, cancel: threading.Event, progress_interval_s: float
) -> list[tuple[Session, dict]]:
    """One pass of every active run over the training images (each at its own epoch, in its own order),
    then each run's validation: each staying run's record (a run stopped or failed has left)."""
    active = members.active
    device, steps = active[0].device, active[0].steps
    epoch_start = last_report = time.perf_counter()
    sampler = machine_sampler(device)
    orders = torch.stack([epoch_order(s.config.seed, s.summary.epochs_done, len(s.train_images)) for s in active])
    orders = orders.to(device)
    loss_sums = torch.zeros(len(active), device=device)
    step_losses = torch.empty(len(active), steps, device=device)
    staying = list(enumerate(active))  # (row in orders and the sums, run) of the runs still in the epoch
    readback = Readback(device)
    requested = seen = 0
    for step in range(steps):
        if cancel.is_set():
            raise Cancelled
        going_on = []
        for row, s in staying:  # each run's stop read once: one set between two reads would leave it stranded
            if s.cancel.is_set():
                members.leave(s, Cancelled())
            else:
                going_on.append((row, s))
        staying = going_on
        if not staying:
            return []
        seen += _stack_step(staying, run_step, orders, step, loss_sums, step_losses)
        now = time.perf_counter()
        if now - last_report >= progress_interval_s or step == steps - 1:
            last_report = now
            sampler.sample()
            rows = _device_rows(tuple(row for row, _ in staying), device)
            sums_and_fresh = torch.cat([loss_sums[rows], step_losses[rows, requested : step + 1].flatten()])
            readback.request(sums_and_fresh, (staying, requested, step, seen, now - epoch_start))
            requested = step + 1
            for values, at in readback.arrived(wait=step == steps - 1):
                failed = _report(values, *at, steps, still=[s for _, s in staying])
                for s, exc in failed:
                    members.leave(s, exc)
                staying = [(row, s) for row, s in staying if all(s is not f for f, _ in failed)]
    images_per_s = seen / (time.perf_counter() - epoch_start)  # each run's, while the stack trained them all
    records = []
    kept, sums = step_losses.tolist(), loss_sums.tolist()
    for row, s in staying:
        try:
            metrics = validate(s, s.summary.epochs_done)
        except TrainingFailed as exc:
            members.leave(s, exc)
            continue
        epoch = s.summary.epochs_done
        records.append(
            (s, epoch_record(s, epoch, sums[row] / seen, metrics, images_per_s, kept[row], sampler, epoch_start))
        )
    return records


def _stack_step(staying, run_step: StepGraphs, orders, step: int, loss_sums, step_losses) -> int:
    """One training step of every staying run, each on its own next batch; the images each run saw."""
    members = [s for _, s in staying]
    rows = _device_rows(tuple(row for row, _ in staying), orders.device)
    batch = members[0].config.batch_size
    indices = orders[rows, step * batch : (step + 1) * batch]
    losses = run_step(members, indices)  # a graph's own tensor: read here, before the next step writes it
    for s in members:
        if s.scheduler is not None:
            s.scheduler.step()
    loss_sums[rows] += losses * indices.shape[1]
    step_losses[rows, step] = losses
    return indices.shape[1]


@functools.lru_cache(maxsize=8)
def _device_rows(rows: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The staying runs' rows as a tensor on the device, made once per set of runs: a Python list as an
    index is copied to the GPU at every use, and that copy waits for the host."""
    return torch.tensor(rows, device=device)


def stacked_update(forward: StackedForward, members: list[Session], indices: torch.Tensor) -> torch.Tensor:
    """One update of every member's model, each on its own row of `indices`; their losses, detached."""
    first = members[0]
    targets = to_float(first.train_images[indices])
    with torch.autocast(first.device.type, torch.bfloat16, enabled=first.config.amp == "bf16", cache_enabled=False):
        outputs = forward([s.model for s in members], targets)
    losses = torch.stack([s.norm(o.float(), t) for s, o, t in zip(members, outputs, targets, strict=True)])
    for s in members:
        s.optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()  # each run's loss reaches its own weights only
    for s in members:
        s.optimizer.step()
    return losses.detach()


def _report(
    values: list[float], staying, reported: int, step: int, seen: int, elapsed: float, steps: int, still
) -> list:
    """The StepProgress of each run of a report still in the stack, from the report's values (the runs'
    loss sums, then each run's step losses since the last report); the runs whose loss became non-finite."""
    means, fresh = values[: len(staying)], values[len(staying) :]
    width = step + 1 - reported
    failed = []
    for i, (_, s) in enumerate(staying):
        if all(s is not t for t in still):  # it left (stopped, or failed at an earlier report) since
            continue
        epoch = s.summary.epochs_done
        mean = means[i] / seen
        if not math.isfinite(mean):
            failed.append((s, loss_failed(s.config, epoch, step)))
            continue
        s.emit(
            StepProgress(
                epoch + 1,
                s.config.epochs,
                step + 1,
                steps,
                mean,
                seen / elapsed,
                fresh[i * width : (i + 1) * width],
                s.run_id,
            )
        )
    return failed
