"""Training: a function of a TrainConfig that reports through events and can be cancelled.

The data lives on the training device as uint8 for the whole run; each step indexes a shuffled batch
and converts it to float there, so there is no DataLoader, no per-image decode and no host copy in
the loop. The loss is accumulated on the device and read back only at the progress rate.
"""

import contextlib
import math
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version

import torch

from . import distributed
from .data import ImageData, check_dataset, load_data
from .devices import resolve_device
from .errors import NormcompressError, UsageError
from .images import comparison_grid, write_png
from .losses import parse_norm
from .metrics import per_image_errors, summarize, to_float
from .model import MODELS, build_model
from .prior import GaussianPrior, RateTraining, latent_channels
from .runs import Run, RunStore, StoreError

PREVIEW_IMAGES = 8
AMP_MODES = ("off", "bf16")
_MODEL_INIT_LOCK = threading.Lock()


@dataclass
class TrainConfig:
    norm: str = "L2"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    device: str = "auto"
    dataset: str = "cifar10"
    data_dir: str = "data"
    seed: int = 0
    limit: int | None = None
    model: str = "seed"
    image_size: int = 32
    amp: str = "off"  # off | bf16: autocast the forward pass to bfloat16 (CPU AMX, or CUDA)
    channels_last: bool | None = None  # None: channels-last on the CPU (measured faster), not on CUDA (not yet measured)
    compile: bool = False  # torch.compile the model for training
    rate_lambda: float = 0.0  # > 0: noisy latents, a learned prior, loss = norm + rate_lambda * bits per pixel

    def validated(self) -> "TrainConfig":
        """Check every field and canonicalise the norm; raise UsageError on the first bad one."""
        self.norm = parse_norm(self.norm).name
        check_dataset(self.dataset)
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        for name, low in (("epochs", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise UsageError(f"--{name.replace('_', '-')} must be at least {low}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError("--lr must be a positive number")
        if not (self.rate_lambda >= 0 and math.isfinite(self.rate_lambda)):
            raise UsageError("--rate-lambda must be a number >= 0")
        if self.amp not in AMP_MODES:
            raise UsageError(f"unknown --amp {self.amp!r}; choose one of: {', '.join(AMP_MODES)}")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# -- events ------------------------------------------------------------------------------------
@dataclass
class Notice:
    message: str


@dataclass
class RunStarted:
    run_id: str
    run_dir: str
    config: TrainConfig
    device: str
    data_source: str
    train_images: int
    val_images: int
    start_epoch: int  # epochs already done (a resumed run starts past 0)


@dataclass
class StepProgress:
    epoch: int  # 1-based, the epoch under way
    epochs: int
    step: int
    steps: int
    loss: float  # running mean of this epoch's training loss
    images_per_s: float
    eta_s: float
    step_losses: list[float] = field(default_factory=list)  # each step's loss since the last StepProgress


@dataclass
class EpochEnd:
    epoch: int
    epochs: int
    record: dict  # the metrics.jsonl line: epoch, loss, validation metrics, time


@dataclass
class RunEnded:
    run_id: str
    status: str  # completed | interrupted | failed
    message: str
    summary: dict = field(default_factory=dict)


Event = Notice | RunStarted | StepProgress | EpochEnd | RunEnded


def uses_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """The memory format a run trains in: as asked, or by default channels-last on the CPU, where it
    measured 10-24% faster (benchmarks/train_throughput.py --variants, and an interleaved A/B)."""
    return config.channels_last if config.channels_last is not None else device.type == "cpu"


class TrainingFailed(NormcompressError):
    pass


class Cancelled(Exception):
    pass


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("normcompress", "torch", "torchvision"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return versions


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
    cancel = cancel or threading.Event()
    if resume:
        run = store.get(resume)
        previous = run.info()
        if previous.status == "completed":
            raise UsageError(f"run {run.id} is already completed ({previous.epochs_done} epochs)")
        if previous.problem and "checkpoint.pt" not in previous.problem:
            raise StoreError(f"run {run.id} is damaged: {previous.problem}")
        config = TrainConfig.from_dict(run.config()).validated()
        # Resume on the data that was really used (the sample, after a CIFAR-10 fallback).
        config.dataset = previous.summary.get("data", config.dataset)
    else:
        config.validated()
        run = None
    ranks, device, created_group = distributed.start(resolve_device(config.device))
    completed = False
    try:
        result = _train_ranked(config, store, emit, cancel, run, resume, progress_interval_s, ranks, device)
        completed = True
        return result
    finally:
        distributed.finish(created_group, completed)


def _train_ranked(config, store, emit, cancel, run, resume, progress_interval_s, ranks, device) -> Run | None:
    if not ranks.is_main:
        emit = lambda event: None  # noqa: E731  (rank 0 speaks for the run)
    data = load_data(config.dataset, config.data_dir, config.limit, config.image_size, lambda m: emit(Notice(m)))
    summary = {
        "status": "running",
        "epochs_done": 0,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "data": data.source,
        "notices": data.notices,
        "train_images": len(data.train),
        "val_images": len(data.val),
        "versions": package_versions(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_time_s": 0.0,
        "metrics": {},
    }
    if ranks.is_main and run is None:
        run = store.create(asdict(config), summary)
    # Other ranks write nothing (they only read a resumed run's checkpoint), so they hold no lock.
    with run.hold() if ranks.is_main else contextlib.nullcontext():
        _train_run(run, config, data, device, summary, emit, cancel, resume is not None, progress_interval_s, ranks)
    return run if ranks.is_main else None


def _train_run(run, config, data: ImageData, device, summary, emit, cancel, resuming, progress_interval_s,
               ranks: distributed.Ranks = distributed.Ranks()) -> None:
    """The training loop. Only rank 0 (`ranks.is_main`) writes to `run`; other ranks only read it."""
    norm = parse_norm(config.norm)
    record = ranks.is_main
    # The data goes to the device (and its layout) first: on the CPU a channels-last copy of the training
    # images then replaces the original before the model and optimizer (which imports torch._dynamo) add theirs.
    memory_format = torch.channels_last if uses_channels_last(config, device) else torch.contiguous_format
    val_images = data.val.to(device, copy=True)  # its own storage, so the original can go
    train_images = data.train.to(device).contiguous(memory_format=memory_format)
    data.train = data.val = None
    with _MODEL_INIT_LOCK:  # runs trained side by side (a study on several devices) share torch's global RNG
        torch.manual_seed(config.seed)
        model = build_model(config.model).to(device)
    prior = GaussianPrior(latent_channels(model, config.image_size)).to(device) if config.rate_lambda > 0 else None
    optimizer = torch.optim.Adam([*model.parameters(), *(prior.parameters() if prior else [])], lr=config.lr)
    start_epoch, wall_time, history = 0, 0.0, []
    if resuming:
        before = run.summary()
        wall_time = before.get("wall_time_s", 0.0)
        summary["started_at"] = before.get("started_at", summary["started_at"])
        if run.checkpoint_path.exists():
            state = run.load_checkpoint(device)
            model.load_state_dict(state["model"])
            if prior is not None:
                prior.load_state_dict(state["prior"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            start_epoch = state["epoch"]
        history = run.keep_metrics_through(start_epoch) if record else []
    summary.update(epochs_done=start_epoch, wall_time_s=wall_time, metrics=_final(history))
    if record:
        run.write_summary(summary)

    model = model.to(memory_format=memory_format)
    step_model = RateTraining(model, prior) if prior is not None else model
    if ranks.world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                                               else None)
    step_model = torch.compile(step_model) if config.compile else step_model
    preview = val_images[torch.linspace(0, len(val_images) - 1, PREVIEW_IMAGES).long().unique()]
    n, batch = len(train_images), config.batch_size
    # Every rank needs an image in every step, so a last batch smaller than the world is dropped.
    steps = n // batch + (1 if n % batch >= ranks.world else 0)
    if record:
        emit(RunStarted(run.id, str(run.path), config, str(device), data.source, n, len(val_images), start_epoch))

    started = time.perf_counter()
    status, message = "running", ""
    try:
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            # The order of each epoch depends on (seed, epoch) alone, so a resumed run sees the same batches.
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
            order = order.to(device)
            loss_sum = torch.zeros((), device=device)
            step_losses = torch.empty(steps, device=device)  # read with loss_sum, never a sync per step
            epoch_step_losses: list[float] = []
            local_seen = 0
            last_report = epoch_start
            for step in range(steps):
                if cancel.is_set():
                    raise Cancelled
                target = to_float(train_images[ranks.share(order[step * batch : (step + 1) * batch])])
                with torch.autocast(device.type, torch.bfloat16, enabled=config.amp == "bf16"):
                    output = step_model(target)
                if prior is not None:
                    output, bpp = output
                    loss = norm(output.float(), target) + config.rate_lambda * bpp.float()
                else:
                    loss = norm(output.float(), target)  # the norm itself in float32
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(target)
                step_losses[step] = loss.detach()
                local_seen += len(target)
                now = time.perf_counter()
                if now - last_report >= progress_interval_s or step == steps - 1:
                    last_report = now
                    seen = min((step + 1) * batch, n)
                    # The one host sync, at the progress rate: the running sum and the steps since the last report.
                    values = torch.cat([loss_sum.view(1), step_losses[len(epoch_step_losses) : step + 1]]).tolist()
                    mean_loss, fresh = values[0] / local_seen, values[1:]
                    epoch_step_losses += fresh
                    if not math.isfinite(mean_loss):
                        raise TrainingFailed(
                            f"the {config.norm} loss became non-finite in epoch {epoch + 1}, step {step + 1}; "
                            f"try a smaller --lr than {config.lr:g}"
                        )
                    rate = seen / (now - epoch_start)
                    remaining = (config.epochs - epoch) * n - seen
                    emit(StepProgress(epoch + 1, config.epochs, step + 1, steps, mean_loss, rate, remaining / rate,
                                      fresh))
            train_time = time.perf_counter() - epoch_start
            totals = ranks.sum(torch.stack([loss_sum, torch.tensor(float(local_seen), device=device)]))
            metrics = summarize(ranks.gather(per_image_errors(model, ranks.share(val_images))))
            line = {
                "epoch": epoch + 1,
                "loss": (totals[0] / totals[1]).item(),
                **metrics,
                "images_per_s": totals[1].item() / train_time,
                "epoch_time_s": time.perf_counter() - epoch_start,
                "step_losses": [float(f"{v:.6g}") for v in epoch_step_losses],  # rank 0's batches under DDP
            }
            history.append(line)
            if not record:
                continue
            # Metrics first, checkpoint second: a crash between them leaves a line that resume drops.
            run.append_metrics(line)
            run.save_checkpoint(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                 "rng": torch.get_rng_state(), "norm": config.norm, "model_name": config.model,
                 **({"prior": prior.state_dict()} if prior is not None else {})}
            )
            _write_preview(model, preview, run)
            summary.update(
                epochs_done=epoch + 1,
                wall_time_s=wall_time + time.perf_counter() - started,
                metrics=_final(history),
            )
            run.write_summary(summary)
            emit(EpochEnd(epoch + 1, config.epochs, line))
        status, message = "completed", f"completed {config.epochs} epochs"
    except Cancelled:
        status, message = "interrupted", f"stopped after {summary['epochs_done']} complete epoch(s)"
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted after {summary['epochs_done']} complete epoch(s)"
        raise
    except TrainingFailed as exc:
        status, message = "failed", str(exc)
        raise
    except BaseException as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary.update(
            status=status,
            message=message,
            wall_time_s=wall_time + time.perf_counter() - started,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        if record:
            try:
                run.write_summary(summary)
            except StoreError:
                pass  # the disk is full: the previous summary stays, and `running` with a free lock reads as interrupted
            emit(RunEnded(run.id, status, message, summary))


def _final(history: list[dict]) -> dict:
    """The last epoch's validation metrics plus the best PSNR so far, for summary.json."""
    if not history:
        return {}
    last = {k: v for k, v in history[-1].items() if k not in ("epoch", "images_per_s", "epoch_time_s")}
    return {**last, "best_psnr": max(r["psnr"] for r in history)}


@torch.no_grad()
def _write_preview(model, preview: torch.Tensor, run: Run) -> None:
    model.eval()
    target = to_float(preview)
    write_png(comparison_grid(target, model(target)), run.recon_path)
    model.train()
