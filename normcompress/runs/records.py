"""What a run's files hold, checked: the status, summary.json, an epoch's record, tags, and what a
listing shows of a run. Every reader of the store goes through these, so a hostile file is one reason."""

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..text import printable

RUN_ID = re.compile(r"\d{8}-\d{6}\.\d{3}-[A-Za-z0-9.+\-]{1,48}-[0-9a-f]{6}")
MAX_JSON_BYTES = 1 << 20
MAX_METRICS_BYTES = 64 << 20  # about 15,000 epochs of CIFAR-10 step losses
MAX_CHECKPOINT_BYTES = 1 << 30
# A run's files as they travel between stores (a Ray task's result), each with the most it may hold.
RUN_FILES = {
    "config.json": MAX_JSON_BYTES,
    "summary.json": MAX_JSON_BYTES,
    "metrics.jsonl": MAX_METRICS_BYTES,
    "checkpoint.pt": MAX_CHECKPOINT_BYTES,
    "recon.png": 64 << 20,
    "history.png": 16 << 20,  # normcompress.history.MAX_HISTORY_BYTES
    "entropy.json": 16 << 20,
    "tags.json": MAX_JSON_BYTES,
}
TAG = re.compile(r"[\w.:+=@-]{1,32}")
MAX_TAGS = 16
MAX_NAME, MAX_NOTE = 60, 2000  # characters: a name fits a legend, a note a paragraph


class Status(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class Annotations:
    """tags.json: what the user wrote about a run (its tags, a name, a note), apart from what the run wrote."""

    tags: tuple[str, ...] = ()
    name: str = ""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The file's contents: a name and a note only when there is one (a tags-only file as before)."""
        return {"tags": list(self.tags), **{k: v for k, v in (("name", self.name), ("note", self.note)) if v}}


class RecordError(ValueError):
    """A run file that parses but does not hold what it should; the message is the reason shown."""


def run_label(norm: str, run_id: str) -> str:
    """How charts, tables and files name a run: its norm and the random end of its id (L2 3f9a0c)."""
    return f"{norm} {run_id[-6:]}"


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

    @property
    def versions_text(self) -> str:
        """`python 3.11.7  normcompress 0.2.0  torch 2.14.1 …`, or '-' for a run that recorded none."""
        return "  ".join(f"{name} {value}" for name, value in self.versions.items()) or "-"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_json(cls, value: object) -> "Summary":
        if not isinstance(value, dict):
            raise RecordError("summary.json is not a JSON object")
        if "status" not in value or value["status"] not in {s.value for s in Status} or value["status"] == "damaged":
            raise RecordError(f"summary.json has no valid status ({str(value.get('status'))[:20]!r})")
        checks: dict[str, Callable[[Any], bool]] = {
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
            if key in value and not checks.get(key, _is_text)(value[key]):
                raise RecordError(f"summary.json: {key} has the wrong type or value ({str(value[key])[:40]!r})")
        return cls(**{k: v for k, v in value.items() if k in known and k != "status"}, status=Status(value["status"]))


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def check_epoch_record(record: object, epoch: int) -> dict[str, Any]:
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


def parse_json(data: bytes) -> object:
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def check_text(value: object, what: str, most: int, one_line: bool) -> str:
    """A name (one line) or a note as stored and typed: text of at most `most` characters, no control
    characters but a note's line breaks; RecordError says what is wrong. Surrounding spaces are dropped."""
    if not isinstance(value, str):
        raise RecordError(f"a {what} must be text")
    text = value.strip()
    if len(text) > most:
        raise RecordError(f"a {what} has at most {most} characters, not {len(text)}")
    if printable(text, keep_newlines=not one_line) != text:
        raise RecordError(f"a {what} cannot hold control characters" + (" or line breaks" if one_line else ""))
    return text


def parse_annotations(value: object) -> Annotations:
    """tags.json's contents checked (a file of an older version holds only tags)."""
    if not isinstance(value, dict):
        raise RecordError("tags.json must hold an object")
    return Annotations(
        check_tags(value.get("tags", [])),
        check_text(value.get("name", ""), "name", MAX_NAME, one_line=True),
        check_text(value.get("note", ""), "note", MAX_NOTE, one_line=False),
    )


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
    name: str = ""  # the user's name for the run (tags.json), shown instead of its norm in labels
    note: str = ""  # the user's note (tags.json)

    @property
    def norm(self) -> str:
        return self.config.norm if self.config else "?"

    @property
    def label(self) -> str:
        """How charts and tables name a run: its name, or its norm, and the random end of its id."""
        return run_label(self.name or self.norm, self.id)

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
    def best_psnr(self) -> float | None:
        return self.metrics.get("best_psnr", self.psnr)

    @property
    def data_text(self) -> str:
        """The data the run really trained on, with its image limit: `sample`, `sample≤1024`."""
        limit = self.config.limit if self.config else None
        return self.data_source + (f"≤{limit}" if limit else "")

    def settings(self) -> dict[str, Any]:
        """What makes two runs comparable beyond norm and seed: the data really used and the recipe."""
        c = self.config
        if c is None:
            return {}
        return {"data": self.data_source, "limit": c.limit, "model": c.model, "lr": c.lr, "optimizer": c.optimizer,
                "schedule": c.schedule, "batch_size": c.batch_size, "epochs": c.epochs, "rate_lambda": c.rate_lambda,
                "image_size": c.image_size}  # fmt: skip

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
        minutes, seconds = divmod(round(self.duration_s), 60)
        return f"{minutes}m{seconds:02d}s" if minutes else f"{self.duration_s:.1f}s"
