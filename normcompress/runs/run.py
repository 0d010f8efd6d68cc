"""One run's folder: its files, read through the validating records and written atomically, its locks,
and what a listing shows of it."""

import errno
import fcntl
import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError, MissingRunFile, StoreError, UsageError
from ..files import (
    FileError,
    MissingFileError,
    atomic_write,
    atomic_write_json,
    describe_os_error,
    is_stale,
    read_regular,
)
from .records import (
    MAX_CHECKPOINT_BYTES,
    MAX_JSON_BYTES,
    MAX_METRICS_BYTES,
    MAX_NAME,
    MAX_NOTE,
    RUN_FILES,
    Annotations,
    RecordError,
    RunInfo,
    Status,
    Summary,
    check_epoch_record,
    check_tags,
    check_text,
    parse_annotations,
    parse_json,
)


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
            return parse_json(data)
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

    def annotations(self) -> Annotations:
        """The run's tags, name and note; none when it was never annotated; StoreError when tags.json is
        damaged."""
        try:
            value = self._read_json("tags.json")
        except MissingRunFile:
            return Annotations()
        try:
            return parse_annotations(value)
        except RecordError as exc:
            raise StoreError(f"run {self.id} is damaged: tags.json: {exc}") from None

    def tags(self) -> tuple[str, ...]:
        return self.annotations().tags

    def _current_annotations(self) -> tuple[Annotations, str | None]:
        """Under the edit lock: what tags.json holds, or nothing and what a damaged file dropped."""
        try:
            return self.annotations(), None
        except StoreError as exc:
            return Annotations(), f"{str(exc).split(': ', 1)[-1]}; its contents were dropped"

    def annotate(self, name: str | None = None, note: str | None = None) -> tuple[Annotations, str | None]:
        """Set the run's name or note (\"\" clears it) under its edit lock, keeping its tags; checked first
        (a UsageError, nothing written). A damaged tags.json is replaced; the second value says so."""
        try:
            name = None if name is None else check_text(name, "name", MAX_NAME, one_line=True)
            note = None if note is None else check_text(note, "note", MAX_NOTE, one_line=False)
        except RecordError as exc:
            raise UsageError(str(exc)) from None
        with self.editing():
            current, dropped = self._current_annotations()
            new = Annotations(
                current.tags, current.name if name is None else name, current.note if note is None else note
            )
            atomic_write_json(self.path / "tags.json", new.to_json())
        return new, dropped

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

    def update_tags(
        self,
        add: list[str] | tuple[str, ...] = (),
        remove: list[str] | tuple[str, ...] = (),
        replace: list[str] | tuple[str, ...] | None = None,
    ) -> tuple[tuple[str, ...], str | None]:
        """Change the run's tags under its edit lock, so that writers at the same time all keep their words:
        `replace` (if given) is the new list, else the current tags less `remove` plus `add`. A damaged
        tags.json is replaced; the second value then says what was dropped. The words are checked first: a
        bad one is a UsageError and nothing is written."""
        try:
            check_tags([*add, *(replace or ())])
        except RecordError as exc:
            raise UsageError(str(exc)) from None
        with self.editing():
            annotations, dropped = self._current_annotations()
            current = annotations.tags
            new = list(replace) if replace is not None else [t for t in current if t not in remove] + list(add)
            try:
                tags = check_tags(list(dict.fromkeys(new)))
            except RecordError as exc:
                raise UsageError(str(exc)) from None
            atomic_write_json(self.path / "tags.json", Annotations(tags, annotations.name, annotations.note).to_json())
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
                records.append(check_epoch_record(parse_json(line.encode()), number))
            except RecordError as exc:
                raise StoreError(f"run {self.id} is damaged: {exc}") from None
            except (ValueError, RecursionError):
                raise StoreError(
                    f"run {self.id} is damaged: metrics.jsonl line {number} is cut off or garbled"
                ) from None
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
        annotations, tags_problem = Annotations(), None
        try:
            annotations = self.annotations()
        except StoreError as exc:  # tags are the user's notes, not the run: the run is fine, its tags unreadable
            tags_problem = str(exc).split(": ", 1)[-1]
        a = annotations
        return RunInfo(self.id, self.path, status, config, summary, problem, a.tags, tags_problem, a.name, a.note)

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
            record = parse_json(last)
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


def change_key(path: Path) -> tuple[int, ...]:
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
