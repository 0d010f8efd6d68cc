"""A study's runs as tasks on a Ray cluster (the optional extra: pip install -e '.[cluster]').

Each run is one Ray task with the resources it needs (a GPU on CUDA, `cpus_per_run` cores on the CPU).
The task trains into a private temporary store on whichever node runs it and returns the run's files;
the driver adds them to its own store in one rename (RunStore.add), so no shared filesystem is needed
and the store's rule holds: a run is complete on disk or absent. A worker that dies takes only its
private store with it; Ray runs the task again up to `retries` times, and then it is reported failed.
Progress (each run's start and finished epochs) comes back through a small actor the tasks tell
without waiting: a task blocked in ray.get gives its CPU back to Ray, which then started a third run
on two CPUs (seen with ray.util.queue.Queue, whose put waits).
"""

import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from ..config import TrainConfig
from ..errors import NormcompressError, UsageError
from ..events import EpochEnd
from ..files import describe_os_error
from ..runs import RunStore, remove_stale
from ..study_config import StudyConfig, check_address
from ..text import count, printable
from .plan import Pending, Progress

INSTALL_HINT = "pip install -e '.[cluster]'"
POLL_S = 0.2  # how often the driver looks at the queue and the tasks


def ray_module():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, an optional extra: {INSTALL_HINT}") from None
    return ray


# What an HTTP/2 client sends first; a gRPC server (Ray's GCS and its client server are) answers with a
# SETTINGS frame (frame type 4, the fourth byte of its header).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse, in seconds, an address nothing answers at, or where what answers is no gRPC server: Ray
    itself waits minutes (without end, for a port that accepts and stays silent) for a cluster's GCS."""
    where = check_address(address)
    if where is None:
        return
    shown = printable(address, keep_newlines=False)
    try:
        with socket.create_connection(where, timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(HTTP2_PREFACE)
            answer = connection.recv(9)
    except TimeoutError:
        answer = b""
    except OSError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {shown!r}: {describe_os_error(exc)}") from None
    if len(answer) < 4 or answer[3] != 4:
        raise UsageError(
            f"{shown!r} answers, but not as a Ray cluster does (no gRPC server there); give the "
            "address `ray start --head` printed (HOST:6379, or ray://HOST:10001)"
        )


def connect(ray, address: str) -> bool:
    """Join the cluster at `address` ("local" starts one here, "auto" finds one `ray start` began);
    return whether this call started the connection, and so must end it."""
    check_reachable(address)
    if ray.is_initialized():  # this process is connected already (a notebook, the tests): that cluster
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:  # ConnectionError, ValueError, TimeoutError, RuntimeError: one message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot reach the Ray cluster at {address!r}: {reason}") from None
    return True


def placement(ray, study: StudyConfig) -> tuple[dict, str]:
    """The resources each run's task asks for, and the device it trains on there."""
    kind = study.devices[0]
    resources = ray.cluster_resources()
    if kind.startswith("cuda") or (kind == "auto" and resources.get("GPU", 0) >= 1):
        if resources.get("GPU", 0) < 1:
            raise UsageError(f"--devices {kind}, but the Ray cluster has no GPU")
        return {"num_gpus": 1, "num_cpus": 1}, "cuda"  # Ray points CUDA_VISIBLE_DEVICES at the task's GPU
    if study.cpus_per_run > resources.get("CPU", 0):
        raise UsageError(
            f"--ray-cpus {study.cpus_per_run}, but the Ray cluster has "
            f"{count(int(resources.get('CPU', 0)), 'CPU')} in all"
        )
    return {"num_cpus": study.cpus_per_run}, "cpu" if kind == "auto" else kind


class ProgressBox:
    """A Ray actor (of no CPU) holding what the tasks told it until the driver takes it."""

    def __init__(self) -> None:
        self.items: list[tuple] = []

    def tell(self, item: tuple) -> None:
        self.items.append(item)

    def take(self) -> list[tuple]:
        items, self.items = self.items, []
        return items


def train_task(
    config: TrainConfig, label: str, resume: tuple[str, dict[str, bytes]] | None, progress
) -> tuple[str, dict[str, bytes], str]:
    """On a Ray worker: train one run (or resume the one given as files) in a private temporary store;
    return its id, its files, and why it failed ("" when it completed). The store is removed after;
    one left by a worker that was killed is removed by the next task on that node."""
    import ray
    import torch

    from ..train import train

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    where = f"{ray.util.get_node_ip_address()} pid {os.getpid()}"
    progress.tell.remote((label, "started", where, 0, 0))  # not waited for: see the module's docstring
    parent = Path(tempfile.gettempdir()) / "normcompress-ray"
    parent.mkdir(exist_ok=True)
    remove_stale(parent)
    root = parent / f".new-{os.getpid()}-{secrets.token_hex(4)}"  # the name remove_stale knows
    try:
        store = RunStore(root)
        if resume is not None:
            store.add(*resume)

        def on_event(event) -> None:
            if isinstance(event, EpochEnd):
                progress.tell.remote((label, "epoch", where, event.epoch, event.epochs))

        try:
            run = train(config, store, on_event, resume=resume[0] if resume else None)
            message = ""
        except NormcompressError as exc:  # the engine kept the run as failed: it travels as one
            message = str(exc)
            runs = store.runs()
            if not runs:
                raise
            run = runs[-1]
        return run.id, run.files(), message
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def ray_session(address: str):
    """Ray, connected to the cluster at `address` for the block (and disconnected after, if this started it)."""
    ray = ray_module()
    started_here = connect(ray, address)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


class RayExecutor:
    """The pending runs sent to the cluster, each finished run added to the store as it comes back.
    Ctrl-C (or a stop) cancels the tasks still out; the runs added stay. A run that fails is reported and
    the others go on; without keep_going the study then ends in an error."""

    def __init__(self, study: StudyConfig) -> None:
        self.study = study

    def run(
        self,
        pending: list[Pending],
        store: RunStore,
        progress: Progress,
        on_event,
        cancel: threading.Event | None,
        keep_going: bool,
    ) -> None:
        with ray_session(self.study.ray or "local") as ray:
            self.ray, self.store, self.progress = ray, store, progress
            self.attempts: dict[str, int] = {}
            self.ended: set[str] = set()  # a task's last words may reach the box after its result reached us
            self.box = ray.remote(num_cpus=0)(ProgressBox).remote()
            out = self._submit(pending)
            failures: list[str] = []
            try:
                while out and not (cancel is not None and cancel.is_set()):
                    done, _ = ray.wait(list(out), num_returns=1, timeout=POLL_S)
                    self._drain()
                    for ref in done:
                        failures += self._collect(ref, out.pop(ref))
            finally:
                for ref in out:  # Ctrl-C, a stop, or an error: what is still out is not wanted
                    ray.cancel(ref, force=True)
                ray.kill(self.box)
        if failures and not keep_going:
            raise NormcompressError(
                f"{count(len(failures), 'run')} of {progress.total} failed ({'; '.join(failures)}); "
                f"the completed runs are kept: run the same study again to retry the rest"
            )

    def _submit(self, pending: list[Pending]) -> dict:
        resources, device = placement(self.ray, self.study)
        task = self.ray.remote(train_task).options(max_retries=self.study.retries, retry_exceptions=False, **resources)
        out = {}
        for item in pending:
            item.config.device = device
            resume = (item.interrupted.id, item.interrupted.files()) if item.interrupted else None
            out[task.remote(item.config, item.label, resume, self.box)] = item
        return out

    def _drain(self) -> None:
        """What the tasks told the progress box: a start (or a retry after a worker died), an epoch."""
        for label, state, where, epoch, epochs in self.ray.get(self.box.take.remote()):
            if label in self.ended:
                continue
            if state == "started":
                self.attempts[label] = self.attempts.get(label, 0) + 1
                state = "training" if self.attempts[label] == 1 else "retrying"
                message = "" if self.attempts[label] == 1 else f"attempt {self.attempts[label]}: the last worker died"
            else:
                message = f"epoch {epoch}/{epochs}"
            self.progress(label, state, message, epoch, epochs, where)

    def _collect(self, ref, item: Pending) -> list[str]:
        """A task that came back: its run added to the store, or its failure (a line to report)."""
        self.ended.add(item.label)
        try:
            run_id, files, message = self.ray.get(ref)
            replace = item.interrupted is not None and run_id == item.interrupted.id
            run = self.store.add(run_id, files, replace=replace)
        except (self.ray.exceptions.RayError, NormcompressError) as exc:
            message, run = _failure(self.ray, exc, self.attempts.get(item.label, 0)), None
        if run is not None and not message:
            self.progress.done(item.index, run, item.label)
            return []
        self.progress(item.label, "failed", message)
        return [f"{item.label}: {message}"]


def _failure(ray, exc: BaseException, attempts: int) -> str:
    """One line for a task that came back without a run."""
    if isinstance(exc, ray.exceptions.RayTaskError):  # the task raised (Ray's error is also of the cause's
        exc = getattr(exc, "cause", None) or exc  # class, with the worker's traceback as its text)
    if isinstance(exc, NormcompressError):
        return str(exc)
    if isinstance(
        exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError | ray.exceptions.LocalRayletDiedError
    ):
        return f"its worker died (killed, or out of memory) after {count(max(attempts, 1), 'attempt')}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
