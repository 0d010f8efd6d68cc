"""The engine -> UI contract: what training reports while it runs.

Drivers (the CLI, the app, a study) receive these through `on_event`; nothing here knows of a UI.
"""

from dataclasses import dataclass, field
from typing import Any

from .config import TrainConfig


@dataclass
class Notice:
    message: str


@dataclass
class RunStarted:
    run_id: str
    config: TrainConfig
    device: str
    data_source: str
    train_images: int
    val_images: int
    start_epoch: int  # epochs already done (a resumed run starts past 0)


@dataclass
class StepProgress:
    epoch: int  # 1-based, the epoch under way
    epochs: int
    step: int
    steps: int
    loss: float  # running mean of this epoch's training loss
    images_per_s: float
    step_losses: list[float] = field(default_factory=list)  # each step's loss since the last StepProgress
    run_id: str = ""  # which run: the runs of a stack report in turn


@dataclass
class EpochEnd:
    epoch: int
    epochs: int
    record: dict[str, Any]  # the metrics.jsonl line: epoch, loss, validation metrics, time
    run_id: str = ""


@dataclass
class RunEnded:
    run_id: str
    status: str  # completed | interrupted | failed
    message: str


@dataclass
class StudyProgress:
    """A study's queue moved on: a run reused, started, at an epoch (on Ray), finished or failed."""

    done: int
    total: int
    label: str  # the run just started or finished, e.g. "L1 seed 2"
    state: str  # reused | training | resuming | epoch | retrying | finished | failed | ended (message: how)
    message: str = ""  # why a run failed
    epoch: int = 0  # on Ray: the epoch the run has finished (state "epoch"), of epochs
    epochs: int = 0
    where: str = ""  # on Ray: the node and process training the run
    run_id: str = ""  # the run reused or finished


Event = Notice | RunStarted | StepProgress | EpochEnd | RunEnded
