"""One run's training state, shared by a run trained alone (train.py) and runs trained together as one
stacked model (stack.py): the session built from the run's configuration, its validation after an
epoch, what an epoch saves, and how the run's summary records its end."""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import distributed
from .config import TrainConfig
from .data import ImageData
from .errors import NormcompressError, UsageError
from .events import EpochEnd, Event, RunEnded, RunStarted
from .history import write_previews
from .losses import Norm, parse_norm
from .metrics import SYSTEM_METRICS, per_image_errors, summarize
from .model import build_model
from .prior import GaussianPrior, RateTraining, latent_channels
from .provenance import device_name, package_versions
from .recipe import build_optimizer, steps_per_epoch
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


@dataclass(eq=False)  # a run is itself: compared by identity, never by its tensors
class Session:
    """Everything one training process holds for one run; built once by setup_session."""

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
    progress_interval_s: float = 0.25

    @property
    def run_id(self) -> str:
        return self.run.id if self.run else ""

    @property
    def steps(self) -> int:
        return steps_per_epoch(len(self.train_images), self.config.batch_size, self.ranks)

    def announce(self) -> None:
        """Say the run has started (from its start epoch, on its data and device); ranks that write nothing stay quiet."""
        if self.run:
            self.emit(
                RunStarted(
                    self.run.id,
                    self.config,
                    str(self.device),
                    self.summary.data,
                    len(self.train_images),
                    len(self.val_images),
                    self.start_epoch,
                )
            )


def resumable(store: RunStore, ref: str) -> tuple[Run, TrainConfig]:
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


def new_summary(data: ImageData, device: torch.device) -> Summary:
    """A starting run's summary.json: the data really used, the device and the versions."""
    return Summary(
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


def device_images(data: ImageData, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation images (uint8) on the device, the training ones in the run's layout.

    The data goes to the device first: on the CPU a channels-last copy of the training images then
    replaces the original before the model and optimizer (which imports torch._dynamo) add theirs."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    val_images = data.val.to(device, copy=True)  # its own storage, so the original can go
    train_images = data.train.to(device).contiguous(memory_format=memory_format)
    data.train = data.val = None
    return train_images, val_images


def setup_session(run, config, images, channels_last, device, ranks, summary, resuming, emit, cancel) -> Session:
    """The model (restored on a resume), its optimizer and wrappers, over images already on the device."""
    train_images, val_images = images
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
    summary.epochs_done, summary.metrics = start_epoch, final_metrics(history)
    if ranks.is_main:
        run.write_summary(summary)

    model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    step_model = RateTraining(model, prior) if config.rate_lambda > 0 else model
    if ranks.world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device] if device.type == "cuda" else None
        )
    step_model = torch.compile(step_model) if config.compile else step_model
    preview = val_images[torch.linspace(0, len(val_images) - 1, PREVIEW_IMAGES).long().unique()]
    return Session(
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
    )


def ended_as(exc: BaseException | None, s: Session) -> tuple[Status, str]:
    """How a run ended, as its summary says it: completed, stopped (Cancelled), interrupted (Ctrl-C) or failed."""
    done = count(s.summary.epochs_done, "complete epoch")
    match exc:
        case None:
            return Status.COMPLETED, f"completed {count(s.config.epochs, 'epoch')}"
        case Cancelled():
            return Status.INTERRUPTED, f"stopped after {done}"
        case KeyboardInterrupt():
            return Status.INTERRUPTED, f"interrupted after {done}"
        case TrainingFailed():
            return Status.FAILED, str(exc)
    return Status.FAILED, f"{type(exc).__name__}: {exc}"


def finish_run(s: Session, status: Status, message: str, wall_time_s: float) -> None:
    """Write how the run ended into its summary and say so; a full disk keeps the previous summary."""
    s.summary.status, s.summary.message = status, message
    s.summary.wall_time_s = wall_time_s
    s.summary.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if s.run:
        try:
            s.run.write_summary(s.summary)
        except NormcompressError:
            pass  # the disk is full: the previous summary stays, and `running` with a free lock reads as interrupted
        s.emit(RunEnded(s.run.id, str(status), message))


def machine_sampler(device: torch.device) -> EpochSampler:
    """What the machine does over an epoch (CPU, memory, GPU), its peak GPU memory counted from now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return EpochSampler((device.index or 0) if device.type == "cuda" else None, shared_nvml())


def epoch_order(seed: int, epoch: int, images: int) -> torch.Tensor:
    """The order of an epoch's images: (seed, epoch) alone decide it, so a resumed run (and a run in a
    stack) sees the batches it would have seen trained alone and uninterrupted."""
    return torch.randperm(images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def epoch_record(s, epoch, loss, metrics, images_per_s, step_losses, sampler, epoch_start) -> dict:
    """The epoch's metrics.jsonl line: its training loss, validation metrics, rate, time and machine."""
    device = s.device
    return {
        "epoch": epoch + 1,
        "loss": loss,
        **metrics,
        # The last step's rate (a tensor where the step is a graph's); the last group runs at the full rate.
        "lr": float(s.optimizer.param_groups[-1]["lr"]),
        "images_per_s": images_per_s,
        "epoch_time_s": time.perf_counter() - epoch_start,
        "step_losses": [float(f"{v:.6g}") for v in step_losses],  # rank 0's batches under DDP
        **sampler.record(torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None),
    }


def validate(s: Session, epoch: int) -> dict[str, float]:
    """The validation metrics after an epoch; TrainingFailed where one is not finite."""
    metrics = summarize(s.ranks.gather(per_image_errors(s.model, s.ranks.share(s.val_images))))
    broken = [key for key, value in metrics.items() if not math.isfinite(value)]
    if broken:  # the training loss can stay finite while the weights have blown up (--lr 1e30)
        raise TrainingFailed(
            f"the validation {', '.join(broken)} became non-finite in epoch {epoch + 1}; {advice(s.config)}"
        )
    return metrics


def loss_failed(config: TrainConfig, epoch: int, step: int) -> TrainingFailed:
    """The failure of a training loss that became non-finite at this (0-based) epoch and step."""
    return TrainingFailed(
        f"the {config.norm} loss became non-finite in epoch {epoch + 1}, step {step + 1}; {advice(config)}"
    )


def advice(config: TrainConfig) -> str:
    """What to change when training blew up: the learning rate, and the rate term's weight when there is one."""
    rate = f" or a smaller --rate-lambda than {config.rate_lambda:g}" if config.rate_lambda > 0 else ""
    return f"try a smaller --lr than {config.lr:g}{rate}"


def save_epoch(s: Session, record: dict, wall_time_s: float) -> None:
    """Metrics first, checkpoint second: a crash between them leaves a line that resume drops."""
    s.run.append_metrics(record)
    s.run.save_checkpoint(training_state(s.model, s.prior, s.optimizer, s.scheduler, s.config, record["epoch"]))
    write_previews(s.model, s.preview, s.run.recon_path, record["epoch"])
    s.summary.epochs_done, s.summary.wall_time_s, s.summary.metrics = (
        record["epoch"],
        wall_time_s,
        final_metrics(s.history),
    )
    s.run.write_summary(s.summary)
    s.emit(EpochEnd(record["epoch"], s.config.epochs, record, s.run_id))


def final_metrics(history: list[dict]) -> dict:
    """The last epoch's validation metrics plus the best PSNR so far, for summary.json."""
    if not history:
        return {}
    last = {k: v for k, v in history[-1].items() if k not in SUMMARY_EXCLUDES}
    return {**last, "best_psnr": max(r["psnr"] for r in history)}
