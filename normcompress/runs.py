"""The run store: one directory per run, the contract between the engine, the CLI and the TUI.
A run trained elsewhere (a Ray worker's private store) arrives as its files and is added in one rename.

    <root>/<run id>/
        config.json     the TrainConfig, written once
        metrics.jsonl   one JSON line per completed epoch, appended and flushed
        checkpoint.pt   model, optimizer, epoch and RNG state (and the learned prior of a run trained
                        with --rate-lambda), replaced atomically each epoch
        summary.json    status, final metrics, wall time, device, data really used, versions
        recon.png       fixed validation images, their reconstructions and error maps
        entropy.json    the codec's entropy model, fitted the first time the run compresses a file
        tags.json       the words a user tagged the run with (`runs tag`, `t` in the app), if any
        run.lock        held (flock) by the process training the run
        edit.lock       held (flock) for the moment of a read-modify-write of the user's files (tags.json),
                        so that two writers at once both keep their words

A run id is `<date>-<time>.<ms>-<norm slug>-<6 hex>`; nothing else in the root is a run, and a run
reference (an id, or a unique prefix or suffix of one) resolves only among those entries, so no
reference can reach outside the store. Every file except metrics.jsonl is written to a temporary file
and renamed, so a crash, Ctrl-C or a full disk leaves the previous version intact; leftovers of a
process that died are removed later. A run whose summary says `running` but whose lock is free was
killed (kill -9, power loss) and is reported as `interrupted`.

The store's own folders (`.baselines/`, `exports/`) are used only when they are real folders directly
in the root, never through a symbolic link, so no write of the project lands outside the store.

Every file is read through one validating layer (TrainConfig.from_json, Summary.from_json,
check_epoch_record): a run whose files fail it is listed as `damaged` with the reason.
"""

import errno
import fcntl
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from .config import ConfigError, TrainConfig
from .errors import NormcompressError, UsageError
from .text import printable
from .files import (FileError, MissingFileError, atomic_write, atomic_write_json, describe_os_error, is_stale,
                    read_regular)

RUNS_DIR_ENV = "NORMCOMPRESS_RUNS_DIR"
RUN_ID = re.compile(r"\d{8}-\d{6}\.\d{3}-[A-Za-z0-9.+\-]{1,48}-[0-9a-f]{6}")
MAX_JSON_BYTES = 1 << 20
MAX_METRICS_BYTES = 64 << 20  # about 15,000 epochs of CIFAR-10 step losses
MAX_CHECKPOINT_BYTES = 1 << 30
# A run's files as they travel between stores (a Ray task's result), each with the most it may hold.
RUN_FILES = {"config.json": MAX_JSON_BYTES, "summary.json": MAX_JSON_BYTES, "metrics.jsonl": MAX_METRICS_BYTES,
             "checkpoint.pt": MAX_CHECKPOINT_BYTES, "recon.png": 64 << 20, "entropy.json": 16 << 20,
             "tags.json": MAX_JSON_BYTES}
TAG = re.compile(r"[\w.:+=@-]{1,32}")
MAX_TAGS = 16


class StoreError(NormcompressError):
    pass


class MissingRunFile(StoreError):
    """One of a run's files is not there."""


class Status(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DAMAGED = "damaged"


class RecordError(ValueError):
    """A run file that parses but does not hold what it should; the message is the reason shown."""


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def run_label(norm: str, run_id: str) -> str:
    """How charts, tables and files name a run: its norm and the random end of its id (L2 3f9a0c)."""
    return f"{norm} {run_id[-6:]}"


def _slug(norm: str) -> str:
    """A file-name-safe form of a norm, at most 48 characters: 0.5*L1+0.5*L2 -> 0.5xL1+0.5xL2, Lp:3 -> Lp3."""
    return norm.replace("*", "x").replace(":", "")[:48]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Summary:
    """summary.json: how a run went. Written by the training process, read by everyone else."""

    status: Status
    epochs_done: int = 0
    wall_time_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # the last epoch's validation metrics, best_psnr
    data: str = ""  # the data really used (the sample, after a CIFAR-10 fallback)
    device: str = ""
    device_name: str = ""
    notices: list[str] = field(default_factory=list)
    train_images: int = 0
    val_images: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    message: str = ""

    def to_json(self) -> dict:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_json(cls, value: object) -> "Summary":
        if not isinstance(value, dict):
            raise RecordError("summary.json is not a JSON object")
        if "status" not in value or value["status"] not in {s.value for s in Status} or value["status"] == "damaged":
            raise RecordError(f"summary.json has no valid status ({str(value.get('status'))[:20]!r})")
        checks = {
            "epochs_done": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**6,
            "wall_time_s": lambda v: _finite(v) and v >= 0,
            "metrics": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _finite(x) for k, x in v.items()),
            "notices": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "train_images": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "val_images": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "versions": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        }
        known = {f.name for f in fields(cls)}
        for key in known - {"status"}:
            if key in value and not checks.get(key, lambda v: isinstance(v, str))(value[key]):
                raise RecordError(f"summary.json: {key} has the wrong type or value ({str(value[key])[:40]!r})")
        return cls(**{k: v for k, v in value.items() if k in known and k != "status"}, status=Status(value["status"]))


def check_epoch_record(record: object, epoch: int) -> dict:
    """A metrics.jsonl line, checked: the expected epoch number, finite numbers, a list of step losses."""
    if not isinstance(record, dict) or record.get("epoch") != epoch or isinstance(record.get("epoch"), bool):
        raise RecordError(f"metrics.jsonl line {epoch} is not epoch {epoch}'s record")
    for key, value in record.items():
        good = (isinstance(value, list) and all(_finite(v) for v in value)) if key == "step_losses" else _finite(value)
        if not good:
            raise RecordError(f"metrics.jsonl line {epoch}: {str(key)[:40]!r} is not a finite number")
    return record


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_json(data: bytes) -> object:
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def check_tags(words: object) -> tuple[str, ...]:
    """Tags as stored and typed: at most 16 distinct words of letters, digits and . : + = @ - _,
    1 to 32 characters each, in the order given; RecordError says which one is not."""
    if not isinstance(words, list | tuple):
        raise RecordError("tags must be a list of words")
    if len(words) > MAX_TAGS:
        raise RecordError(f"a run has at most {MAX_TAGS} tags, not {len(words)}")
    for word in words:
        if not isinstance(word, str) or not TAG.fullmatch(word):
            shown = printable(word)[:40] if isinstance(word, str) else type(word).__name__
            raise RecordError(f"{shown!r} is not a tag: use 1 to 32 letters, digits or . : + = @ - _")
    return tuple(dict.fromkeys(words))


@dataclass
class RunInfo:
    """What a listing shows of a run, read from summary.json and config.json alone (fast for many runs).

    `config` and `summary` are None when the file cannot be read or fails its checks (then `problem` says why).
    """

    id: str
    path: Path
    status: Status
    config: TrainConfig | None
    summary: Summary | None
    problem: str | None  # why a run is damaged, or None
    tags: tuple[str, ...] = ()
    tags_problem: str | None = None  # why tags.json cannot be read (the run itself is fine)

    @property
    def norm(self) -> str:
        return self.config.norm if self.config else "?"

    @property
    def label(self) -> str:
        """How charts and tables name a run: its norm and the random end of its id."""
        return run_label(self.norm, self.id)

    @property
    def epochs(self) -> int:
        return self.config.epochs if self.config else 0

    @property
    def epochs_done(self) -> int:
        return self.summary.epochs_done if self.summary else 0

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.metrics if self.summary else {}

    @property
    def psnr(self) -> float | None:
        return self.metrics.get("psnr")

    @property
    def duration_s(self) -> float | None:
        return self.summary.wall_time_s if self.summary else None

    @property
    def data_source(self) -> str:
        """The data the run really trained on (after a fallback), or what it asked for."""
        return (self.summary.data if self.summary else "") or (self.config.dataset if self.config else "?")

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

    @property
    def entropy_path(self) -> Path:
        return self.path / "entropy.json"

    @property
    def data_source(self) -> str:
        """The data the run really trained on (the sample, after a CIFAR-10 fallback), or what it asked for."""
        return self.info().data_source

    def read_bytes(self, name: str, max_bytes: int) -> bytes:
        """One of the run's files, never through a symlink, never a FIFO, never more than max_bytes."""
        try:
            return read_regular(self.path / name, max_bytes, follow_symlinks=False, what=name)
        except MissingFileError:
            raise MissingRunFile(f"run {self.id} is damaged: {name} is missing") from None
        except FileError as exc:
            raise StoreError(f"run {self.id} is damaged: {exc}") from None

    def _read_json(self, name: str) -> object:
        data = self.read_bytes(name, MAX_JSON_BYTES)
        try:
            return _parse_json(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise StoreError(f"run {self.id} is damaged: {name} is not valid JSON") from None

    def train_config(self) -> TrainConfig:
        try:
            return TrainConfig.from_json(self._read_json("config.json"))
        except ConfigError as exc:
            raise StoreError(f"run {self.id} is damaged: {exc}") from None

    def summary(self) -> Summary:
        try:
            return Summary.from_json(self._read_json("summary.json"))
        except RecordError as exc:
            raise StoreError(f"run {self.id} is damaged: {exc}") from None

    def write_summary(self, summary: Summary) -> None:
        atomic_write_json(self.path / "summary.json", summary.to_json())

    def tags(self) -> tuple[str, ...]:
        """The run's tags; none when it was never tagged; StoreError when tags.json is damaged."""
        try:
            value = self._read_json("tags.json")
        except MissingRunFile:
            return ()
        try:
            return check_tags(value.get("tags") if isinstance(value, dict) else None)
        except RecordError as exc:
            raise StoreError(f"run {self.id} is damaged: tags.json: {exc}") from None

    @contextmanager
    def editing(self) -> Iterator[None]:
        """Hold the run's edit lock around a read-modify-write of its user files: a second writer (another
        `runs tag`, the app's `t`) waits the few milliseconds until the first has renamed its file."""
        try:
            fd = os.open(self.path / "edit.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except FileNotFoundError:
            raise StoreError(f"run {self.id} was removed") from None
        except OSError as exc:
            raise StoreError(f"run {self.id} is damaged: cannot open edit.lock ({describe_os_error(exc)})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"run {self.id} is damaged: edit.lock is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update_tags(self, add: list[str] | tuple[str, ...] = (), remove: list[str] | tuple[str, ...] = (),
                    replace: list[str] | tuple[str, ...] | None = None) -> tuple[tuple[str, ...], str | None]:
        """Change the run's tags under its edit lock, so that writers at the same time all keep their words:
        `replace` (if given) is the new list, else the current tags less `remove` plus `add`. A damaged
        tags.json is replaced; the second value then says what was dropped. The words are checked first: a
        bad one is a UsageError and nothing is written."""
        try:
            check_tags([*add, *(replace or ())])
        except RecordError as exc:
            raise UsageError(str(exc)) from None
        with self.editing():
            dropped = None
            try:
                current = self.tags()
            except StoreError as exc:
                current, dropped = (), f"{str(exc).split(': ', 1)[-1]}; its contents were dropped"
            new = list(replace) if replace is not None else [t for t in current if t not in remove] + list(add)
            try:
                tags = check_tags(list(dict.fromkeys(new)))
            except RecordError as exc:
                raise UsageError(str(exc)) from None
            atomic_write_json(self.path / "tags.json", {"tags": list(tags)})
        return tags, dropped

    def metrics(self) -> list[dict]:
        """Per-epoch records, checked; a cut-off, garbled or ill-typed line makes the run damaged."""
        try:
            data = self.read_bytes("metrics.jsonl", MAX_METRICS_BYTES)
        except MissingRunFile:
            return []  # no epoch has ended yet
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StoreError(f"run {self.id} is damaged: metrics.jsonl is not UTF-8 text") from None
        records = []
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            try:
                if not line.endswith("\n"):
                    raise ValueError
                records.append(check_epoch_record(_parse_json(line.encode()), number))
            except RecordError as exc:
                raise StoreError(f"run {self.id} is damaged: {exc}") from None
            except (ValueError, RecursionError):
                raise StoreError(f"run {self.id} is damaged: metrics.jsonl line {number} is cut off or garbled") from None
        return records

    def append_metrics(self, record: dict) -> None:
        line = (json.dumps(record, allow_nan=False) + "\n").encode()
        try:  # never through a symlink planted in the run's folder
            fd = os.open(self.path / "metrics.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path / 'metrics.jsonl'}: {describe_os_error(exc)}") from exc

    def keep_metrics_through(self, epoch: int) -> list[dict]:
        """Drop records past `epoch` (written before a crash that beat the checkpoint) and return the rest."""
        kept = [r for r in self.metrics() if r["epoch"] <= epoch]
        atomic_write(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept).encode())
        return kept

    def save_checkpoint(self, state: dict) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.checkpoint_path, buffer.getvalue())

    def load_checkpoint(self, map_location="cpu") -> dict:
        import torch

        if not os.path.lexists(self.checkpoint_path):
            raise StoreError(f"run {self.id} has no checkpoint.pt (it stopped before its first epoch ended)")
        data = self.read_bytes("checkpoint.pt", MAX_CHECKPOINT_BYTES)
        try:
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated zip, garbage bytes, foreign pickle: all one message
            raise StoreError(f"run {self.id} is damaged: checkpoint.pt cannot be read ({type(exc).__name__})") from None
        if not isinstance(state, dict):
            raise StoreError(f"run {self.id} is damaged: checkpoint.pt does not hold a training state")
        return state

    def files(self) -> dict[str, bytes]:
        """The run's files by name (not its lock), to carry it to another store: see RunStore.add."""
        files = {}
        for name, limit in RUN_FILES.items():
            try:
                files[name] = self.read_bytes(name, limit)
            except MissingRunFile:
                continue
        return files

    # -- liveness ----------------------------------------------------------------------------
    def _open_lock(self, flags: int) -> int:
        fd = os.open(self.path / "run.lock", flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "run.lock is not a regular file")
        return fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the run's lock while training it; a second trainer of the same run is refused.
        Holding it, the run's leftover temporary files from a process that died are removed."""
        try:
            fd = self._open_lock(os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:
            raise StoreError(f"run {self.id} was removed") from None
        except OSError as exc:
            raise StoreError(f"run {self.id} is damaged: cannot open run.lock ({describe_os_error(exc)})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"run {self.id} is being trained by another process") from None
            remove_stale(self.path)
            yield
        finally:
            os.close(fd)  # closing releases the lock, as the kernel does when the process dies

    def is_live(self) -> bool:
        """Whether some process (this one included) holds the run's lock right now."""
        try:
            fd = self._open_lock(os.O_RDONLY)
        except OSError:
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
        """The run as a listing shows it; never raises for a damaged run, which is listed with its reason."""
        config: TrainConfig | None = None
        summary: Summary | None = None
        try:
            config = self.train_config()
            summary = self.summary()
            problem = self._quick_damage_check(summary)
        except StoreError as exc:
            problem = str(exc).split(": ", 1)[-1]
        status = Status.DAMAGED if problem or summary is None else summary.status
        if status == Status.RUNNING and not self.is_live():
            status = Status.INTERRUPTED
        tags, tags_problem = (), None
        try:
            tags = self.tags()
        except StoreError as exc:  # tags are the user's notes, not the run: the run is fine, its tags unreadable
            tags_problem = str(exc).split(": ", 1)[-1]
        return RunInfo(self.id, self.path, status, config, summary, problem, tags, tags_problem)

    def _quick_damage_check(self, summary: Summary) -> str | None:
        """Cheap checks only (a stat and the last bytes of a file), so listing stays fast."""
        if summary.epochs_done > 0 and not self.checkpoint_path.is_file():
            return "checkpoint.pt is missing"
        path = self.path / "metrics.jsonl"
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return "metrics.jsonl is missing" if summary.epochs_done > 0 else None
        if not stat.S_ISREG(info.st_mode):
            return "metrics.jsonl is not a regular file"
        if not info.st_size:
            return "metrics.jsonl is empty" if summary.epochs_done > 0 else None
        last = _last_line(path)
        if not last.endswith(b"\n"):
            return "the last line of metrics.jsonl is cut off"
        try:
            record = _parse_json(last)
            check_epoch_record(record, record.get("epoch") if isinstance(record, dict) else 0)
        except RecordError as exc:
            return str(exc)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return "the last line of metrics.jsonl is garbled"
        # A crash between the metrics line and the checkpoint leaves one line more, which resume drops.
        if not summary.epochs_done <= record["epoch"] <= summary.epochs_done + 1:
            return f"metrics.jsonl ends at epoch {record['epoch']}, summary.json says {summary.epochs_done} done"
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
            st = (path / name).lstat()
            key += [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            key += [-1, -1]
    return tuple(key)


def remove_stale(directory: Path) -> None:
    """Remove temporary files and staging directories whose writer is gone (SIGKILL, power loss)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if is_stale(entry.name):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with _ignored_os_errors():
                    os.unlink(entry.path)


@contextmanager
def _ignored_os_errors() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        if isinstance(root, str) and not root.strip():
            raise UsageError("the run store directory is empty; give a path, or leave --runs-dir out for ./runs")
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise UsageError(f"the run store {printable(self.root, keep_newlines=False)} is not a directory; "
                             "give a directory (it is created if missing)")
        self._info_cache: dict[str, tuple[tuple[int, ...], RunInfo]] = {}

    def _staging(self, doing: str) -> Path:
        """A new empty directory in the root, named so that remove_stale knows it once its process is
        gone, where a run is put together before its one rename; leftovers of dead processes go first."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            remove_stale(self.root)
            staging = self.root / f".new-{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot {doing} {self.root}: {describe_os_error(exc)}") from exc
        return staging

    def folder(self, name: str) -> Path:
        """One of the store's own folders (`.baselines`, `exports`), made if missing: a real folder directly
        in the root, never a symbolic link or anything else planted there, so no write goes outside."""
        path = self.root / name
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            info = os.lstat(path)
        except OSError as exc:
            raise StoreError(f"cannot make {printable(path, keep_newlines=False)}: {describe_os_error(exc)}") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise StoreError(f"{printable(path, keep_newlines=False)} is not a real folder of the store (a symbolic "
                             "link or a file is there); remove it and try again")
        return path

    def create(self, config: TrainConfig, summary: Summary) -> Run:
        """Make a new run directory, complete with config.json and summary.json, in one rename."""
        staging = self._staging("create a run in")
        try:
            atomic_write_json(staging / "config.json", asdict(config))
            atomic_write_json(staging / "summary.json", summary.to_json())
            while True:
                now = time.time()
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
                run_id = f"{stamp}-{_slug(config.norm)}-{secrets.token_hex(3)}"
                if not os.path.lexists(self.root / run_id):
                    os.rename(staging, self.root / run_id)
                    return Run(self.root / run_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def add(self, run_id: str, files: dict[str, bytes], replace: bool = False) -> Run:
        """Put a run trained elsewhere (a Ray worker's private store) into this store in one rename, so
        it is complete on disk or absent. With replace, a run of that id here (an interrupted run that was
        resumed elsewhere) gives way to it in a second rename. The files are checked as hostile input: a
        run id, known names, sizes within the limits, and a run whose files pass the store's own checks.
        """
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise StoreError(f"{printable(str(run_id))[:80]!r} is not a run id; nothing was added")
        unknown = sorted(set(files) - set(RUN_FILES))
        if unknown or "config.json" not in files or "summary.json" not in files:
            shown = printable(", ".join(map(str, unknown)))[:80] or "config.json or summary.json missing"
            raise StoreError(f"run {run_id} cannot be added: unexpected files ({shown})")
        for name, data in files.items():
            if not isinstance(data, bytes) or len(data) > RUN_FILES[name]:
                raise StoreError(f"run {run_id} cannot be added: {name} is not bytes within {RUN_FILES[name]:,}")
        target = self.root / run_id
        if os.path.lexists(target) and not replace:
            raise StoreError(f"run {run_id} is already in {self.root}; nothing was added")
        staging = self._staging("add a run to")
        try:
            for name, data in files.items():
                atomic_write(staging / name, data)
            info = Run(staging).info()
            if info.problem or info.status == Status.DAMAGED:
                raise StoreError(f"run {run_id} cannot be added: {info.problem or 'its files fail their checks'}")
            if os.path.lexists(target):
                self._replace(Run(target), staging)
            else:
                os.rename(staging, target)
        except OSError as exc:
            raise StoreError(f"cannot add run {run_id} to {self.root}: {describe_os_error(exc)}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already, after the rename
        return Run(target)

    def _replace(self, old: Run, staging: Path) -> None:
        """Swap a run for a new version of it: held, so no one trains the old one meanwhile."""
        with old.hold():
            doomed = self._take_out(old.path)
            os.rename(staging, old.path)
        shutil.rmtree(doomed, ignore_errors=True)

    def _take_out(self, path: Path) -> Path:
        """Move a run's folder out of the store's listing in one rename, to a name remove_stale knows."""
        doomed = self.root / f".removing-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(path, doomed)
        return doomed

    def discard(self, run: Run) -> None:
        """Remove a run this process created and holds, which never reached its first step (its model
        could not be set up): nothing of it is worth keeping, and it must not be listed as interrupted."""
        try:
            doomed = self._take_out(run.path)
        except OSError:
            return  # it stays, listed as interrupted: the error that brought us here is what the user sees
        shutil.rmtree(doomed, ignore_errors=True)

    def runs(self) -> list[Run]:
        """Every run: the real directories (not symlinks) in the root whose names are run ids, oldest first."""
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StoreError(f"cannot list the run store {self.root}: {describe_os_error(exc)}") from None
        return [Run(Path(e.path)) for e in sorted(entries, key=lambda e: e.name)
                if RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]

    def infos(self) -> list[RunInfo]:
        """Every run's info. A store polled again (the app does, every 2 s) re-reads only the runs
        whose directory or metrics.jsonl changed since the last call, so thousands of runs stay cheap."""
        infos, cache = [], {}
        for run in self.runs():
            try:
                key = _change_key(run.path)
            except OSError:
                continue  # removed while being listed
            hit = self._info_cache.get(run.id)
            if hit is not None and hit[0] == key and hit[1].status != Status.RUNNING:
                info = hit[1]
            else:
                info = run.info()
            cache[run.id] = (key, info)
            infos.append(info)
        self._info_cache = cache
        return infos

    def get(self, ref: str) -> Run:
        """A run by its id, a unique prefix of it, or a unique suffix (the random part charts show).

        Only the store's own entries are searched: a path, `..` or anything with a separator is refused.
        """
        if not ref or not ref.strip():
            raise UsageError("empty run reference; give a run id, or a unique prefix or suffix of one")
        if "/" in ref or "\\" in ref or "\0" in ref or ref.startswith("."):
            raise UsageError(f"{ref!r} is not a run reference: give a run id (as `normcompress runs list` "
                             f"shows it), or a unique prefix or suffix of one, not a path")
        runs = self.runs()
        matches = ([r for r in runs if r.id == ref] or [r for r in runs if r.id.startswith(ref)]
                   or [r for r in runs if r.id.endswith(ref)])
        if not matches:
            raise StoreError(f"no run {ref!r} in {self.root}")
        if len(matches) > 1:
            shown = ", ".join(r.id for r in matches[:5])
            raise UsageError(f"{ref!r} matches {len(matches)} runs ({shown}); give more of the id")
        return matches[0]

    def remove(self, run: Run) -> None:
        """Delete a run: only a real directory directly inside this store, named as a run, holding a
        run's config.json, and not being trained. It leaves the store in one rename, then is deleted."""
        path = run.path
        try:
            inside = path.parent.resolve(strict=True) == self.root.resolve(strict=True)
            info = os.lstat(path)
        except OSError:
            raise StoreError(f"no run {run.id!r} in {self.root}") from None
        if not (inside and RUN_ID.fullmatch(path.name) and stat.S_ISDIR(info.st_mode)
                and os.path.isfile(path / "config.json") and not os.path.islink(path / "config.json")):
            raise StoreError(f"{path} is not a run of the store {self.root}; nothing was removed")
        with run.hold():  # refuses a run being trained, and keeps a resume from starting meanwhile
            try:
                doomed = self._take_out(path)
            except OSError as exc:
                raise StoreError(f"cannot remove {path}: {describe_os_error(exc)}") from None
        shutil.rmtree(doomed, ignore_errors=True)  # what a failure leaves is stale, and removed later
