"""The key bar: it shows the focused widget's keys and is rebuilt only when those change."""

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from normcompress.runs import RunStore
from normcompress_tui.app import NormcompressApp
from normcompress_tui.widgets.footer import KeyBar
from normcompress_tui.widgets.runs_table import RunsTable

from .test_tui import wait_for


@pytest.mark.usefixtures("in_process_probes")
async def test_the_key_bar_follows_the_focus_and_is_rebuilt_only_when_its_keys_change(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        bar = app.screen.query_one(KeyBar)
        labels = lambda: [key.description for key in bar.query(FooterKey)]
        await wait_for(pilot, lambda: "Overlay" in labels())  # the runs table has the focus at launch
        table_keys = labels()
        epochs, lr = app.screen.query_one("#epochs", Input), app.screen.query_one("#lr", Input)
        epochs.focus()
        await wait_for(pilot, lambda: labels() != table_keys)  # the table's keys go with its focus
        assert "Overlay" not in labels()
        shown = list(bar.query(FooterKey))
        lr.focus()  # another field, the same keys: the bar keeps its widgets
        await pilot.pause()
        await pilot.pause()
        assert app.focused is lr and all(a is b for a, b in zip(bar.query(FooterKey), shown, strict=True))
        app.query_one(RunsTable).focus()
        await wait_for(pilot, lambda: labels() == table_keys)
