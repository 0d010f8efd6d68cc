"""The runs pane: the runs table with its filter above it, and what a user does to a run there (filter,
tag, name, open, diff, delete). What the rest of the screen must know comes out as messages."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from normcompress import api
from normcompress.errors import NormcompressError
from normcompress.runs import MAX_NAME, MAX_NOTE, Run, RunInfo, RunStore

from ..screens import ConfirmScreen, DetailsScreen, DiffScreen, PromptScreen
from .runs_table import RunsTable


class RunsPane(Vertical):
    class StoreChanged(Message):
        """A run was tagged or removed here: list the store again."""

        def __init__(self, removed: str | None = None) -> None:
            super().__init__()
            self.removed = removed  # the id of a run removed, to take off the chart

    def __init__(self, store: RunStore) -> None:
        super().__init__(id="runs-pane")
        self.store = store

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter: words of an id, norm, tag or setting (escape clears)", id="filter", compact=True
        )
        yield RunsTable()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    # -- the filter ---------------------------------------------------------------------------------
    def open_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.table.set_query(event.value)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self) -> None:
        self.table.focus()  # the filter stays; `/` again edits it

    def clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self.table.set_query("")
        self.table.focus()

    # -- a run: its tags, its details, deleting it ----------------------------------------------------
    def _highlighted(self) -> tuple[RunInfo, Run] | None:
        """The highlighted run's info and the run itself; None when there is none (said, if it has gone)."""
        info = self.table.highlighted_info()
        if info is None:
            return None
        try:
            return info, self.store.get(info.id)
        except NormcompressError as exc:
            self.app.notify(str(exc), severity="error")
            return None

    def edit_tags(self) -> None:
        if (chosen := self._highlighted()) is None:
            return
        info, run = chosen
        try:
            shown = run.tags()
        except NormcompressError as exc:  # saving replaces the damaged file
            self.app.notify(f"{exc}; saving replaces them", severity="warning")
            shown = None

        def answered(text: str | None) -> None:
            if text is not None:
                self._save_tags(run, shown, text.split())

        self.app.push_screen(
            PromptScreen(f"Tags of {info.id}", " ".join(shown or ()), "words separated by spaces"), answered
        )

    def edit_annotation(self, what: str) -> None:
        """n and N: the highlighted run's name or note in a prompt; Enter saves it (empty removes it)."""
        if (chosen := self._highlighted()) is None:
            return
        info, run = chosen
        most = MAX_NAME if what == "name" else MAX_NOTE

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                annotations, _ = api.annotate_run(run, **{what: text})
            except NormcompressError as exc:
                self.app.notify(str(exc), title=f"The {what} is not saved", severity="error")
                return
            kept = getattr(annotations, what)
            self.app.notify(f"{run.id}: {kept or f'no {what}'}", title=f"{what.capitalize()} saved")
            self.post_message(self.StoreChanged())

        self.app.push_screen(
            PromptScreen(
                f"The {what} of {info.id}", getattr(info, what), f"at most {most} characters; empty removes it"
            ),
            answered,
        )

    def _save_tags(self, run: Run, shown: tuple[str, ...] | None, typed: list[str]) -> None:
        """What was added and removed in the prompt, applied to the tags as they are now: a tag added from
        the shell while the prompt was open is kept (a damaged file is replaced by what was typed)."""
        try:
            if shown is None:
                tags, _ = api.tag_run(run, replace=typed)
            else:
                tags, _ = api.tag_run(
                    run, add=[t for t in typed if t not in shown], remove=[t for t in shown if t not in typed]
                )
        except NormcompressError as exc:
            self.app.notify(str(exc), title="Tags not saved", severity="error")
            return
        self.app.notify(f"{run.id}: {' '.join(tags) or 'no tags'}", title="Tags saved")
        self.post_message(self.StoreChanged())

    @on(RunsTable.DiffRequested)
    def open_diff(self, message: RunsTable.DiffRequested) -> None:
        self.app.push_screen(DiffScreen(message.a, message.b, api.diff_runs(message.a, message.b)))

    @on(RunsTable.DetailsRequested)
    def open_details(self, message: RunsTable.DetailsRequested) -> None:
        try:
            run = self.store.get(message.info.id)
        except NormcompressError as exc:  # removed (or damaged) since the table was drawn
            self.app.notify(str(exc), severity="error")
            return
        self.app.push_screen(DetailsScreen(run))

    @on(RunsTable.DeleteRequested)
    def delete_run(self, message: RunsTable.DeleteRequested) -> None:
        info = message.info
        if info.status == "running" or Run(info.path).is_live():  # trained here, by the CLI or another app
            self.app.notify(f"{info.id} is being trained: stop it first (x)", severity="warning")
            return  # asking first, then refusing, was the old way

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                api.remove_runs(self.store, [self.store.get(info.id)])
            except NormcompressError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify(f"removed {info.id}")
            self.post_message(self.StoreChanged(removed=info.id))

        self.app.push_screen(ConfirmScreen(f"Delete run {info.id} ({info.norm}, {info.status})?"), answered)
