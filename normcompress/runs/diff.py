"""Two runs side by side: every setting, fact and final metric, the keys that differ first (`runs diff`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..config import TrainConfig
from ..metrics import ALL_METRICS
from .records import RunInfo


@dataclass(frozen=True)
class DiffRow:
    key: str
    values: tuple[str, str]

    @property
    def differs(self) -> bool:
        return self.values[0] != self.values[1]


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _facts(info: RunInfo) -> dict[str, str]:
    """Everything a diff compares of one run, as text, in a fixed order: what it is, its settings, how it
    went, its final metrics, what made it."""
    config = info.config
    summary = info.summary
    facts = {"name": info.name or "-", "status": str(info.status), "data": info.data_source}
    facts |= {"tags": " ".join(info.tags) or "-", "note": info.note or "-"}
    facts |= {f.name: _text(getattr(config, f.name)) if config else "-" for f in fields(TrainConfig)}
    facts |= {
        "epochs_done": _text(info.epochs_done),
        "duration_s": _text(info.duration_s),
        "device": (summary.device if summary else "") or "-",
        "train_images": _text(summary.train_images if summary else None),
        "val_images": _text(summary.val_images if summary else None),
    }
    metrics = info.metrics
    facts |= {key: _text(metrics.get(key)) for key in ALL_METRICS if key in metrics}
    facts["best_psnr"] = _text(info.best_psnr)
    for name, version in (summary.versions if summary else {}).items():
        facts[f"version {name}"] = version
    if info.problem:
        facts["problem"] = info.problem
    return facts


def diff_runs(a: RunInfo, b: RunInfo) -> list[DiffRow]:
    """Every key either run has, the differing ones first, each group in the facts' own order."""
    first, second = _facts(a), _facts(b)
    keys = list(first) + [k for k in second if k not in first]
    rows = [DiffRow(k, (first.get(k, "-"), second.get(k, "-"))) for k in keys]
    return [r for r in rows if r.differs] + [r for r in rows if not r.differs]
