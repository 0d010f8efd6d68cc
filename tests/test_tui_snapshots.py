"""SVG snapshots of the main screen (pytest-textual-snapshot). Update with: pytest --snapshot-update."""

import difflib
import html
import json
import pickle
import re

import pytest
import torch
from pytest_textual_snapshot import node_to_report_path
from textual.widgets import Input

from normcompress.config import TrainConfig
from normcompress.data import synthetic_images
from normcompress.events import EpochEnd, RunEnded, RunStarted, StepProgress
from normcompress.images import comparison_grid, write_png
from normcompress.runs import Run, RunStore, Summary
from normcompress_tui.app import NormcompressApp
from normcompress_tui.messages import TrainingEvent
from normcompress_tui.widgets.chart import LossChart
from normcompress_tui.widgets.preview import PreviewImage, ReconstructionPreview
from normcompress_tui.widgets.runs_table import RunsTable

pytestmark = [
    pytest.mark.skipif(torch.cuda.is_available(), reason="the device selector differs with CUDA"),
    pytest.mark.usefixtures("in_process_probes"),
]

PSNR = {"L2": [15.1, 17.0, 18.2], "L1": [14.2, 15.6, 16.8], "Linf-image": [11.9, 12.1, 12.2]}


def fixed_run(root, index: int, norm: str) -> Run:
    """A completed 3-epoch run with fixed numbers, so that the picture never changes."""
    run = Run(root / f"20260101-12000{index}.000-{norm}-00000{index}")
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text(json.dumps({**TrainConfig(norm=norm, epochs=3).__dict__}))
    records = [
        {
            "epoch": e + 1,
            "loss": 0.05 / (e + 1),
            "psnr": p,
            "mse": 10 ** (-p / 10),
            "mae": 0.1 - e / 100,
            "ssim": 0.2 + e / 10,
            "maxabs_mean": 0.5,
            "maxabs_worst": 0.9,
            "images_per_s": 7000.0,
        }
        for e, p in enumerate(PSNR[norm])
    ]
    for r in records:
        run.append_metrics(r)
    run.save_checkpoint({"epoch": 3})
    final = {k: v for k, v in records[-1].items() if k not in ("epoch", "images_per_s")}
    run.write_summary(
        Summary.from_json(
            {
                "status": "completed",
                "epochs_done": 3,
                "wall_time_s": 9.5 + index,
                "metrics": final,
                "data": "sample",
                "device": "cpu",
                "message": "completed 3 epochs",
            }
        )
    )
    target = synthetic_images(8, seed=index).float() / 255
    write_png(comparison_grid(target, torch.nn.functional.avg_pool2d(target, 3, 1, 1)), run.recon_path)
    return run


@pytest.fixture
def fixed_store(tmp_path):
    for index, norm in enumerate(PSNR):
        fixed_run(tmp_path, index, norm)
    return RunStore(tmp_path)


@pytest.fixture(autouse=True)
def steady_system_line(monkeypatch):
    """The system line reads the machine's live CPU and memory: a picture shows fixed figures instead."""
    from normcompress_tui.widgets.system_line import SystemLine

    monkeypatch.setattr(SystemLine, "sample", lambda self: self.update("CPU 50% · app 100% of 2 cores\nRSS 0.50 GiB"))


def screen_text(svg: str) -> list[str]:
    """The characters of a Textual SVG screenshot, row by row: what a person reads on it."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(cells)).rstrip() for _, cells in sorted(rows.items())]


@pytest.fixture
def screen_matches(snap_compare, request):
    """snap_compare, which on a mismatch also says in the log which rows of text differ: a snapshot that
    fails only on the CI machine can then be read from its log (the HTML report stays on that machine)."""

    def compare(app, **kwargs) -> bool:
        if snap_compare(app, **kwargs):
            return True
        _, expected, actual, *_ = pickle.loads(node_to_report_path(request.node).read_bytes())
        changed = difflib.unified_diff(screen_text(expected or ""), screen_text(actual), "snapshot", "now", lineterm="")
        print("\n".join(changed) or "the same text: the difference is in colour or style")
        return False

    return compare


def app_for(store):
    app = NormcompressApp(store)
    app.sub_title = "runs"  # the temporary path would change every time
    return app


async def main_screen_up(pilot):
    """The main screen is composed a moment after the app starts."""
    for _ in range(6000):
        if pilot.app.main.query("RunsTable"):
            return
        await pilot.pause(0.05)


async def chart_drawn(pilot):
    """Draw the chart now, as its timer would within a second: a snapshot must not depend on whether
    the timer fired before the picture was taken (on a loaded machine it once had not). The device list
    is filled in by a worker once torch has loaded: wait for it too (and for the main screen's widgets)."""
    for _ in range(6000):
        if pilot.app.main.query("Controls") and pilot.app.main.controls.devices_known:
            break
        await pilot.pause(0.05)
    await pilot.pause()
    pilot.app.query_one("SystemLine").sample()  # its first tick is a second away: draw it now
    pilot.app.query_one(LossChart).redraw()
    await screen_settled(pilot)


async def pictures_laid_out(pilot):
    """Wait until every reconstruction picture on the screens shown has its final layout: its band
    width and width stay put over two looks. Under a loaded machine (the whole suite on two cores) a
    snapshot once caught a picture one layout pass early, narrower than it ends."""
    last = None
    for _ in range(600):
        await pilot.pause(0.1)
        pictures = [p for screen in pilot.app.screen_stack for p in screen.query(ReconstructionPreview)]
        state = [(p.per_band, str(p.query_one(PreviewImage).styles.width), p.content_region) for p in pictures]
        if state == last:
            return
        last = state


async def screen_settled(pilot):
    """Wait until the screen is the same over two looks a tenth of a second apart, so that the picture is
    not of a moment between two paints (a worker's answer, a layout pass) on a loaded machine."""
    last = None
    for _ in range(100):
        shot = pilot.app.export_screenshot()
        if shot == last:
            return
        last = shot
        await pilot.pause(0.1)


def test_idle_main_screen_80x24(screen_matches, tmp_path):
    assert screen_matches(app_for(RunStore(tmp_path)), terminal_size=(80, 24), run_before=chart_drawn)


def test_main_screen_after_a_run_160x48(screen_matches, fixed_store):
    async def replay_a_run_and_overlay_two(pilot):
        await main_screen_up(pilot)
        app = pilot.app
        current = fixed_store.runs()[0]
        config = TrainConfig(norm="L2", epochs=3, dataset="sample")
        events = [RunStarted(current.id, config, "cpu", "sample", 5170, 1017, 0)]
        for epoch, record in enumerate(current.metrics(), 1):
            events += [
                StepProgress(epoch, 3, step, 4, 0.05 / (epoch - 1 + step / 4), 7000.0, [0.05 / (epoch - 1 + step / 4)])
                for step in range(1, 5)
            ]
            events.append(EpochEnd(epoch, 3, record))
        events.append(RunEnded(current.id, "completed", "completed 3 epochs"))
        for event in events:
            app.post_message(TrainingEvent(event))
        table = app.query_one(RunsTable)
        while table.row_count < 3:
            await pilot.pause(0.05)
        table.focus()
        await pilot.press("space", "down", "space", "m")  # the two runs below the newest
        chart = app.query_one(LossChart)
        for _ in range(6000):  # the PCA reference is fitted in a worker (seconds): the picture shows it
            if chart.model.reference is not None:
                break
            await pilot.pause(0.05)
        assert chart.model.reference is not None
        app.clear_notifications()  # the run's toast expires after seconds: whether it shows would depend on timing
        await chart_drawn(pilot)

    assert screen_matches(app_for(fixed_store), terminal_size=(160, 48), run_before=replay_a_run_and_overlay_two)


def test_idle_main_screen_160x48(screen_matches, tmp_path):
    assert screen_matches(app_for(RunStore(tmp_path)), terminal_size=(160, 48), run_before=chart_drawn)


SCREENS = {  # each screen and dialog, opened from the main screen as a user would
    "help": ["question_mark"],
    "details": ["enter"],
    "study": ["S"],
    "confirm": ["d"],
    "prompt": ["t"],
    "diff": ["space", "down", "D"],
}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_screen_at_both_sizes(screen_matches, fixed_store, screen, size):
    async def open_it(pilot):
        await chart_drawn(pilot)
        table = pilot.app.query_one(RunsTable)
        while table.row_count < 3:
            await pilot.pause(0.05)
        table.focus()
        preview = pilot.app.main.preview  # the highlighted run's reconstructions, before a screen covers them
        for _ in range(6000):
            if preview.shown is not None and preview.original is not None:
                break
            await pilot.pause(0.05)
        await pictures_laid_out(pilot)
        await pilot.press(*SCREENS[screen])
        for _ in range(6000):
            if pilot.app.screen is not pilot.app.main:
                break
            await pilot.pause(0.05)
        await pictures_laid_out(pilot)  # the details screen's pictures are laid out after its first paint
        for field in pilot.app.screen.query(Input):  # a blinking cursor would be on or off by timing
            field.cursor_blink = False
        pilot.app.clear_notifications()
        await screen_settled(pilot)

    assert screen_matches(app_for(fixed_store), terminal_size=size, run_before=open_it)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_four_panels_with_the_cursor_at_both_sizes(screen_matches, fixed_store, size):
    """Four panels and the value cursor at 160x48; at 80x24 one panel, its title saying so."""

    async def four_panels(pilot):
        await chart_drawn(pilot)
        table = pilot.app.query_one(RunsTable)
        while table.row_count < 3:
            await pilot.pause(0.05)
        table.focus()
        pilot.app.main.overlay_all()
        chart = pilot.app.query_one(LossChart)
        chart.model.panels = 4  # as p p and c ← do (keys are driven in test_tui_views; here the picture)
        chart.model.move_cursor(0)
        chart.model.move_cursor(-1)
        for _ in range(6000):  # the PCA reference is fitted in a worker: the picture waits for it
            if chart.model.reference is not None:
                break
            await pilot.pause(0.05)
        pilot.app.clear_notifications()
        await chart_drawn(pilot)

    assert screen_matches(app_for(fixed_store), terminal_size=size, run_before=four_panels)
