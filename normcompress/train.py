"""Training: a function of a TrainConfig that reports through events and can be cancelled.

The data lives on the training device as uint8 for the whole run; each step indexes a shuffled batch
and converts it to float there, so there is no DataLoader, no per-image decode and no host copy in
the loop. The loss is accumulated on the device and read back only at the progress rate.
"""

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import distributed
from .config import TrainConfig
from .data import load_data
from .devices import resolve_device
from .errors import NormcompressError, UsageError
from .events import EpochEnd, Event, Notice, RunEnded, RunStarted, StepProgress
from .history import write_previews
from .losses import Norm, parse_norm
from .metrics import SYSTEM_METRICS, per_image_errors, summarize, to_float
from .model import build_model, check_training_images
from .prior import GaussianPrior, RateTraining, latent_channels
from .provenance import device_name, package_versions
from .recipe import build_optimizer, steps_per_epoch, uses_channels_last
from .runs import Run, RunStore, Status, StoreError, Summary
from .runs.checkpoint import restore_training, training_state
from .system import EpochSampler, shared_nvml
from .text import count

PREVIEW_IMAGES = 8
_MODEL_INIT_LOCK = threading.Lock()
# Per-epoch facts, not final metrics: kept in metrics.jsonl, left out of summary.json's final metrics.
SUMMARY_EXCLUDES = ("epoch", "lr", "epoch_time_s", "step_losses", *SYSTEM_METRICS)


class TrainingFailed(NormcompressError):
    pass


class Cancelled(Exception):
    pass


@dataclass
class _Session:
    """Everything one training process holds for one run; built once by _setup."""

    run: Run | None  # None on ranks other than 0, which write nothing
    config: TrainConfig
    norm: Norm
    model: torch.nn.Module
    step_model: torch.nn.Module  # what a step calls: the model, wrapped for the rate term, DDP, compile
    prior: GaussianPrior | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    train_images: torch.Tensor  # uint8 on the device
    val_images: torch.Tensor
    preview: torch.Tensor
    device: torch.device
    ranks: distributed.Ranks
    summary: Summary
    history: list[dict]
    start_epoch: int
    emit: Callable[[Event], None]
    cancel: threading.Event
    progress_interval_s: float

    @property
    def steps(self) -> int:
        return steps_per_epoch(len(self.train_images), self.config.batch_size, self.ranks)


def train(
    config: TrainConfig,
    store: RunStore,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    resume: str | None = None,
    progress_interval_s: float = 0.25,
) -> Run | None:
    """Train a new run (or resume one by id) and return it; the run's summary holds the outcome.

    Under torchrun, every process calls this; rank 0 returns the run, the others return None.

    Raises UsageError/NormcompressError for bad input, TrainingFailed for a non-finite loss,
    and re-raises KeyboardInterrupt after saving the run as interrupted.
    """
    emit = on_event or (lambda event: None)
    run = None
    if resume is not None:
        run, config = _resumable(store, resume)
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
    summary = Summary(
        Status.RUNNING,
        device=str(device),
        device_name=device_name(device),
        data=data.source,
        notices=data.notices,
        train_images=len(data.train),
        val_images=len(data.val),
        versions=package_versions(device),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    check_training_images(config.model, len(data.train), config.image_size)  # before a run exists
    created = ranks.is_main and run is None
    if created:
        run = store.create(config, summary)
    # Other ranks write nothing (they only read a resumed run's checkpoint), so they hold no lock.
    with run.hold() if ranks.is_main else contextlib.nullcontext():
        try:
            session = _setup(run, config, data, device, ranks, summary, resuming, emit, cancel, progress_interval_s)
        except BaseException:
            if created:  # it never reached its first step: nothing to keep, nothing to list as interrupted
                store.discard(run)
            raise
        _train_loop(session)
    return run if ranks.is_main else None


def _resumable(store: RunStore, ref: str) -> tuple[Run, TrainConfig]:
    """The run to resume and its own configuration, on the data it really used."""
    run = store.get(ref)
    previous = run.info()
    if previous.status == Status.COMPLETED:
        raise UsageError(f"run {run.id} is already completed ({count(previous.epochs_done, 'epoch')})")
    if previous.problem == "checkpoint.pt is missing":  # training it again from scratch would replace its epochs
        raise StoreError(
            f"run {run.id} has {count(previous.epochs_done, 'epoch')} recorded but no checkpoint.pt to "
            "continue from, so it cannot be resumed; start a new run with its settings"
        )
    if previous.problem:
        raise StoreError(f"run {run.id} is damaged: {previous.problem}")
    config = run.train_config()
    config.dataset = previous.data_source  # the sample, after a CIFAR-10 fallback
    return run, config


def _setup(run, config, data, device, ranks, summary, resuming, emit, cancel, progress_interval_s) -> _Session:
    """Data on the device, the model (restored on a resume), its optimizer and wrappers."""
    # The data goes to the device (and its layout) first: on the CPU a channels-last copy of the training
    # images then replaces the original before the model and optimizer (which imports torch._dynamo) add theirs.
    memory_format = torch.channels_last if uses_channels_last(config, device) else torch.contiguous_format
    val_images = data.val.to(device, copy=True)  # its own storage, so the original can go
    train_images = data.train.to(device).contiguous(memory_format=memory_format)
    data.train = data.val = None
    with _MODEL_INIT_LOCK:  # runs trained side by side (a study on several devices) share torch's global RNG
        torch.manual_seed(config.seed)
        model = build_model(config.model).to(device)
    restoring = resuming and run.checkpoint_path.exists()
    if not restoring:  # pca-refine, hyperprior: fit PCA on the training images
        model.initialise(train_images, config.rate_lambda)
    # A codec model (hyperprior) brings its own entropy model; any other trained with a rate gets a GaussianPrior.
    prior = (
        GaussianPrior(latent_channels(model, config.image_size)).to(device)
        if config.rate_lambda > 0 and not model.OWN_RATE
        else None
    )
    optimizer, scheduler = build_optimizer(
        config, model, prior, steps_per_epoch(len(train_images), config.batch_size, ranks)
    )
    start_epoch, history = 0, []
    if resuming:
        before = run.summary()
        summary.wall_time_s, summary.started_at = before.wall_time_s, before.started_at or summary.started_at
        if restoring:
            start_epoch = restore_training(run, run.load_checkpoint(device), model, prior, optimizer, scheduler, config)
        history = run.keep_metrics_through(start_epoch) if ranks.is_main else []
    summary.epochs_done, summary.metrics = start_epoch, _final(history)
    if ranks.is_main:
        run.write_summary(summary)

    model = model.to(memory_format=memory_format)
    step_model = RateTraining(model, prior) if config.rate_lambda > 0 else model
    if ranks.world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device] if device.type == "cuda" else None
        )
    step_model = torch.compile(step_model) if config.compile else step_model
    preview = val_images[torch.linspace(0, len(val_images) - 1, PREVIEW_IMAGES).long().unique()]
    return _Session(
        run if ranks.is_main else None,
        config,
        parse_norm(config.norm),
        model,
        step_model,
        prior,
        optimizer,
        scheduler,
        train_images,
        val_images,
        preview,
        device,
        ranks,
        summary,
        history,
        start_epoch,
        emit,
        cancel,
        progress_interval_s,
    )


def _train_loop(s: _Session) -> None:
    """Epochs from the checkpoint's to the config's; the run's summary records how it ended."""
    if s.run:
        s.emit(
            RunStarted(
                s.run.id, s.config, str(s.device), s.summary.data, len(s.train_images), len(s.val_images), s.start_epoch
            )
        )
    started, wall_before = time.perf_counter(), s.summary.wall_time_s
    status, message = Status.RUNNING, ""
    try:
        for epoch in range(s.start_epoch, s.config.epochs):
            record = _train_epoch(s, epoch)
            s.history.append(record)
            if s.run:
                _save_epoch(s, record, wall_before + time.perf_counter() - started)
        status, message = Status.COMPLETED, f"completed {count(s.config.epochs, 'epoch')}"
    except Cancelled:
        status, message = Status.INTERRUPTED, f"stopped after {count(s.summary.epochs_done, 'complete epoch')}"
    except KeyboardInterrupt:
        status, message = Status.INTERRUPTED, f"interrupted after {count(s.summary.epochs_done, 'complete epoch')}"
        raise
    except TrainingFailed as exc:
        status, message = Status.FAILED, str(exc)
        raise
    except BaseException as exc:
        status, message = Status.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        s.summary.status, s.summary.message = status, message
        s.summary.wall_time_s = wall_before + time.perf_counter() - started
        s.summary.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if s.run:
            try:
                s.run.write_summary(s.summary)
            except NormcompressError:
                pass  # the disk is full: the previous summary stays, and `running` with a free lock reads as interrupted
            s.emit(RunEnded(s.run.id, str(status), message))


def _train_epoch(s: _Session, epoch: int) -> dict:
    """One pass over the training images, then the validation metrics: the epoch's metrics.jsonl record."""
    config, device, n, batch, steps = s.config, s.device, len(s.train_images), s.config.batch_size, s.steps
    epoch_start = last_report = time.perf_counter()
    sampler = EpochSampler((device.index or 0) if device.type == "cuda" else None, shared_nvml())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # The order of each epoch depends on (seed, epoch) alone, so a resumed run sees the same batches.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)).to(device)
    loss_sum = torch.zeros((), device=device)
    step_losses = torch.empty(steps, device=device)  # read with loss_sum, never a sync per step
    reported: list[float] = []
    local_seen = 0
    for step in range(steps):
        if s.cancel.is_set():
            raise Cancelled
        target = to_float(s.train_images[s.ranks.share(order[step * batch : (step + 1) * batch])])
        with torch.autocast(device.type, torch.bfloat16, enabled=config.amp == "bf16"):
            output = s.step_model(target)
        if config.rate_lambda > 0:
            output, bpp = output
            loss = s.norm(output.float(), target) + config.rate_lambda * bpp.float()
        else:
            loss = s.norm(output.float(), target)  # the norm itself in float32
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        if s.scheduler is not None:
            s.scheduler.step()
        loss_sum += loss.detach() * len(target)
        step_losses[step] = loss.detach()
        local_seen += len(target)
        now = time.perf_counter()
        if now - last_report >= s.progress_interval_s or step == steps - 1:
            last_report = now
            sampler.sample()
            # The one host sync, at the progress rate: the running sum and the steps since the last report.
            values = torch.cat([loss_sum.view(1), step_losses[len(reported) : step + 1]]).tolist()
            mean_loss, fresh = values[0] / local_seen, values[1:]
            reported += fresh
            if not math.isfinite(mean_loss):
                raise TrainingFailed(
                    f"the {config.norm} loss became non-finite in epoch {epoch + 1}, step {step + 1}; {_advice(config)}"
                )
            seen = min((step + 1) * batch, n)
            s.emit(
                StepProgress(epoch + 1, config.epochs, step + 1, steps, mean_loss, seen / (now - epoch_start), fresh)
            )
    train_time = time.perf_counter() - epoch_start
    totals = s.ranks.sum(torch.stack([loss_sum, torch.tensor(float(local_seen), device=device)]))
    metrics = _validate(s, epoch)
    return {
        "epoch": epoch + 1,
        "loss": (totals[0] / totals[1]).item(),
        **metrics,
        "lr": s.optimizer.param_groups[-1]["lr"],  # the last step's rate; the last group runs at the full rate
        "images_per_s": totals[1].item() / train_time,
        "epoch_time_s": time.perf_counter() - epoch_start,
        "step_losses": [float(f"{v:.6g}") for v in reported],  # rank 0's batches under DDP
        **sampler.record(torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None),
    }


def _validate(s: _Session, epoch: int) -> dict[str, float]:
    """The validation metrics after an epoch; TrainingFailed where one is not finite."""
    metrics = summarize(s.ranks.gather(per_image_errors(s.model, s.ranks.share(s.val_images))))
    broken = [key for key, value in metrics.items() if not math.isfinite(value)]
    if broken:  # the training loss can stay finite while the weights have blown up (--lr 1e30)
        raise TrainingFailed(
            f"the validation {', '.join(broken)} became non-finite in epoch {epoch + 1}; {_advice(s.config)}"
        )
    return metrics


def _advice(config: TrainConfig) -> str:
    """What to change when training blew up: the learning rate, and the rate term's weight when there is one."""
    rate = f" or a smaller --rate-lambda than {config.rate_lambda:g}" if config.rate_lambda > 0 else ""
    return f"try a smaller --lr than {config.lr:g}{rate}"


def _save_epoch(s: _Session, record: dict, wall_time_s: float) -> None:
    """Metrics first, checkpoint second: a crash between them leaves a line that resume drops."""
    s.run.append_metrics(record)
    s.run.save_checkpoint(training_state(s.model, s.prior, s.optimizer, s.scheduler, s.config, record["epoch"]))
    write_previews(s.model, s.preview, s.run.recon_path, record["epoch"])
    s.summary.epochs_done, s.summary.wall_time_s, s.summary.metrics = record["epoch"], wall_time_s, _final(s.history)
    s.run.write_summary(s.summary)
    s.emit(EpochEnd(record["epoch"], s.config.epochs, record))


def _final(history: list[dict]) -> dict:
    """The last epoch's validation metrics plus the best PSNR so far, for summary.json."""
    if not history:
        return {}
    last = {k: v for k, v in history[-1].items() if k not in SUMMARY_EXCLUDES}
    return {**last, "best_psnr": max(r["psnr"] for r in history)}
