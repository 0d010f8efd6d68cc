"""Which runs a filter keeps: words, and comparisons of settings and metrics (`psnr>25 lr<0.01 model=seed`).

One grammar for `runs list --where` and the app's `/` filter, documented in docs/looking-at-runs.md:

- a filter is terms separated by spaces; a run is kept when it holds every term;
- `KEY OP VALUE`, with OP one of `>=  <=  !=  =  ==  >  <`, compares a setting (any training setting:
  `lr`, `model`, `norm`, `seed`, `epochs`, `batch_size`, `limit`, `rate_lambda`...; `data`, the data really
  used) or a final metric (`psnr`, `best_psnr`, `mse`, `ssim`, `bpp`...; `epochs_done`, `duration_s`) or
  `status` or `tag`; numbers compare as numbers, words only with `=` and `!=` (case-insensitive);
  a run without the value (a metric it never had, a damaged run) fails the term;
- any other word must appear in the run's id, norm, status, tags, data or settings (case-insensitive).

A term that cannot be read is a UsageError naming it and what is expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from ..config import TrainConfig
from ..errors import UsageError
from ..metrics import ALL_METRICS
from .records import RunInfo

OPERATORS = (">=", "<=", "!=", "==", ">", "<", "=")  # longest first, so `>=` is not read as `>`
TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|==|>|<|=)(.*)$")
FACTS = ("data", "status", "tag", "epochs_done", "duration_s", "best_psnr")
KEYS = tuple(sorted({f.name for f in fields(TrainConfig)} | set(ALL_METRICS) | set(FACTS)))
# What runs can be grouped by in the app's chart: what they were asked to be, not how they came out.
GROUP_KEYS = ("norm", "seed", "data", "tag", *(f.name for f in fields(TrainConfig) if f.name not in ("norm", "seed")))


@dataclass(frozen=True)
class Comparison:
    key: str
    operator: str
    value: float | str

    def holds(self, info: RunInfo) -> bool:
        if self.key == "tag":
            inside = str(self.value).lower() in (t.lower() for t in info.tags)
            return inside if self.operator in ("=", "==") else not inside
        have = value_of(info, self.key)
        if have is None:
            return False
        if isinstance(self.value, str):
            same = str(have).lower() == self.value.lower()
            return same if self.operator in ("=", "==") else not same
        if isinstance(have, bool) or not isinstance(have, int | float):
            return False  # a word compared with a number (model>3): no run holds it
        match self.operator:
            case ">":
                return have > self.value
            case "<":
                return have < self.value
            case ">=":
                return have >= self.value
            case "<=":
                return have <= self.value
        same = math.isclose(have, self.value, rel_tol=1e-9, abs_tol=0.0)
        return same if self.operator in ("=", "==") else not same


def value_of(info: RunInfo, key: str) -> object:
    """A run's value for a filter key, or None when it has none."""
    if key in ALL_METRICS or key == "best_psnr":
        return info.metrics.get(key) if key != "best_psnr" else info.best_psnr
    match key:
        case "data":
            return info.data_source
        case "status":
            return str(info.status)
        case "epochs_done":
            return info.epochs_done if info.summary else None
        case "duration_s":
            return info.duration_s
    return getattr(info.config, key, None) if info.config else None


@dataclass(frozen=True)
class RunFilter:
    comparisons: tuple[Comparison, ...]
    words: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        comparisons, words = [], []
        for term in text.split():
            if not any(op in term for op in OPERATORS):
                words.append(term.lower())
                continue
            comparisons.append(_comparison(term))
        return cls(tuple(comparisons), tuple(words))

    def matches(self, info: RunInfo) -> bool:
        if not all(c.holds(info) for c in self.comparisons):
            return False
        if not self.words:  # the common case, every few seconds while a run trains: no text to build
            return True
        text = search_text(info)
        return all(word in text for word in self.words)


def _comparison(term: str) -> Comparison:
    found = TERM.match(term)
    if found is None or found.group(3)[:1] in ("<", ">", "=", "!"):
        raise UsageError(f"cannot read the filter term {term!r}: write KEY OP VALUE, e.g. psnr>25 or model=seed")
    key, operator, raw = found.groups()
    key = key.lower()
    if key not in KEYS:
        raise UsageError(f"unknown key {key!r} in the filter term {term!r}; keys: {', '.join(KEYS)}")
    if not raw:
        raise UsageError(f"the filter term {term!r} has no value after {operator}")
    try:
        value: float | str = float(raw)
    except ValueError:
        value = raw
    if isinstance(value, float) and not math.isfinite(value):
        value = raw  # "nan" and "inf" are words here: no setting is NaN
    if isinstance(value, str) and operator not in ("=", "==", "!="):
        raise UsageError(f"the filter term {term!r} compares with {operator}, which needs a finite number")
    return Comparison(key, operator, value)


def check_key(key: str) -> str:
    """A key a filter or a grouping takes, in lower case; UsageError naming the keys otherwise."""
    if key.lower() not in KEYS:
        raise UsageError(f"unknown key {key!r}; keys: {', '.join(KEYS)}")
    return key.lower()


def group_of(info: RunInfo, key: str) -> str:
    """The group a run falls in when runs are grouped by `key`: `norm=L1`, `lr=0.003`."""
    value = value_of(info, key) if key != "tag" else " ".join(info.tags)
    return f"{key}={'-' if value is None else (format(value, 'g') if isinstance(value, float) else value)}"


def groups_of(info: RunInfo) -> dict[str, str]:
    """A run's group under each key of GROUP_KEYS (what the app's chart groups overlays by)."""
    return {key: group_of(info, key) for key in GROUP_KEYS}


def search_text(info: RunInfo) -> str:
    """What a filter's words search: the id, norm, status, tags, data and every setting, in lower case."""
    # fields(), not asdict(): asdict deep-copies every value, and this runs for every run of the store
    settings = " ".join(f"{f.name}={getattr(info.config, f.name)}" for f in fields(info.config)) if info.config else ""
    return " ".join([info.id, info.norm, str(info.status), *info.tags, info.data_source, settings]).lower()


def sorted_runs(infos: list[RunInfo], order: str) -> list[RunInfo]:
    """The runs ordered by a filter key (`psnr`; `-psnr` for the largest first), numbers as numbers and
    words without case; runs without the value (a metric they never had, a damaged run) last either way,
    ties in the order given. A key a filter does not take is a UsageError naming the keys."""
    key = check_key(order.removeprefix("-"))
    numbers: list[tuple[float, RunInfo]] = []
    words: list[tuple[str, RunInfo]] = []
    missing: list[RunInfo] = []
    for info in infos:
        value = (" ".join(info.tags) or None) if key == "tag" else value_of(info, key)
        if value is None:
            missing.append(info)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers.append((float(value), info))
        else:
            words.append((str(value).lower(), info))
    descending = order.startswith("-")
    numbers.sort(key=lambda pair: pair[0], reverse=descending)
    words.sort(key=lambda pair: pair[0], reverse=descending)
    return [i for _, i in numbers] + [i for _, i in words] + missing
