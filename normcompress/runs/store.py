"""The store: the folder of runs, where runs are created, added, found by reference and removed."""

import os
import secrets
import shutil
import stat
import time
from dataclasses import asdict
from pathlib import Path

from ..config import TrainConfig
from ..errors import StoreError, UsageError
from ..files import atomic_write, atomic_write_json, describe_os_error
from ..text import printable
from .records import RUN_FILES, RUN_ID, RunInfo, Status, Summary
from .run import Run, change_key, remove_stale

RUNS_DIR_ENV = "NORMCOMPRESS_RUNS_DIR"


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def _slug(norm: str) -> str:
    """A file-name-safe form of a norm, at most 48 characters: 0.5*L1+0.5*L2 -> 0.5xL1+0.5xL2, Lp:3 -> Lp3."""
    return norm.replace("*", "x").replace(":", "")[:48]


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        if isinstance(root, str) and not root.strip():
            raise UsageError("the run store directory is empty; give a path, or leave --runs-dir out for ./runs")
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise UsageError(
                f"the run store {printable(self.root, keep_newlines=False)} is not a directory; "
                "give a directory (it is created if missing)"
            )
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
            raise StoreError(
                f"{printable(path, keep_newlines=False)} is not a real folder of the store (a symbolic "
                "link or a file is there); remove it and try again"
            )
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
        return [
            Run(Path(e.path))
            for e in sorted(entries, key=lambda e: e.name)
            if RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        ]

    def infos(self) -> list[RunInfo]:
        """Every run's info. A store polled again (the app does, every 2 s) re-reads only the runs
        whose directory or metrics.jsonl changed since the last call, so thousands of runs stay cheap."""
        infos, cache = [], {}
        for run in self.runs():
            try:
                key = change_key(run.path)
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
            raise UsageError(
                f"{ref!r} is not a run reference: give a run id (as `normcompress runs list` "
                f"shows it), or a unique prefix or suffix of one, not a path"
            )
        runs = self.runs()
        matches = (
            [r for r in runs if r.id == ref]
            or [r for r in runs if r.id.startswith(ref)]
            or [r for r in runs if r.id.endswith(ref)]
        )
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
        if not (
            inside
            and RUN_ID.fullmatch(path.name)
            and stat.S_ISDIR(info.st_mode)
            and os.path.isfile(path / "config.json")
            and not os.path.islink(path / "config.json")
        ):
            raise StoreError(f"{path} is not a run of the store {self.root}; nothing was removed")
        with run.hold():  # refuses a run being trained, and keeps a resume from starting meanwhile
            try:
                doomed = self._take_out(path)
            except OSError as exc:
                raise StoreError(f"cannot remove {path}: {describe_os_error(exc)}") from None
        shutil.rmtree(doomed, ignore_errors=True)  # what a failure leaves is stale, and removed later
