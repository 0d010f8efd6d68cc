"""Groups in the app's chart: overlaid runs folded into a mean over a band per group of a setting."""

import shutil

import pytest
from textual.widgets import Static

from normcompress.config import TrainConfig
from normcompress.runs import RunStore
from normcompress.train import train
from normcompress_tui.widgets.chart_model import ChartModel

from .hostile import TINY


def record(epoch: int, psnr: float) -> dict:
    return {"epoch": epoch, "psnr": psnr, "loss": 0.1}


def test_the_model_folds_overlays_by_the_key_they_differ_in():
    model = ChartModel()
    model.metric = "psnr"
    for run_id, norm, values in [("a", "L1", (10.0, 12.0)), ("b", "L1", (14.0, 16.0)), ("c", "L2", (20.0, 21.0))]:
        groups = {"norm": f"norm={norm}", "seed": "seed=0", "lr": "lr=0.003"}
        model.set_overlay(run_id, f"{norm} {run_id}", [record(1, values[0]), record(2, values[1])], groups)
    assert model.group_keys() == ["norm"]  # seed and lr are the same for all: nothing to group by
    model.next_group()
    series, slots, _ = model.view()
    labels = [label for label, _, _ in series]
    assert labels == [None, None, "norm=L1 (n=2, band min–max)", None, None, "norm=L2 (n=1, band min–max)"]
    assert series[2][2] == [12.0, 14.0] and series[0][2] == [10.0, 12.0] and series[1][2] == [14.0, 16.0]
    assert slots == [1, 1, 1, 2, 2, 2] and "grouped by norm" in model.title_note()
    model.next_group()
    assert model.group_by is None and [label for label, _, _ in model.view()[0]] == ["L1 a", "L1 b", "L2 c"]


@pytest.mark.usefixtures("in_process_probes")
async def test_g_groups_three_runs_of_two_norms_into_two_entries_with_a_band(template_store, tmp_path):
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.runs_table import RunsTable

    root = tmp_path / "store"
    shutil.copytree(template_store, root)
    store = RunStore(root)
    train(TrainConfig(**{**TINY, "norm": "L1"}, epochs=1), store)  # two L2 runs and one L1
    app = NormcompressApp(store)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        while table.row_count < 3:
            await pilot.pause(0.1)
        table.focus()
        app.main.overlay_all()
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        legend = str(app.query_one("#legend", Static).render())
        assert "norm=L2 (n=2, band min–max)" in legend and "norm=L1 (n=1, band min–max)" in legend
        assert "L2 " + store.runs()[0].id[-6:] not in legend  # the runs themselves are folded into their group
        styles = {}
        for info in store.infos():
            styles.setdefault(info.norm, set()).add(str(table.get_cell(info.id, "overlay").style))
        assert len(styles["L2"]) == 1 and styles["L2"] != styles["L1"]  # each row marked in its group's colour
        await pilot.press("G")
        await pilot.pause()
        assert "band ±1 sd" in str(app.query_one("#legend", Static).render())
        assert app.main.chart.model.view_state()["group_by"] == "norm"  # kept with the app's state
