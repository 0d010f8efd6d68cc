"""Reading and writing files safely: atomic writes, bounded reads of regular files only.

Every file the project reads may be hostile (a FIFO that never ends, /dev/zero, a symlink out of the
run store, a huge file), and every file it writes must be whole or absent after a crash or a full disk.
"""

import csv
import errno
import io
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from .errors import NormcompressError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads a cell as a formula by


class FileError(NormcompressError):
    pass


class MissingFileError(FileError):
    """The file is not there (as opposed to there but unreadable, special, or too large)."""


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def temp_name(path: Path) -> Path:
    """Where a file is written before its rename; the pid in the name lets a later process tell whether
    a leftover belongs to a live writer (see remove_stale_temps)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers see old or new, never half."""
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise FileError(f"cannot write {path}: {describe_os_error(exc)}") from exc
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2, allow_nan=False) + "\n").encode())


def read_regular(path: Path, max_bytes: int, follow_symlinks: bool = True, what: str | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or FileError with one line.

    Opened without blocking, so a FIFO or a device is refused instead of hanging the reader; the size is
    checked before anything is read. Files inside the run store are opened with follow_symlinks=False.
    """
    name = what or str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise MissingFileError(f"{name} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(f"{name} is a symbolic link, which is not allowed here") from None
        raise FileError(f"cannot read {name}: {describe_os_error(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileError(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise FileError(f"{name} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise FileError(f"cannot read {name}: {describe_os_error(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise FileError(f"{name} is larger than {max_bytes:,} bytes")
    return data


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LEFTOVER = re.compile(r"\.(?:new|removing)-(\d+)-[0-9a-f]+|\..+\.(\d+)-[0-9a-f]+\.tmp")


def writer_pid(name: str) -> int | None:
    """The pid in a temporary or staging name (.x.json.1234-ab12cd.tmp, .new-1234-ab12cd34), or None."""
    match = _LEFTOVER.fullmatch(name)
    return int(match[1] or match[2]) if match else None


def is_stale(name: str) -> bool:
    """Whether a leftover temporary or staging entry was left by a process that is gone (SIGKILL, power loss)."""
    pid = writer_pid(name)
    return pid is not None and pid != os.getpid() and not _pid_alive(pid)


def output_paths(sources: list[Path], out_dir: Path, suffix: str, force: bool) -> list[Path]:
    """One output per input, <stem><suffix> in out_dir, checked before anything is written: two inputs
    with one output name, or an existing output without force, is an error that writes nothing."""
    from .errors import UsageError
    from .text import one_line

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileError(f"cannot write to {one_line(out_dir)}: {describe_os_error(exc)}") from None
    targets: list[Path] = []
    seen: dict[Path, Path] = {}
    for source in sources:
        target = out_dir / f"{source.stem}{suffix}"
        if target in seen:
            raise UsageError(
                f"{seen[target]} and {source} would both be written to {target}; "
                f"rename one or process them into different --out folders"
            )
        if os.path.lexists(target) and not force:
            raise UsageError(f"{target} already exists; pass --force to replace it")
        seen[target] = source
        targets.append(target)
    return targets


def atomic_write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as CSV with a header line (csv_bytes), written atomically."""
    atomic_write(path, csv_bytes(rows, columns))


def csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """Rows as CSV with a header line. Text a spreadsheet would run as a formula (a run named
    =HYPERLINK(...), a note +cmd|...) starts with a ' there, OWASP's advice on CSV injection, which a
    spreadsheet does not show; numbers, negative ones too, stay as they are."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue().encode()


def _inert(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS) or value == "-":
        return value
    try:
        float(value)  # -0.5 is a number, not a formula
    except ValueError:
        return f"'{value}"
    return value
