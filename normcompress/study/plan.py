"""Which runs a study still has to train: the store searched for each run's configuration, and how a
study tells its progress (one StudyProgress per change, built here)."""

from dataclasses import asdict, dataclass, field

from ..config import TrainConfig
from ..events import StudyProgress
from ..runs import Run, RunStore

# Fields that do not change what a run computes (beyond float rounding: the device, the memory
# layout, compilation), so a run that differs only in them is reused.
IGNORED_FOR_REUSE = ("device", "data_dir", "channels_last", "compile")


def _reuse_key(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in IGNORED_FOR_REUSE}


def find_run(store: RunStore, config: TrainConfig, statuses: tuple[str, ...]) -> Run | None:
    """The newest run in the store with this configuration and one of these statuses."""
    wanted = _reuse_key(asdict(config))
    for run in reversed(store.runs()):
        info = run.info()
        if info.status in statuses and info.config and _reuse_key(asdict(info.config)) == wanted:
            return run
    return None


@dataclass
class Pending:
    """A run the study has yet to train: its place in the study, its configuration and label, and the
    interrupted run of that configuration to resume, if there is one."""

    index: int
    config: TrainConfig
    label: str
    interrupted: Run | None = None


@dataclass
class Progress:
    """What a study has done so far, and the one way its StudyProgress messages are made."""

    total: int
    report: object  # Callable[[StudyProgress], None]
    results: dict[int, Run] = field(default_factory=dict)

    def __call__(
        self,
        label: str,
        state: str,
        message: str = "",
        epoch: int = 0,
        epochs: int = 0,
        where: str = "",
        run_id: str = "",
    ) -> None:
        self.report(StudyProgress(len(self.results), self.total, label, state, message, epoch, epochs, where, run_id))

    def done(self, index: int, run: Run, label: str) -> None:
        self.results[index] = run
        self(label, "finished", run_id=run.id)
