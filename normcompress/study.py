"""A norm study: every norm x seed trained (reusing or resuming matching runs), then a report.

Runs are ordinary runs in the run store; a study finds its runs again by their configuration, so
re-running a study trains only what is missing and resumes what was interrupted. The runs train here
(one after another, or side by side on several devices) or as tasks on a Ray cluster (cluster.py).
"""

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .errors import NormcompressError, UsageError
from .losses import parse_norm
from .config import TrainConfig
from .events import Event
from .runs import Run, RunStore, Status

# Fields that do not change what a run computes (beyond float rounding: the device, the memory
# layout, compilation), so a run that differs only in them is reused.
IGNORED_FOR_REUSE = ("device", "data_dir", "channels_last", "compile")


@dataclass
class StudyConfig:
    norms: list[str]
    seeds: int = 3
    epochs: int = 10
    dataset: str = "sample"
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    limit: int | None = None
    model: str = "seed"
    rate_lambda: float = 0.0  # > 0: every run trains for compression too (a rate-distortion study per norm)
    image_size: int = 32
    data_dir: str = "data"
    devices: list[str] = field(default_factory=lambda: ["auto"])
    ray: str | None = None  # None: train here; "local": a Ray instance started here; else a cluster's address
    retries: int = 1  # on Ray: how often a run whose worker died is tried again
    cpus_per_run: int = 1  # on Ray, for runs on the CPU: the cores each run asks for (and its torch threads)

    def validated(self) -> "StudyConfig":
        if not self.norms:
            raise UsageError("--norms needs at least one norm")
        self.norms = [parse_norm(n).name for n in self.norms]
        if len(set(self.norms)) != len(self.norms):
            raise UsageError("--norms lists a norm twice")
        if self.seeds < 1:
            raise UsageError("--seeds must be at least 1")
        if self.ray is not None and len(self.devices) > 1:
            raise UsageError("--devices lists several devices, but on Ray the cluster places each run: "
                             "give one device kind (auto, cpu or cuda)")
        if self.retries < 0 or self.cpus_per_run < 1:
            raise UsageError("--retries must be at least 0 and --ray-cpus at least 1")
        if self.ray is not None:
            from .cluster import check_address  # no Ray import: the address's form, with the other options

            check_address(self.ray)
        for config in self.run_configs():
            config.validated()
        return self

    def run_configs(self) -> list[TrainConfig]:
        return [
            TrainConfig(norm=norm, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                        optimizer=self.optimizer, schedule=self.schedule,
                        device=self.devices[0], dataset=self.dataset, data_dir=self.data_dir, seed=seed,
                        limit=self.limit, model=self.model, rate_lambda=self.rate_lambda, image_size=self.image_size)
            for norm in self.norms for seed in range(self.seeds)
        ]


@dataclass
class StudyProgress:
    done: int
    total: int
    label: str  # the run just started or finished, e.g. "L1 seed 2"
    state: str  # reused | training | resuming | epoch | retrying | finished | failed
    message: str = ""  # why a run failed
    epoch: int = 0  # on Ray: the epoch the run has finished (state "epoch"), of epochs
    epochs: int = 0
    where: str = ""  # on Ray: the node and process training the run


def _identity(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in IGNORED_FOR_REUSE}


def find_run(store: RunStore, config: TrainConfig, statuses: tuple[str, ...]) -> Run | None:
    """The newest run in the store with this configuration and one of these statuses."""
    wanted = _identity(asdict(config))
    for run in reversed(store.runs()):
        info = run.info()
        if info.status in statuses and info.config and _identity(asdict(info.config)) == wanted:
            return run
    return None


def run_study(
    study: StudyConfig,
    store: RunStore,
    on_progress: Callable[[StudyProgress], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    keep_going: bool = False,
    trainer: Callable | None = None,
) -> list[Run]:
    """Train (or reuse, or resume) every norm x seed; return the completed runs in study order.

    With several devices, runs go to them side by side, one run per device at a time; with study.ray,
    to a Ray cluster (cluster.py). A run that fails ends the study, or with keep_going is reported
    (state "failed") and the queue goes on to the next; Ctrl-C ends it either way. `trainer` trains
    each run here, with normcompress.train's arguments and result (the app's trains in a child process).
    """
    from .train import train  # torch: the names above are read without it (the app's study screen)

    train = trainer or train

    study.validated()
    report = on_progress or (lambda p: None)
    configs = study.run_configs()
    results: dict[int, Run] = {}
    pending: list[tuple[int, TrainConfig, Run | None]] = []
    for index, config in enumerate(configs):
        done = find_run(store, config, ("completed",))
        if done:
            results[index] = done
            report(StudyProgress(len(results), len(configs), study_label(config), "reused"))
        else:
            pending.append((index, config, find_run(store, config, ("interrupted",))))
    if study.ray is not None and pending:
        from .cluster import train_on_ray

        train_on_ray(study, store, pending, results, len(configs), report, cancel, keep_going)
        return [results[i] for i in sorted(results)]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(device: str) -> None:
        while not errors and not (cancel and cancel.is_set()):
            with lock:
                if not pending:
                    return
                index, config, interrupted = pending.pop(0)
            config.device = device
            report(StudyProgress(len(results), len(configs), study_label(config),
                                 "resuming" if interrupted else "training"))
            try:
                run = train(config, store, on_event, cancel, resume=interrupted.id if interrupted else None)
            except Exception as exc:  # the run is kept as failed (the engine saw to it)
                if not keep_going:
                    errors.append(exc)
                    return
                reason = str(exc) if isinstance(exc, NormcompressError) else f"{type(exc).__name__}: {exc}"
                report(StudyProgress(len(results), len(configs), study_label(config), "failed", reason))
                continue
            except BaseException as exc:  # handed to the caller's thread below
                errors.append(exc)
                return
            if run is None or run.info().status != Status.COMPLETED:
                return  # cancelled (before the run was created, or during it)
            with lock:
                results[index] = run
            report(StudyProgress(len(results), len(configs), study_label(config), "finished"))

    if len(study.devices) == 1:
        worker(study.devices[0])  # in this thread, so Ctrl-C reaches the training loop
    else:
        threads = [threading.Thread(target=worker, args=(d,), daemon=True) for d in study.devices]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return [results[i] for i in sorted(results)]


def study_label(config: TrainConfig) -> str:
    return f"{config.norm} seed {config.seed}"

