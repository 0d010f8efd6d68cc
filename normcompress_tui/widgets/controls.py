"""The run's settings: norm (registered or custom), epochs, batch, lr, seed, data, device, and under
"More settings" the model, optimizer, schedule, image limit, crop size and rate λ: every setting of a
training run, each checked as it is typed and named as the form names it, then by the one TrainConfig."""

import math

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Collapsible, Input, Label, Select, Static

from normcompress import probe
from normcompress.config import (
    DEFAULTS,
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_RATE_LAMBDA,
    MAX_SEED,
    MODEL_DESCRIPTIONS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)
from normcompress.devices import DeviceOption
from normcompress.errors import UsageError
from normcompress.losses import norm_names, parse_norm
from normcompress.text import printable

from ..words import in_form_words

DATASET_CHOICES = [("cifar10", "cifar10"), ("sample", "sample"), ("synthetic", "synthetic"), ("folder…", "folder")]


NUMBER_FIELDS = {  # field id: (its label, the type typed, lowest, highest)
    "epochs": ("Epochs", int, 1, MAX_EPOCHS),
    "batch-size": ("Batch", int, 1, MAX_BATCH),
    "lr": ("LR", float, 0.0, math.inf),  # above 0
    "seed": ("Seed", int, 0, MAX_SEED),
    "limit": ("Limit", int, 1, 10**9),  # empty: every training image
    "image-size": ("Size", int, 28, 1024),
    "rate-lambda": ("Rate λ", float, 0.0, MAX_RATE_LAMBDA),  # 0 allowed: no rate term
}
MAIN_NUMBERS = ("epochs", "batch-size", "lr", "seed")
MORE_NUMBERS = ("limit", "image-size", "rate-lambda")
EMPTY_MEANS_NONE = {"limit"}
ABOVE_LOW = {"lr"}  # must be above its lowest value, not equal to it
FORM_FIELDS = (
    "norm", "custom-norm", "epochs", "batch-size", "lr", "seed", "dataset", "folder", "device",
    "model", "optimizer", "schedule", "limit", "image-size", "rate-lambda",
)  # fmt: skip


def number_problem(field: str, text: str) -> str | None:
    """Why the text of a number field cannot be used, in the form's words; None when it can."""
    label, kind, low, high = NUMBER_FIELDS[field]
    if field in EMPTY_MEANS_NONE and not text.strip():
        return None
    try:
        value = kind(text)
    except ValueError:
        return f"{label}: {text.strip()!r} is not {'a whole number' if kind is int else 'a number'}"
    if field in ABOVE_LOW and not (low < value < high):
        return f"{label} must be a positive number"
    if kind is float and not math.isfinite(value):
        return f"{label} must be a finite number"
    if not low <= value <= high:
        return f"{label} must be between {low:,} and {high:,}"
    return None


class NumberValidator(Validator):
    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        problem = number_problem(self.field, value)
        return self.failure(problem) if problem else self.success()


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

    def __init__(self) -> None:
        super().__init__(id="controls")
        self.defaults = DEFAULTS
        self.devices_known = False  # the device list is filled in by a worker once torch has loaded
        self.cuda_available = False  # what `auto` means: whether the probe found a CUDA device
        self.device_keys = {"auto", "cpu"}  # what the Device select offers: auto, cpu, the CUDA devices here
        self._saved_device: str | None = None  # a restored choice waiting for its option to exist

    def compose(self) -> ComposeResult:
        d = self.defaults
        with Horizontal(classes="row"):
            yield Label("Norm")
            yield Select([(n, n) for n in norm_names()], value="L2", allow_blank=False, id="norm", compact=True)
        with Horizontal(classes="row"):
            yield Label("Custom")
            yield Input(
                placeholder="Lp:3 or 0.5*L1+0.5*L2",
                id="custom-norm",
                compact=True,
                validators=[NormValidator()],
                valid_empty=True,
            )
        yield Static("", id="norm-status", classes="note")
        with Horizontal(classes="row"):
            yield Label("Epochs")
            yield self._number_input(str(d.epochs), "epochs")
            yield Label("Batch", classes="second")
            yield self._number_input(str(d.batch_size), "batch-size")
        with Horizontal(classes="row"):
            yield Label("LR")
            yield self._number_input(f"{d.lr:g}", "lr")
            yield Label("Seed", classes="second")
            yield self._number_input(str(d.seed), "seed")
        yield Static("", id="form-status", classes="note")
        with Horizontal(classes="row"):
            yield Label("Data")
            yield Select(
                DATASET_CHOICES,
                value=d.dataset if d.dataset in dict(DATASET_CHOICES).values() else "cifar10",
                allow_blank=False,
                id="dataset",
                compact=True,
            )
        with Horizontal(classes="row", id="folder-row"):
            yield Label("Folder")
            yield Input(placeholder="path to a folder of images", id="folder", compact=True)
        with Horizontal(classes="row"):
            yield Label("Device")
            yield Select([("auto", "auto"), ("CPU", "cpu")], value="auto", allow_blank=False, id="device", compact=True)
        yield from self._more_settings()
        with Horizontal(id="buttons"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
        # Under the buttons: the note arrives a second after launch (torch is asked in a worker) and
        # must not move Start from under the pointer.
        yield Static("looking for CUDA devices…", id="device-note", classes="note")

    def _more_settings(self) -> ComposeResult:
        """Under "More settings", collapsed at first: the rest of a training run's settings."""
        d = self.defaults
        with Collapsible(title="More settings", id="more", collapsed=True):
            with Horizontal(classes="row"):
                yield Label("Model")
                yield Select(
                    [(f"{name}: {text}", name) for name, text in MODEL_DESCRIPTIONS.items()],
                    value=d.model,
                    allow_blank=False,
                    id="model",
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label("Optim")
                yield Select([(o, o) for o in OPTIMIZERS], value=d.optimizer, allow_blank=False, id="optimizer",
                             compact=True)  # fmt: skip
                yield Label("Sched", classes="second")
                yield Select([(o, o) for o in SCHEDULES], value=d.schedule, allow_blank=False, id="schedule",
                             compact=True)  # fmt: skip
            with Horizontal(classes="row"):
                yield Label("Limit")
                limit = self._number_input("" if d.limit is None else str(d.limit), "limit")
                limit.placeholder = "all"
                yield limit
                yield Label("Size", classes="second")
                yield self._number_input(str(d.image_size), "image-size")
            with Horizontal(classes="row"):
                yield Label("Rate λ")
                yield self._number_input(f"{d.rate_lambda:g}", "rate-lambda")
            yield Static("", id="more-status", classes="note")

    @staticmethod
    def _number_input(value: str, field: str) -> Input:
        kind = NUMBER_FIELDS[field][1]
        return Input(
            value,
            type="integer" if kind is int else "number",
            id=field,
            compact=True,
            validators=[NumberValidator(field)],
        )

    def on_mount(self) -> None:
        self._show_folder(False)
        self.probe_devices()
        self.query_one("#norm-status").display = False
        self.query_one("#form-status").display = False
        self.query_one("#more-status").display = False

    @work(thread=True, exit_on_error=False, group="devices")
    def probe_devices(self) -> None:
        """Ask torch which devices there are, in a child process and off the UI thread: importing torch
        takes a second or more, the first screen does not wait for it, and the app never loads torch."""
        options = probe.device_options()
        self.app.call_from_thread(self.set_device_options, options)

    def set_device_options(self, options: list[DeviceOption]) -> None:
        select = self.query_one("#device", Select)
        chosen = select.value
        keys = ["auto"] + [o.key for o in options if o.available]
        select.set_options(
            [("auto", "auto")] + [(printable(o.label, keep_newlines=False), o.key) for o in options if o.available]
        )
        wanted = self._saved_device or chosen
        select.value = wanted if wanted in keys else "auto"
        unavailable = [o for o in options if not o.available]
        note = self.query_one("#device-note", Static)
        note.update(Text("\n".join(printable(f"{o.label}: {o.reason}", keep_newlines=False) for o in unavailable)))
        note.display = bool(unavailable)
        self.cuda_available = any(o.key.startswith("cuda") and o.available for o in options)
        self.device_keys, self.devices_known = set(keys), True

    def device_to_resume_on(self, own: str) -> str | None:
        """Where a run that trained on `own` goes on: None (on its own device) where this machine has it or
        the probe has not answered yet; otherwise the Device chosen here, as `--device` beside `--resume`."""
        if not self.devices_known or own in self.device_keys or (own == "cuda" and self.cuda_available):
            return None
        return str(self.query_one("#device", Select).value)

    def _show_folder(self, show: bool) -> None:
        self.query_one("#folder-row").display = show

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset":
            self._show_folder(event.value == "folder")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in NUMBER_FIELDS:
            self._show_number_problems()
        if event.input.id != "custom-norm":
            return
        status = self.query_one("#norm-status", Static)
        status.display = bool(event.value.strip())
        valid = bool(event.value.strip()) and not (event.validation_result and not event.validation_result.is_valid)
        self.query_one("#norm", Select).disabled = valid  # a valid custom norm is what trains, not the list's
        if not event.value.strip():
            status.update("")
        elif not valid:
            status.update(Text(printable(f"✗ {event.validation_result.failure_descriptions[0]}"), style="red"))
        else:
            status.update(
                Text(printable(f"✓ {parse_norm(event.value).name} (trains instead of the Norm list)"), style="green")
            )

    def _show_number_problems(self) -> None:
        for note_id, group in (("#form-status", MAIN_NUMBERS), ("#more-status", MORE_NUMBERS)):
            problems = [p for f in group if (p := number_problem(f, self.query_one(f"#{f}", Input).value))]
            note = self.query_one(note_id, Static)
            note.display = bool(problems)
            note.update(Text(printable("✗ " + "; ".join(problems)), style="red") if problems else "")

    def form_state(self) -> dict[str, str]:
        """Every field's value as typed, to be restored at the next launch."""
        return {f: str(self.query_one(f"#{f}").value) for f in FORM_FIELDS}

    def restore(self, state: dict) -> list[str]:
        """Put saved values back where they still fit (a choice still offered, text of a sane length);
        return the fields left as they were."""
        skipped = []
        for field in FORM_FIELDS:
            value = state.get(field)
            widget = self.query_one(f"#{field}")
            if not isinstance(value, str) or len(value) > 1000:
                skipped += [field] if field in state else []
                continue
            if isinstance(widget, Select):
                if field == "device" and not self.devices_known:
                    self._saved_device = value  # chosen once the devices are known (a CUDA device may be)
                    continue
                if value not in {str(v) for _, v in widget._options}:
                    skipped.append(field)
                    continue
            widget.value = value
        return skipped

    def config(self, with_norm: bool = True) -> TrainConfig:
        """The configuration the fields describe; raises UsageError naming the first bad field. Without
        the norm (a study's base: the study names its own), the Custom field is not read."""
        custom = self.query_one("#custom-norm", Input).value.strip() if with_norm else ""
        dataset = self.query_one("#dataset", Select).value
        if dataset == "folder":
            folder = self.query_one("#folder", Input).value.strip()
            if not folder:
                raise UsageError("type the path of an image folder, or choose another dataset")
            dataset = f"folder:{folder}"
        try:
            return self._config(custom, str(dataset))
        except UsageError as exc:
            raise UsageError(in_form_words(str(exc))) from None

    def _config(self, custom: str, dataset: str) -> TrainConfig:
        return TrainConfig(
            norm=custom or str(self.query_one("#norm", Select).value),
            epochs=self._number("epochs", int),
            batch_size=self._number("batch-size", int),
            lr=self._number("lr", float),
            seed=self._number("seed", int),
            dataset=dataset,
            device=str(self.query_one("#device", Select).value),
            model=str(self.query_one("#model", Select).value),
            optimizer=str(self.query_one("#optimizer", Select).value),
            schedule=str(self.query_one("#schedule", Select).value),
            limit=self._number("limit", int),
            image_size=self._number("image-size", int),
            rate_lambda=self._number("rate-lambda", float),
        ).validated()

    def _number(self, field: str, kind: type):
        text = self.query_one(f"#{field}", Input).value
        if problem := number_problem(field, text):
            raise UsageError(problem)
        return None if field in EMPTY_MEANS_NONE and not text.strip() else kind(text)

    def set_running(self, running: bool) -> None:
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
