"""The app's modal screens, one module each: a run's details, two runs side by side, a question, a prompt, the study dialog, help."""

from .confirm import ConfirmScreen
from .details import DetailsScreen
from .diff import DiffScreen
from .help import HelpScreen
from .prompt import PromptScreen
from .study import StudyScreen

__all__ = ["ConfirmScreen", "DetailsScreen", "DiffScreen", "HelpScreen", "PromptScreen", "StudyScreen"]
