"""The run's settings: norm (registered or custom, validated as you type), epochs, batch, lr, data, device."""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Static

from normcompress.devices import device_options
from normcompress.errors import UsageError
from normcompress.losses import norm_names, parse_norm
from normcompress.config import TrainConfig

DATASET_CHOICES = [("cifar10", "cifar10"), ("sample", "sample"), ("synthetic", "synthetic"), ("folder…", "folder")]


class NormValidator(Validator):
    def validate(self, value: str) -> ValidationResult:
        if not value.strip():
            return self.success()
        try:
            parse_norm(value)
        except UsageError as exc:
            return self.failure(str(exc))
        return self.success()


class Controls(Vertical):
    """Rows of compact fields (label, field[, label, field]), then Start and Stop."""

    BORDER_TITLE = "Run"

    def __init__(self, config: TrainConfig | None = None) -> None:
        super().__init__(id="controls")
        self.defaults = config or TrainConfig()

    def compose(self) -> ComposeResult:
        d = self.defaults
        options = device_options()
        with Horizontal(classes="row"):
            yield Label("Norm")
            yield Select([(n, n) for n in norm_names()], value="L2", allow_blank=False, id="norm", compact=True)
        with Horizontal(classes="row"):
            yield Label("Custom")
            yield Input(placeholder="Lp:3 or 0.5*L1+0.5*L2", id="custom-norm", compact=True,
                        validators=[NormValidator()], valid_empty=True)
        yield Static("", id="norm-status", classes="note")
        with Horizontal(classes="row"):
            yield Label("Epochs")
            yield Input(str(d.epochs), type="integer", id="epochs", compact=True)
            yield Label("Batch", classes="second")
            yield Input(str(d.batch_size), type="integer", id="batch-size", compact=True)
        with Horizontal(classes="row"):
            yield Label("LR")
            yield Input(f"{d.lr:g}", type="number", id="lr", compact=True)
            yield Label("Seed", classes="second")
            yield Input(str(d.seed), type="integer", id="seed", compact=True)
        with Horizontal(classes="row"):
            yield Label("Data")
            yield Select(DATASET_CHOICES, value=d.dataset if d.dataset in dict(DATASET_CHOICES).values() else "cifar10",
                         allow_blank=False, id="dataset", compact=True)
        with Horizontal(classes="row", id="folder-row"):
            yield Label("Folder")
            yield Input(placeholder="path to a folder of images", id="folder", compact=True)
        with Horizontal(classes="row"):
            yield Label("Device")
            yield Select([("auto", "auto")] + [(o.label, o.key) for o in options if o.available], value="auto",
                         allow_blank=False, id="device", compact=True)
        unavailable = [o for o in options if not o.available]
        yield Static("\n".join(f"{o.label}: {o.reason}" for o in unavailable), id="device-note", classes="note")
        with Horizontal(id="buttons"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)

    def on_mount(self) -> None:
        self._show_folder(False)
        self.query_one("#device-note").display = bool(self.query_one("#device-note", Static).content)
        self.query_one("#norm-status").display = False

    def _show_folder(self, show: bool) -> None:
        self.query_one("#folder-row").display = show

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset":
            self._show_folder(event.value == "folder")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "custom-norm":
            return
        status = self.query_one("#norm-status", Static)
        status.display = bool(event.value.strip())
        if not event.value.strip():
            status.update("")
        elif event.validation_result and not event.validation_result.is_valid:
            status.update(f"[red]✗ {event.validation_result.failure_descriptions[0]}[/]")
        else:
            status.update(f"[green]✓ {parse_norm(event.value).name}[/]")

    def config(self) -> TrainConfig:
        """The configuration the fields describe; raises UsageError naming the first bad field."""
        custom = self.query_one("#custom-norm", Input).value.strip()
        dataset = self.query_one("#dataset", Select).value
        if dataset == "folder":
            folder = self.query_one("#folder", Input).value.strip()
            if not folder:
                raise UsageError("type the path of an image folder, or choose another dataset")
            dataset = f"folder:{folder}"
        return TrainConfig(
            norm=custom or str(self.query_one("#norm", Select).value),
            epochs=self._number("epochs", int),
            batch_size=self._number("batch-size", int),
            lr=self._number("lr", float),
            seed=self._number("seed", int),
            dataset=str(dataset),
            device=str(self.query_one("#device", Select).value),
        ).validated()

    def _number(self, field: str, kind: type):
        text = self.query_one(f"#{field}", Input).value
        try:
            return kind(text)
        except ValueError:
            raise UsageError(f"{field.replace('-', ' ')}: {text!r} is not a number") from None

    def set_running(self, running: bool) -> None:
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
