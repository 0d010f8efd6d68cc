"""The chart's value cursor and its panels: the model asked directly, then the app driven by keys."""

import json

import pytest
from textual.widgets import Select, Static

from normcompress.config import TrainConfig
from normcompress.runs import RunStore, Summary
from normcompress_tui.widgets.chart_model import ChartModel

PSNR = {"L1": [20.0, 21.5, 23.25], "L2": [19.0, 19.75]}  # L2 stopped after two epochs


def records(values: list[float]) -> list[dict]:
    return [
        {"epoch": e, "psnr": v, "loss": 1.0 / e, "ssim": 0.5, "maxabs_worst": 0.8, "epoch_time_s": 10.0, "mae": 0.1}
        for e, v in enumerate(values, 1)
    ]


def two_runs() -> ChartModel:
    model = ChartModel()
    model.metric = "psnr"
    for run_id, values in PSNR.items():
        model.set_overlay(run_id, f"{run_id} run", records(values))
    return model


def test_the_cursor_reads_each_runs_recorded_value_at_or_before_it():
    model = two_runs()
    model.move_cursor(0)  # shown at the last x any run has
    assert model.cursor == 3 and model.cursor_text() == "epoch 3"
    assert model.cursor_values("psnr") == [("L1 run", 1, "23.25"), ("L2 run", 2, "19.75")]  # L2's epoch 2
    model.move_cursor(-1)
    assert model.cursor_values("psnr") == [("L1 run", 1, "21.50"), ("L2 run", 2, "19.75")]
    model.move_cursor(-5)  # stops at the first epoch
    assert model.cursor == 1 and model.cursor_values("psnr")[1] == ("L2 run", 2, "19.00")
    model.move_cursor(1)
    assert model.cursor == 2


def test_the_cursor_follows_the_time_axis_and_the_zoom():
    model = two_runs()
    model.move_cursor(0)
    model.next_x_axis()  # step: these records have no step losses, so nothing to stand on
    assert model.cursor is None
    model.next_x_axis()  # time: each epoch took 10 s, so the epochs end at 10, 20 and 30 s
    model.move_cursor(0)
    assert model.cursor == 30 and model.cursor_text() == "30 s"
    model.move_cursor(-1)
    assert model.cursor == 20 and model.cursor_values("psnr")[0] == ("L1 run", 1, "21.50")
    model.x_axis = "epoch"
    model.cursor = 2.5  # between two epochs: a step either way lands on the epoch on that side
    model.move_cursor(1)
    assert model.cursor == 3
    model.cursor = 2.5
    model.move_cursor(-1)
    assert model.cursor == 2
    model.set_zoom(1)  # the last epoch only: the cursor moves onto it
    assert model.cursor == 3 and model.cursor_positions() == [3]


def test_panels_show_the_chosen_metric_first_and_the_usual_companions():
    model = two_runs()
    assert model.panel_metrics() == ["psnr"]
    model.next_panels()
    assert model.panels == 2 and model.panel_metrics() == ["psnr", "loss"]
    model.next_panels()
    assert model.panel_metrics() == ["psnr", "loss", "ssim", "maxabs_worst"]
    assert model.cursor_values("ssim") == []  # no cursor yet
    model.move_cursor(0)
    assert model.cursor_values("maxabs_worst") == [("L1 run", 1, "0.800"), ("L2 run", 2, "0.800")]
    model.next_panels()
    assert model.panels == 1 and model.view_state()["panels"] == 1


def hand_made_store(root) -> RunStore:
    """Two completed runs with the metrics above, made by hand (the numbers are the test's own)."""
    store = RunStore(root)
    for norm, values in PSNR.items():
        summary = Summary.from_json({"status": "completed", "epochs_done": len(values), "metrics": records(values)[-1]})
        run = store.create(TrainConfig(norm=norm, epochs=len(values)).validated(), summary)
        for record in records(values):
            run.append_metrics(record)
        run.save_checkpoint({"epoch": len(values)})
    return store


async def listed(pilot, app, rows: int):
    """The runs table, once it lists `rows` runs."""
    from normcompress_tui.widgets.runs_table import RunsTable

    table = app.query_one(RunsTable)
    while table.row_count < rows:
        await pilot.pause(0.05)
    return table


async def overlaid(pilot, app) -> None:
    table = await listed(pilot, app, 2)
    table.focus()
    app.main.overlay_all()
    app.main.chart.query_one("#metric", Select).value = "psnr"
    await pilot.pause()


def cursor_line(app) -> str:
    return str(app.main.chart.query_one("#cursor-line", Static).render())


@pytest.mark.usefixtures("in_process_probes")
async def test_c_and_the_arrow_keys_move_a_cursor_that_lists_each_runs_value(tmp_path):
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.chart import LossChart

    store = hand_made_store(tmp_path / "store")
    l1, l2 = (next(r for r in store.runs() if r.info().norm == norm).id[-6:] for norm in ("L1", "L2"))
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await overlaid(pilot, app)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.focused, LossChart)
        line = cursor_line(app)
        assert line.startswith("epoch 3 · PSNR dB:") and f"L1 {l1} 23.25" in line and f"L2 {l2} 19.75" in line
        await pilot.press("left")
        await pilot.pause()
        line = cursor_line(app)
        assert line.startswith("epoch 2 · PSNR dB:") and f"L1 {l1} 21.50" in line and f"L2 {l2} 19.75" in line
        await pilot.press("shift+left")  # ten to the left: stops at the first epoch
        await pilot.pause()
        assert f"L2 {l2} 19.00" in cursor_line(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.chart.model.cursor is None and not app.main.chart.query_one("#cursor-line").display
        assert not isinstance(app.focused, LossChart)  # the keys went back to the runs table


@pytest.mark.usefixtures("in_process_probes")
async def test_four_panels_fit_at_160x48_fall_back_at_80x24_and_are_kept(tmp_path):
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.chart import SafePlot

    store = hand_made_store(tmp_path / "store")
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await overlaid(pilot, app)
        await pilot.press("p", "p", "c")
        await pilot.pause()
        plots = list(app.main.chart.query(SafePlot))
        assert [p.display for p in plots] == [True] * 4 and app.main.chart.fitting_panels() == 4
        assert len({(p.region.x, p.region.y) for p in plots}) == 4  # a 2x2 grid, not stacked on each other
        assert cursor_line(app).count("epoch 3 ·") == 4  # one line of values per panel
        await pilot.press("g", "G")  # grouped by norm, band ±1 sd: kept too (the state's schema once dropped them)
        app.main.save_state()
    state = json.loads((store.root / ".app-state.json").read_text())
    assert state["chart"]["panels"] == 4

    app = NormcompressApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await overlaid(pilot, app)
        chart = app.main.chart
        assert chart.model.panels == 4 and chart.fitting_panels() == 1  # asked for four, one fits
        assert (chart.model.group_by, chart.model.band) == ("norm", "sd")
        chart.redraw()
        await pilot.pause()
        plots = list(chart.query(SafePlot))
        assert [p.display for p in plots] == [True, False, False, False]
        assert "(1 of 4 panels fit" in plots[0].plt._active.monitor.title  # said, not silently dropped


@pytest.mark.usefixtures("in_process_probes")
async def test_brackets_step_the_preview_through_epochs_and_details_show_the_strip(tmp_path):
    from textual.widgets import DataTable

    from normcompress.train import train
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.runs_table import RunsTable

    from .hostile import TINY

    store = RunStore(tmp_path / "store")
    run = train(TrainConfig(**TINY, epochs=3), store)
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        while table.row_count < 1:
            await pilot.pause(0.05)
        table.focus()
        await pilot.pause()
        preview = app.main.preview
        caption = preview.query_one("#preview-caption", Static)
        assert preview.step_history(1) == "this is its latest epoch"
        await pilot.press("left_square_bracket")
        assert preview.epoch_index == 1 and "epoch 2 (2 of 3 kept" in str(caption.render())
        await pilot.press("left_square_bracket")
        assert "epoch 1 (1 of 3 kept" in str(caption.render())
        assert preview.step_history(-1) == "this is its first epoch kept"
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert "epoch 3 (3 of 3 kept" in str(caption.render())

        app.main.chart.query_one("#metric", Select).value = "cpu_percent"  # the machine's figures are a metric
        app.main.overlay_all()
        await pilot.pause()
        (_, _, values), *_ = app.main.chart.model.view()[0]
        assert values == [r["cpu_percent"] for r in run.metrics()]

        await pilot.press("enter")
        while not app.screen.query("#details-history"):
            await pilot.pause(0.05)
        await pilot.pause()
        strip_caption = str(app.screen.query_one("#details-history #preview-caption", Static).render())
        assert strip_caption == "originals, then the reconstructions after epochs 1, 2, 3"
        headers = [str(c.label) for c in app.screen.query_one("#details-epochs", DataTable).columns.values()]
        assert "CPU %" in headers and "RSS GiB" in headers and "GPU %" not in headers


def settings_store(root) -> RunStore:
    """Three runs that differ in lr and limit (not in model): made by hand, with final metrics."""
    store = RunStore(root)
    for norm, lr, limit, ssim in [("L1", 0.01, 64, 0.5), ("L2", 0.001, 128, 0.7), ("L1", 0.003, 128, 0.6)]:
        metrics = {"psnr": 20.0, "ssim": ssim, "maxabs_worst": 0.9}
        summary = Summary.from_json({"status": "completed", "epochs_done": 1, "metrics": metrics})
        store.create(TrainConfig(norm=norm, epochs=1, lr=lr, limit=limit).validated(), summary)
    return store


def test_the_data_column_shows_the_data_a_run_really_trained_on_not_the_dataset_it_asked_for(tmp_path):
    """A run that asked for CIFAR-10 and fell back to the embedded sample was listed as `cifar10`
    beside runs on the sample, as if it had trained on 50,000 images."""
    from normcompress_tui.widgets.run_columns import differing_settings, fitting_columns

    store = RunStore(tmp_path)
    for asked, used in [("cifar10", "sample"), ("sample", "sample"), ("synthetic", "synthetic")]:
        summary = Summary.from_json({"status": "completed", "epochs_done": 1, "metrics": {"psnr": 20.0}, "data": used})
        store.create(TrainConfig(epochs=1, dataset=asked).validated(), summary)
    infos = store.infos()
    fell_back = [i for i in infos if i.config.dataset == "cifar10"]
    assert "dataset" not in differing_settings([i for i in infos if i.data_source == "sample"])  # both on it
    assert "dataset" in differing_settings(infos)
    columns, _ = fitting_columns(infos, 200)
    (data,) = [c for c in columns if c.header == "data"]  # one data column, moved forward as a setting
    assert data.key == "setting:dataset" and data.text(fell_back[0]) == "sample"
    assert sorted(data.text(i) for i in infos) == ["sample", "sample", "synthetic"]


@pytest.mark.usefixtures("in_process_probes")
async def test_the_settings_the_runs_differ_in_are_sortable_columns_beside_the_final_metrics(tmp_path):
    from normcompress_tui.app import NormcompressApp

    store = settings_store(tmp_path / "store")
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        table = await listed(pilot, app, 3)
        keys = [c.key for c in table.shown_columns]
        best = keys.index("psnr")
        assert keys[best + 1 : best + 6] == ["setting:lr", "setting:limit", "tags", "ssim", "maxabs"]
        assert "lr" not in keys and "model" in keys  # lr moved forward; model is the same for all, kept later
        table.sort_by("setting:lr")
        lr_cells = [table.get_cell_at((row, keys.index("setting:lr"))).plain for row in range(3)]
        assert lr_cells == ["0.001", "0.003", "0.01"]  # as numbers, not as text
        justified = {c.key: table.get_cell_at((0, keys.index(c.key))).justify for c in table.shown_columns}
        assert {justified[k] for k in ("setting:lr", "psnr", "epochs", "seed")} == {"right"}  # digits line up
        assert "right" not in {justified[k] for k in ("short", "norm", "status", "model")}  # words read from the start
        table.sort_by("ssim")  # a metric: best first
        assert [i.metrics["ssim"] for i in table.visible_infos()] == [0.7, 0.6, 0.5]
        table.sort_by("setting:limit", reverse=False)
        app.main.save_state()
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        table = await listed(pilot, app, 3)
        assert table.sort_key == "setting:limit" and "by limit ▲" in table.border_subtitle  # kept


@pytest.mark.usefixtures("in_process_probes")
async def test_d_shows_two_runs_side_by_side_the_differing_keys_first(tmp_path):
    from textual.widgets import DataTable

    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.screens import DiffScreen

    store = settings_store(tmp_path / "store")
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        table = await listed(pilot, app, 3)
        table.focus()
        table.sort_by("setting:lr", reverse=True)  # 0.01 (L1, 64 images), 0.003, 0.001 (L2, 128 images)
        await pilot.press("D")
        assert not isinstance(app.screen, DiffScreen)  # nothing marked: said how, nothing opened
        table.move_cursor(row=0)
        await pilot.press("space", "down", "down", "D")
        while not isinstance(app.screen, DiffScreen):
            await pilot.pause(0.05)
        diff = app.screen.query_one("#diff-table", DataTable)
        keys = [diff.get_cell_at((row, 0)).plain.strip() for row in range(diff.row_count)]
        # by hand: the runs differ in norm, lr, limit and their final SSIM, nothing else
        assert keys[:4] == ["≠ norm", "≠ lr", "≠ limit", "≠ ssim"] and not keys[4].startswith("≠")
        assert [diff.get_cell_at((1, c)).plain for c in (1, 2)] == ["0.01", "0.001"]
        assert "4 keys differ" in str(app.screen.query_one("#diff-title", Static).render())
        await pilot.press("escape")
        assert not isinstance(app.screen, DiffScreen)
        notes = []
        app.notify = lambda message, **_: notes.append(message)
        table.move_cursor(row=1)
        await pilot.press("space", "down", "space", "D")  # three on the chart: which two is not for the app to guess
        assert not isinstance(app.screen, DiffScreen) and "3 are on the chart" in notes[-1], notes
