"""The run store: one directory per run, the contract between the engine, the CLI and the TUI.

    <root>/<run id>/
        config.json     the TrainConfig, written once
        metrics.jsonl   one JSON line per completed epoch, appended and flushed
        checkpoint.pt   model, optimizer, epoch and RNG state, replaced atomically each epoch
        summary.json    status, final metrics, wall time, device, data really used, versions
        recon.png       fixed validation images, their reconstructions and error maps
        run.lock        held (flock) by the process training the run

Every file except metrics.jsonl is written to a temporary file and renamed, so a crash, Ctrl-C or
a full disk leaves the previous version intact. A run whose summary says `running` but whose lock
is free was killed (kill -9, power loss) and is reported as `interrupted`.
"""

import errno
import fcntl
import io
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import NormcompressError, UsageError

RUNS_DIR_ENV = "NORMCOMPRESS_RUNS_DIR"
STATUSES = ("running", "completed", "interrupted", "failed", "damaged")


class StoreError(NormcompressError):
    pass


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {path}: {_describe_os_error(exc)}") from exc
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def _slug(norm: str) -> str:
    """A file-name-safe form of a norm: 0.5*L1+0.5*L2 -> 0.5xL1+0.5xL2, Lp:3 -> Lp3."""
    return norm.replace("*", "x").replace(":", "").replace("/", "-")


@dataclass
class RunInfo:
    """What a listing shows of a run, read from summary.json and config.json alone (fast for many runs)."""

    id: str
    path: Path
    norm: str
    status: str
    epochs_done: int
    epochs: int
    psnr: float | None
    duration_s: float | None
    problem: str | None  # why a run is damaged, or None
    config: dict
    summary: dict

    @property
    def duration_text(self) -> str:
        """The training wall time as people read it: 9.4s, 2m05s."""
        if self.duration_s is None:
            return "-"
        minutes, seconds = divmod(int(round(self.duration_s)), 60)
        return f"{minutes}m{seconds:02d}s" if minutes else f"{self.duration_s:.1f}s"


class Run:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name

    # -- files -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def recon_path(self) -> Path:
        return self.path / "recon.png"

    def _read_json(self, name: str) -> dict:
        try:
            value = json.loads((self.path / name).read_text())
        except FileNotFoundError:
            raise StoreError(f"run {self.id} is damaged: {name} is missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"run {self.id} is damaged: {name} is not valid JSON") from None
        if not isinstance(value, dict):
            raise StoreError(f"run {self.id} is damaged: {name} is not a JSON object")
        return value

    def config(self) -> dict:
        return self._read_json("config.json")

    def summary(self) -> dict:
        return self._read_json("summary.json")

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def metrics(self) -> list[dict]:
        """Per-epoch records; a cut-off or garbled line makes the run damaged."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for number, line in enumerate(path.read_text().splitlines(keepends=True), 1):
            try:
                if not line.endswith("\n"):
                    raise ValueError
                records.append(json.loads(line))
            except ValueError:
                raise StoreError(f"run {self.id} is damaged: metrics.jsonl line {number} is cut off or garbled") from None
        return records

    def append_metrics(self, record: dict) -> None:
        try:
            with open(self.path / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise StoreError(f"cannot write {self.path / 'metrics.jsonl'}: {_describe_os_error(exc)}") from exc

    def keep_metrics_through(self, epoch: int) -> list[dict]:
        """Drop records past `epoch` (written before a crash that beat the checkpoint) and return the rest."""
        kept = [r for r in self.metrics() if r["epoch"] <= epoch]
        atomic_write(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept).encode())
        return kept

    def save_checkpoint(self, state: dict) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.checkpoint_path, buffer.getvalue())

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict:
        if not self.checkpoint_path.exists():
            raise StoreError(f"run {self.id} has no checkpoint.pt (it stopped before its first epoch ended)")
        try:
            return torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated zip, garbage bytes, foreign pickle: all one message
            raise StoreError(f"run {self.id} is damaged: checkpoint.pt cannot be read ({type(exc).__name__})") from None

    def load_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The run's model with its last checkpoint's weights, in eval mode."""
        from .model import build_model

        model = build_model(self.config().get("model", "seed")).to(device)
        model.load_state_dict(self.load_checkpoint(device)["model"])
        return model.eval()

    # -- liveness ----------------------------------------------------------------------------
    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the run's lock while training it; a second trainer of the same run is refused."""
        fd = os.open(self.path / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"run {self.id} is being trained by another process") from None
            yield
        finally:
            os.close(fd)  # closing releases the lock, as the kernel does when the process dies

    def is_live(self) -> bool:
        """Whether some process (this one included) holds the run's lock right now."""
        try:
            fd = os.open(self.path / "run.lock", os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # -- listing -----------------------------------------------------------------------------
    def info(self) -> RunInfo:
        problem = None
        config: dict = {}
        summary: dict = {}
        try:
            config = self.config()
            summary = self.summary()
            problem = self._quick_damage_check(summary)
        except StoreError as exc:
            problem = str(exc).split(": ", 1)[-1]
        status = summary.get("status", "damaged")
        if problem:
            status = "damaged"
        elif status == "running" and not self.is_live():
            status = "interrupted"
        final = summary.get("metrics") or {}
        return RunInfo(
            id=self.id,
            path=self.path,
            norm=config.get("norm", "?"),
            status=status,
            epochs_done=summary.get("epochs_done", 0),
            epochs=config.get("epochs", 0),
            psnr=final.get("psnr"),
            duration_s=summary.get("wall_time_s"),
            problem=problem,
            config=config,
            summary=summary,
        )

    def _quick_damage_check(self, summary: dict) -> str | None:
        """Cheap checks only (a stat and the last bytes of a file), so listing stays fast."""
        if summary.get("epochs_done", 0) > 0 and not self.checkpoint_path.exists():
            return "checkpoint.pt is missing"
        path = self.path / "metrics.jsonl"
        if path.exists() and path.stat().st_size:
            last = _last_line(path)
            if not last.endswith(b"\n"):
                return "the last line of metrics.jsonl is cut off"
            try:
                json.loads(last)
            except ValueError:
                return "the last line of metrics.jsonl is garbled"
        return None


def _last_line(path: Path, chunk: int = 8192) -> bytes:
    """The file's last line, read from the end in chunks (a line holds an epoch's step losses, a few KB)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        tail = b""
        while True:
            start = max(0, end - len(tail) - chunk)
            f.seek(start)
            tail = f.read(end - start)
            cut = tail.rstrip(b"\n").rfind(b"\n")
            if cut >= 0 or start == 0:
                return tail[cut + 1 :]


def _change_key(path: Path) -> tuple[int, ...]:
    """What changes whenever a run's files do: the files replaced by a rename touch the directory;
    metrics.jsonl is appended to in place; summary.json is stat'ed too, in case a hand edits it."""
    key = [path.stat().st_mtime_ns]
    for name in ("summary.json", "metrics.jsonl"):
        try:
            st = (path / name).stat()
            key += [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            key += [-1, -1]
    return tuple(key)


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        self._info_cache: dict[str, tuple[tuple[int, ...], RunInfo]] = {}

    def create(self, config: dict, summary: dict) -> Run:
        """Make a new run directory, complete with config.json and summary.json, in one rename."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / f".new-{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create a run in {self.root}: {_describe_os_error(exc)}") from exc
        try:
            atomic_write_json(staging / "config.json", config)
            atomic_write_json(staging / "summary.json", summary)
            while True:
                now = time.time()
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
                run_id = f"{stamp}-{_slug(config['norm'])}-{secrets.token_hex(3)}"
                if not (self.root / run_id).exists():
                    os.rename(staging, self.root / run_id)
                    return Run(self.root / run_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def runs(self) -> list[Run]:
        if not self.root.is_dir():
            return []
        return [Run(p) for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith(".")]

    def infos(self) -> list[RunInfo]:
        """Every run's info. A store polled again (the app does, every 2 s) re-reads only the runs
        whose directory or metrics.jsonl changed since the last call, so thousands of runs stay cheap."""
        infos, cache = [], {}
        for run in self.runs():
            key = _change_key(run.path)
            hit = self._info_cache.get(run.id)
            if hit is not None and hit[0] == key and hit[1].summary.get("status") != "running":
                info = hit[1]
            else:
                info = run.info()
            cache[run.id] = (key, info)
            infos.append(info)
        self._info_cache = cache
        return infos

    def get(self, ref: str) -> Run:
        """A run by its id, a unique prefix of it, or a unique suffix (the random part charts show)."""
        if ref and (self.root / ref).is_dir() and not ref.startswith("."):
            return Run(self.root / ref)
        runs = self.runs() if ref else []
        matches = [r for r in runs if r.id.startswith(ref)] or [r for r in runs if r.id.endswith(ref)]
        if not matches:
            raise StoreError(f"no run {ref!r} in {self.root}")
        if len(matches) > 1:
            shown = ", ".join(r.id for r in matches[:5])
            raise UsageError(f"{ref!r} matches {len(matches)} runs ({shown}); give more of the id")
        return matches[0]

    def remove(self, run: Run) -> None:
        if run.is_live():
            raise StoreError(f"run {run.id} is being trained; stop it before removing it")
        try:
            shutil.rmtree(run.path)
        except OSError as exc:
            raise StoreError(f"cannot remove {run.path}: {_describe_os_error(exc)}") from exc
