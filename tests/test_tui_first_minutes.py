"""A new user's first minutes in the app: the help can be read at any size, a key press that starts a
run says so at once, every training setting is in the form, and a study sweeps any setting."""

import pytest
from textual.widgets import Input, Label, Select, Static

from normcompress.runs import RunStore
from normcompress_tui.app import NormcompressApp
from normcompress_tui.screens import HelpScreen, StudyScreen
from normcompress_tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.usefixtures("in_process_probes")


async def wait_for(pilot, condition, step=0.1):
    while not condition():
        await pilot.pause(step)


async def main_screen(pilot):
    await wait_for(pilot, lambda: pilot.app.main.query("RunsTable") and pilot.app.main.controls.devices_known)


@pytest.mark.parametrize("size", [(80, 24), (160, 48), (240, 60)])
async def test_the_help_is_as_wide_as_its_text_and_scrolls_to_its_last_key(tmp_path, size):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=size) as pilot:
        await main_screen(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one("#help")
        await pilot.pause()
        assert box.size.width >= min(76, size[0] - 4)  # it was 15 cells wide at every size
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        last = box.query(Label).last()
        assert box.scroll_offset.y + box.size.height >= last.virtual_region.bottom  # the last line is shown


async def test_a_run_started_with_every_setting_says_starting_at_once(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        app.query_one("#more").collapsed = False
        for field, value in {"epochs": "1", "lr": "0.002", "limit": "512", "rate-lambda": "0"}.items():
            app.query_one(f"#{field}", Input).value = value
        for field, value in {"dataset": "synthetic", "model": "pca-refine", "optimizer": "adam",
                             "schedule": "constant"}.items():  # fmt: skip
            app.query_one(f"#{field}", Select).value = value
        app.query_one(RunsTable).focus()
        await pilot.pause()
        await pilot.press("s")
        label = str(app.query_one("#epoch-label", Label).render())
        stats = str(app.query_one("#stats", Label).render())
        assert "starting" in label and "L2 on synthetic" in stats  # before the child has imported torch
        assert app.controller.training
        table = app.query_one(RunsTable)
        top = [str(table.get_cell_at((0, c))) for c in range(len(table.columns))]
        assert "starting" in top and "L2" in top and table.row_count == 1  # its row, before the run exists
        await wait_for(pilot, lambda: not app.controller.training)
        await wait_for(pilot, lambda: table.row_count == 1 and table.starting is None)
        (run,) = store.runs()
        config = run.train_config()
        assert (config.model, config.optimizer, config.schedule, config.lr, config.limit, config.epochs) == (
            "pca-refine", "adam", "constant", 0.002, 512, 1
        )  # fmt: skip
        assert run.info().status == "completed"
        assert "starting" not in str(app.query_one("#epoch-label", Label).render())
        await wait_for(
            pilot, lambda: "completed" in [str(table.get_cell_at((0, c))) for c in range(len(table.columns))]
        )
        assert table.highlighted_info().id == run.id  # the row is the run's own now


async def test_escape_leaves_a_list_as_it_leaves_a_text_field(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        app.query_one("#dataset", Select).focus()
        await pilot.press("escape")
        assert isinstance(app.focused, RunsTable)


async def test_a_bad_form_value_is_named_in_the_forms_words(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        app.query_one("#more").collapsed = False
        app.query_one("#rate-lambda", Input).value = "5000"
        await pilot.pause()
        note = str(app.query_one("#more-status", Static).render())
        assert "Rate λ must be between" in note and "--" not in note


async def open_study(pilot, **fields):
    app = pilot.app
    app.query_one(RunsTable).focus()
    await pilot.press("S")
    assert isinstance(app.screen, StudyScreen)
    for field, value in fields.items():
        app.screen.query_one(f"#study-{field}", Input).value = value
    app.screen.query_one("#study-norms", Input).focus()
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"seeds": "x"}, "Seeds: 'x' is not a whole number"),
        ({"norms": " , "}, "Norms: type at least one norm"),
        ({"grid": "colour=red"}, "Grid: 'colour' is not a training setting"),
        ({"grid": "lr"}, "Grid takes SETTING=VALUE"),
    ],
)
async def test_the_study_dialog_speaks_the_apps_words(tmp_path, fields, words):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        await open_study(pilot, **fields)
        assert isinstance(app.screen, StudyScreen)  # refused: the dialog stays open
        problem = str(app.screen.query_one("#study-problem", Static).render())
        assert words in problem and "--" not in problem


async def test_the_study_dialog_starts_with_defaults_that_it_accepts(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        app.query_one(RunsTable).focus()
        await pilot.press("S")
        study = app.screen.study()  # the prefilled fields as they are
        assert study.grid == {"norm": ["L2", "L1", "Linf-image"]} and study.seeds == 2


async def test_a_two_key_grid_study_from_the_dialog_trains_every_point(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen(pilot)
        app.query_one("#epochs", Input).value = "1"
        app.query_one("#dataset", Select).value = "synthetic"
        app.query_one("#more").collapsed = False
        app.query_one("#limit", Input).value = "64"
        await pilot.pause()
        await open_study(pilot, norms="L2", grid="lr=0.001,0.002 optimizer=adam,adamw", seeds="1")
        assert not isinstance(app.screen, StudyScreen)
        await wait_for(pilot, lambda: not app.controller.training)
        points = {(r.train_config().lr, r.train_config().optimizer) for r in store.runs()}
        assert points == {(0.001, "adam"), (0.001, "adamw"), (0.002, "adam"), (0.002, "adamw")}
        assert all(r.info().status == "completed" and r.train_config().limit == 64 for r in store.runs())
