"""StudyConfig: what a study trains, built from a training configuration and a grid over its settings.

A study is every combination of the grid's values (`norm=L1,L2 lr=1e-3,3e-3`) times its seeds, each run
otherwise the base TrainConfig: so every training option works in a study with the same defaults, and a
study of norms alone is the grid {"norm": [...]}. Read without torch (the app's study dialog, --help).
"""

import itertools
from dataclasses import dataclass, field, fields, replace
from types import UnionType
from typing import Any, get_args, get_type_hints

from .config import TrainConfig
from .errors import UsageError
from .losses import parse_norm
from .text import one_line, printable

# Settings a grid may not sweep: the seed is --seeds; the device, the data's folder, the memory layout
# and compilation do not change what a run computes (a run differing only in them is reused).
NOT_SWEPT = ("seed", "device", "data_dir", "channels_last", "compile", "cuda_graph")
GRID_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_SWEPT)
MAX_RUNS = 10_000


@dataclass
class StudyConfig:
    base: TrainConfig = field(default_factory=TrainConfig)
    grid: dict[str, list[Any]] = field(default_factory=dict)  # setting -> its values; every combination is trained
    seeds: int = 3
    devices: list[str] = field(default_factory=lambda: ["auto"])
    ray: str | None = None  # None: train here; "local": a Ray instance started here; else a cluster's address
    retries: int = 1  # on Ray: how often a run whose worker died is tried again
    cpus_per_run: int = 1  # on Ray, for runs on the CPU: the cores each run asks for (and its torch threads)
    stack: bool | None = None  # train runs that share a model and data as one stacked model; None: on one GPU only

    @classmethod
    def of_norms(
        cls,
        norms: list[str],
        seeds: int = 3,
        *,
        devices: list[str] | None = None,
        ray: str | None = None,
        retries: int = 1,
        cpus_per_run: int = 1,
        stack: bool | None = None,
        **settings: Any,
    ) -> "StudyConfig":
        """A study of norms x seeds, every other setting as given (TrainConfig's names and defaults)."""
        return cls(
            TrainConfig(**settings),
            {"norm": list(norms)},
            seeds,
            devices or ["auto"],
            ray,
            retries,
            cpus_per_run,
            stack,
        )

    @property
    def norms(self) -> list[str]:
        return list(self.grid.get("norm", [self.base.norm]))

    def validated(self) -> "StudyConfig":
        """Check the grid, the seeds, the placement and every run's configuration; canonicalise norms."""
        # The base as the grid's first run has it: a base the grid completes (the hyperprior with its rate
        # λ only in --grid rate_lambda=...) is not refused for what the grid gives it.
        replace(self.base, **{k: v[0] for k, v in self.grid.items() if k in GRID_KEYS and v}).validated()
        for key, values in self.grid.items():
            if key not in GRID_KEYS:
                why = (
                    "--seeds sets the seeds"
                    if key == "seed"
                    else "it does not change what a run computes"
                    if key in NOT_SWEPT
                    else f"choose from: {', '.join(GRID_KEYS)}"
                )
                raise UsageError(f"a study cannot sweep {one_line(key)!r}: {why}")
            if not values:
                raise UsageError(f"the study's {key} needs at least one value")
            if key == "norm":
                self.grid[key] = values = [parse_norm(n).name for n in values]
            if len({str(v) for v in values}) != len(values):
                raise UsageError(f"the study lists a {key} twice")
        if self.seeds < 1:
            raise UsageError("--seeds must be at least 1")
        if self.runs_count() > MAX_RUNS:
            raise UsageError(f"the study has {self.runs_count():,} runs; at most {MAX_RUNS:,}")
        if self.ray is not None and len(self.devices) > 1:
            raise UsageError(
                "--devices lists several devices, but on Ray the cluster places each run: "
                "give one device kind (auto, cpu or cuda)"
            )
        if self.stack and (self.ray is not None or len(self.devices) > 1):
            raise UsageError("--stack trains its runs together on one device: give one --devices and no --ray")
        if self.retries < 0 or self.cpus_per_run < 1:
            raise UsageError("--retries must be at least 0 and --ray-cpus at least 1")
        if self.ray is not None:
            check_address(self.ray)  # its form, with the other options (no Ray import, no connection)
        for config in self.run_configs():
            config.validated()
        return self

    def runs_count(self) -> int:
        count = self.seeds
        for values in self.grid.values():
            count *= len(values)
        return count

    def combinations(self) -> list[dict[str, Any]]:
        """Each grid point as {setting: value}, in the grid's order (the first key varies slowest)."""
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=False)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def run_configs(self) -> list[TrainConfig]:
        """Every run of the study: each grid point x each seed, on the first device."""
        return [
            replace(self.base, **point, seed=seed, device=self.devices[0])
            for point in self.combinations()
            for seed in range(self.seeds)
        ]

    def label(self, config: TrainConfig) -> str:
        """How a study names one of its runs: its norm, the other swept settings, its seed (L1 lr=0.001 seed 2)."""
        swept = [f"{key}={getattr(config, key)}" for key in self.grid if key != "norm"]
        return " ".join([config.norm, *swept, f"seed {config.seed}"])


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`norm=L1,L2 lr=1e-3,3e-3` as typed, each value of its setting's type: {"norm": [...], "lr": [...]}."""
    hints = get_type_hints(TrainConfig)
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise UsageError(f"--grid takes SETTING=VALUE,VALUE..., not {one_line(item)[:60]!r}")
        if key not in hints:
            raise UsageError(
                f"--grid: {one_line(key)!r} is not a training setting; choose from: {', '.join(GRID_KEYS)}"
            )
        if key in grid:
            raise UsageError(f"--grid names {key} twice")
        grid[key] = [_value(key, hints[key], part.strip()) for part in text.split(",") if part.strip()]
    return grid


_KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _value(key: str, hint: Any, text: str) -> Any:
    """One grid value in its setting's type (an int, a float, a bool, None or text)."""
    kinds = list(get_args(hint)) if isinstance(hint, UnionType) else [hint]
    if type(None) in kinds and text.lower() in ("none", "all", "-"):
        return None
    for kind in kinds:
        try:
            if kind is bool:
                if text.lower() in ("true", "yes", "on", "false", "no", "off"):
                    return text.lower() in ("true", "yes", "on")
            elif kind in (int, float, str):
                return kind(text)
        except ValueError:
            continue
    names = " or ".join(_KIND_WORDS.get(k, k.__name__) for k in kinds if k is not type(None))
    none = " (or none)" if type(None) in kinds else ""
    raise UsageError(f"--grid {key}: {one_line(text)[:40]!r} is not {names}{none}")


def check_address(address: str) -> tuple[str, int] | None:
    """The host and port of a --ray address (None for local and auto), or UsageError: checked with the
    other options, before anything loads."""
    if address in ("local", "auto"):
        return None
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--ray {printable(address, keep_newlines=False)!r} is not an address: give HOST:PORT, "
            "ray://HOST:PORT, auto (the cluster `ray start` began here), or nothing (a local instance)"
        )
    return host.strip("[]"), int(port)
