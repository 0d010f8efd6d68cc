"""Messages that carry the engine's events from the training worker into the UI thread.

The worker's end is seen through Textual's own Worker.StateChanged."""

from textual.message import Message

from normcompress.events import Event


class TrainingEvent(Message):
    """An event of the engine (RunStarted, StepProgress, EpochEnd, RunEnded, Notice), posted from the worker."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class StudyUpdate(Message):
    """A study's queue moved on (a run reused, started, finished or failed), posted from the worker."""

    def __init__(self, progress) -> None:
        super().__init__()
        self.progress = progress
