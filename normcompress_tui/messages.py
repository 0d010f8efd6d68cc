"""Messages that carry the engine's events and the outcome of a training worker into the UI thread."""

from textual.message import Message

from normcompress.events import Event


class TrainingEvent(Message):
    """An event of the engine (RunStarted, StepProgress, EpochEnd, RunEnded, Notice), posted from the worker."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class TrainingError(Message):
    """The worker stopped on an error; `message` is one line for a notification."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class TrainingStopped(Message):
    """The worker has returned (completed, stopped, or failed): the UI may start another run."""
