"""The app driven by Textual's Pilot: real training on small data, in a temporary run store."""

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image
from textual.widgets import Input, Label, Select, Static
from textual_plotext import PlotextPlot

from normcompress.runs import RunStore
from normcompress.style import PALETTE_RGB
from normcompress.train import EpochEnd, StepProgress, TrainConfig, train
from normcompress_tui import main_screen as main_screen_module
from normcompress_tui import training as training_module
from normcompress_tui.app import NormcompressApp
from normcompress_tui.screens import ConfirmScreen, DetailsScreen, HelpScreen, StudyScreen
from normcompress_tui.widgets.chart import REDRAW_INTERVAL_S, LossChart
from normcompress_tui.widgets.controls import Controls
from normcompress_tui.widgets.progress import TrainingProgress
from normcompress_tui.widgets.runs_table import RunsTable
from normcompress_tui.widgets.study_queue import StudyQueue

pytestmark = pytest.mark.usefixtures("in_process_probes")


async def wait_for(pilot, condition, timeout=180.0):
    """Let the app run until `condition()` holds. Past the timeout the test fails, and any training is
    cancelled first: a broken Stop would otherwise keep the worker (and the test) running for 200 epochs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pilot.app.controller.cancel.set()
            raise AssertionError("the app did not get there")
        await pilot.pause(0.05)


def quick_runs(store, norms=("L1", "L2")):
    return [train(TrainConfig(norm=n, epochs=2, dataset="synthetic", limit=128, device="cpu"), store) for n in norms]


def legend(app) -> str:
    """The chart's legend as the user reads it, under the plot."""
    return str(app.query_one("#legend", Static).render()).replace("\u00a0", " ")  # no-break spaces keep entries whole


def widget_lines(app) -> int:
    """How many lines the legend has: all of them must be in its region, none scrolled out of sight."""
    return legend(app).count("\n") + 1


def recording_notify(app):
    notes = []
    app.notify = lambda message, **kwargs: notes.append((message, kwargs.get("severity", "information")))
    return notes


async def focused_table(pilot, rows: int) -> RunsTable:
    """The runs table, once it lists `rows` runs, with the keyboard focus."""
    table = pilot.app.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == rows)
    table.focus()
    return table


async def press_start(pilot):
    """Start from the keyboard, as a user over SSH would: focus the runs table, press s."""
    pilot.app.query_one(RunsTable).focus()
    await pilot.press("s")


async def set_fields(pilot, **values):
    """Fill the controls, then let the app lay itself out again (a folder row may appear)."""
    for field, value in values.items():
        pilot.app.query_one(f"#{field}").value = value
    await pilot.pause()


async def start_study(pilot, norms: str, seeds: str, ray: str = "", stack: str = "auto"):
    """Open the study screen from the runs table (S), fill it, press Enter."""
    app = pilot.app
    app.query_one(RunsTable).focus()
    await pilot.press("S")
    assert isinstance(app.screen, StudyScreen)
    app.screen.query_one("#study-norms", Input).value = norms
    app.screen.query_one("#study-seeds", Input).value = seeds
    app.screen.query_one("#study-ray", Input).value = ray
    app.screen.query_one("#study-stack", Input).value = stack
    app.screen.query_one("#study-norms", Input).focus()
    await pilot.press("enter")


async def test_start_a_run_from_the_controls(tmp_path):
    store = RunStore(tmp_path)
    (earlier,) = quick_runs(store, ("L1",))  # highlighted in the table all along
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await set_fields(pilot, epochs="2", dataset="synthetic", **{"batch-size": "256"})
        await pilot.click("#start")
        assert app.controller.training and app.query_one("#start").disabled
        await wait_for(pilot, lambda: not app.controller.training)
        (run,) = [r for r in store.runs() if r.id != earlier.id]
        assert run.info().status == "completed" and run.train_config().dataset == "synthetic"
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.infos.get(run.id) and table.infos[run.id].status == "completed")
        chart = app.query_one(LossChart)
        assert len(chart.model.current_epochs) == 2 and chart.model.current_steps
        assert "completed" in str(app.query_one("#epoch-label").render())
        await pilot.resize_terminal(160, 48)  # the table is drawn again, with more columns
        await pilot.pause()
        # The run's last reconstructions stay: the table drawn again brought back those of the cursor's run.
        preview = app.query_one("ReconstructionPreview")
        assert preview.shown == run.recon_path and "2 epochs, completed" in str(preview.query_one(Static).render())
        table.focus()
        await pilot.press("up", "down")  # the cursor moves to the earlier run: it is shown
        assert preview.shown == earlier.recon_path


async def test_an_overlaid_run_training_elsewhere_is_drawn_again_as_its_epochs_end(tmp_path):
    """A run trained outside the app (the engine in a thread here, as the CLI would in another terminal),
    overlaid after its first epoch, grows on the chart with each epoch it finishes."""
    store = RunStore(tmp_path)
    first_epoch_saved, go_on = threading.Event(), threading.Event()

    def pause_after_the_first_epoch(event):
        if isinstance(event, EpochEnd) and event.epoch == 1:
            first_epoch_saved.set()
            go_on.wait()

    config = TrainConfig(norm="L1", epochs=2, dataset="synthetic", limit=128, device="cpu")
    elsewhere = threading.Thread(target=train, args=(config, store, pause_after_the_first_epoch))
    elsewhere.start()
    try:
        while not first_epoch_saved.wait(0.1):
            assert elsewhere.is_alive(), "the run trained elsewhere ended before its first epoch"
        app = NormcompressApp(store)
        async with app.run_test(size=(120, 40)) as pilot:
            await focused_table(pilot, rows=1)
            await pilot.press("space")
            drawn = app.query_one(LossChart).model.overlays
            (run_id,) = drawn
            assert [r["epoch"] for r in drawn[run_id][1]] == [1]
            go_on.set()
            await wait_for(pilot, lambda: len(drawn[run_id][1]) == 2)  # the store's next look finds epoch 2
            assert [r["epoch"] for r in drawn[run_id][1]] == [1, 2]
            assert drawn[run_id][1] == store.get(run_id).metrics()
    finally:
        go_on.set()
        elsewhere.join()


async def test_an_overlaid_run_removed_elsewhere_leaves_the_chart_with_its_row(tmp_path):
    """`normcompress runs rm` in another terminal took the run off the table but left its curve on the
    chart, where no row was left to unmark it."""
    store = RunStore(tmp_path)
    kept, removed = quick_runs(store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=2)
        app.main.overlay_all()
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: set(chart.model.overlays) == {kept.id, removed.id})
        store.remove(store.get(removed.id))  # as the CLI does
        await wait_for(pilot, lambda: removed.id not in app.query_one(RunsTable).infos)
        assert set(chart.model.overlays) == {kept.id} and removed.id[-6:] not in legend(app)


async def test_overlay_two_runs_on_the_chart(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=2)
        await pilot.press("space", "down", "space")
        chart = app.query_one(LossChart)
        assert set(chart.model.overlays) == {r.id for r in runs}
        # The training loss of a saved run is drawn at every step, not once per epoch.
        assert [len(xs) for _, xs, _ in chart.model.series()] == [
            sum(len(r["step_losses"]) for r in run.metrics()) for run in runs
        ]
        await pilot.press("a")  # smoothing 0.6: the smoothed curve is labelled, the raw one stays under it
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        assert chart.smoothing == 0.6 and f"L1 {runs[0].id[-6:]} (smoothed 0.6)" in legend(app)
        await pilot.press("m")  # next metric: val PSNR
        assert chart.metric == "psnr"
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)  # one throttled redraw
        labels = [label for label, _, _ in chart.model.series()]
        assert labels == [f"L2 {runs[1].id[-6:]}", f"L1 {runs[0].id[-6:]}"]  # the newest run is on top
        assert all(f"{label} (smoothed 0.6)" in legend(app) for label in labels)
        assert "val PSNR" in str(app.query_one(PlotextPlot).render())
        await pilot.press("l")
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        assert chart.log_scale and "log scale" in str(app.query_one(PlotextPlot).render())
        chart.query_one("#metric", Select).value = "ms_ssim"  # 32-pixel runs have none
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        assert not any(xs for _, xs, _ in chart.model.series()) and "not measured on images under 161 px" in str(
            app.query_one(PlotextPlot).render()
        )
        chart.query_one("#metric", Select).value = "psnr"
        await pilot.press("up", "space")
        assert set(chart.model.overlays) == {runs[0].id}


async def test_stop_mid_run_keeps_an_interrupted_run(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await set_fields(pilot, epochs="200", dataset="synthetic", **{"batch-size": "32"})
        await press_start(pilot)
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: len(chart.model.current_steps) >= 2)
        assert len(chart.model.current_epochs) < 200
        app.query_one(RunsTable).focus()
        await pilot.press("x")  # handled while an epoch is under way
        await wait_for(pilot, lambda: not app.controller.training)
        (run,) = store.runs()
        info = run.info()
        assert info.status == "interrupted" and info.epochs_done < 200
        assert not app.query_one("#start").disabled


async def test_invalid_hybrid_is_flagged_as_you_type_and_refused(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        notes = recording_notify(app)
        await pilot.click("#custom-norm")
        await pilot.press(*"0.5*L1+")
        status = str(app.query_one("#norm-status", Static).render())
        assert "✗" in status and "cannot read" in status
        assert not app.query_one("#custom-norm", Input).is_valid
        await press_start(pilot)
        assert not app.controller.training and store.runs() == []
        assert notes and "malformed norm" in notes[-1][0] and notes[-1][1] == "error"
        await pilot.click("#custom-norm")
        await pilot.press("end", *"0.5*L2")
        assert "✓ 0.5*L1+0.5*L2" in str(app.query_one("#norm-status", Static).render())


async def test_cuda_is_offered_only_when_present(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.query_one(Controls).devices_known)
        keys = [value for _, value in app.query_one("#device", Select)._options]
        note = app.query_one("#device-note", Static)
        if torch.cuda.is_available():
            assert "cuda:0" in keys and not note.display
        else:
            assert keys == ["auto", "cpu"] and note.display and "CUDA" in str(note.render())


APP_THAT_TRAINS_AND_SHOWS = """
import asyncio, sys
from normcompress.runs import RunStore
from normcompress_tui.app import NormcompressApp
from normcompress_tui.widgets.controls import Controls

async def main():
    app = NormcompressApp(RunStore(sys.argv[1]))
    async with app.run_test(size=(120, 36)) as pilot:
        while not app.query_one(Controls).devices_known:
            await asyncio.sleep(0.05)
        for field, value in {"epochs": "2", "dataset": "synthetic", "device": "cpu"}.items():
            app.query_one(f"#{field}").value = value
        await pilot.pause()
        app.query_one("#runs").focus()
        await pilot.press("s")
        while app.controller.training or app.controller.current_run is None:
            await asyncio.sleep(0.1)
        await pilot.press("enter")  # the run's details: metrics, reconstructions, error maps
        await pilot.pause()
        print(app.controller.current_run.info().status, type(app.screen).__name__, "torch" in sys.modules)

asyncio.run(main())
"""


def test_the_app_never_loads_torch(tmp_path):
    """Devices are listed and runs trained in child processes: torch in the app would be 0.5 GiB and
    160,000 objects that each full garbage collection walks while a run trains beside it."""
    done = subprocess.run(
        [sys.executable, "-c", APP_THAT_TRAINS_AND_SHOWS, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["completed", "DetailsScreen", "False"], done.stdout


async def test_errors_are_notifications_and_the_app_stays_usable(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        notes = recording_notify(app)
        await set_fields(pilot, dataset="folder", folder=str(tmp_path / "missing"), epochs="1")
        await press_start(pilot)
        await wait_for(pilot, lambda: not app.controller.training)
        assert any("does not exist" in message and severity == "error" for message, severity in notes), notes
        await set_fields(pilot, epochs="abc")
        await press_start(pilot)
        assert "Epochs: 'abc' is not a whole number" in notes[-1][0]
        await set_fields(pilot, dataset="synthetic", epochs="1")
        await press_start(pilot)
        await wait_for(pilot, lambda: not app.controller.training)
        assert [r.info().status for r in store.runs()] == ["completed"]


async def test_runs_started_elsewhere_appear(tmp_path, monkeypatch):
    monkeypatch.setattr(main_screen_module, "STORE_POLL_S", 0.2)
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        table = app.query_one(RunsTable)
        assert table.row_count == 0
        (run,) = quick_runs(RunStore(tmp_path), norms=("Linf-image",))  # as the CLI would
        await wait_for(pilot, lambda: run.id in table.infos)
        assert table.get_cell(run.id, "norm").plain == "Linf-image"
        await pilot.press("question_mark")  # a run that appears under another screen is listed and previewed
        assert isinstance(app.screen, HelpScreen)
        (other,) = quick_runs(RunStore(tmp_path), norms=("L1",))
        await wait_for(pilot, lambda: other.id in table.infos)
        await pilot.press("escape")
        table.move_cursor(row=table.get_row_index(other.id))
        await wait_for(pilot, lambda: app.query_one("ReconstructionPreview").shown == other.recon_path)


async def test_details_and_delete(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=2)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        assert app.screen.query_one("#details-epochs").row_count == 2
        assert app.screen.query_one("ReconstructionPreview").shown == runs[1].recon_path  # newest first
        await pilot.press("escape")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert len(store.runs()) == 2
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert [r.id for r in store.runs()] == [runs[0].id]


async def test_quit_during_a_run_asks_then_keeps_it_interrupted(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await set_fields(pilot, epochs="200", dataset="synthetic", **{"batch-size": "32"})
        await press_start(pilot)
        await wait_for(pilot, lambda: app.controller.current_run is not None)
        app.query_one(RunsTable).focus()
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.controller.training)
    (run,) = store.runs()
    assert run.info().status == "interrupted"


async def test_progress_shows_an_epochs_psnr_at_the_next_tick(tmp_path):
    """Events only record; the app's tick draws, and an epoch's PSNR is drawn then, not with the next
    epoch's first step (which can be a long epoch away)."""
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        progress = app.query_one(TrainingProgress)
        stats, eta = progress.query_one("#stats", Static), progress.query_one("#eta", Static)
        progress.step(StepProgress(1, 3, 4, 4, 0.05, 7000.0, [0.05]))
        await wait_for(pilot, lambda: "loss 0.05" in str(stats.render()))
        assert "PSNR" not in str(stats.render()) and "33%" in str(eta.render())  # 4 of 12 steps
        progress.epoch_end(EpochEnd(1, 3, {"epoch": 1, "psnr": 17.25}))  # no StepProgress after it yet
        await wait_for(pilot, lambda: "PSNR 17.25 dB  best 17.25 dB" in str(stats.render()))
        progress.step(StepProgress(2, 3, 4, 4, 0.04, 7000.0, [0.04]))  # 4 more steps: 4 left
        await wait_for(pilot, lambda: "67%" in str(eta.render()))
        left = progress.seconds_left()  # the time the last 4 steps took, once more
        assert left is not None and left > 0 and progress.total - progress.done == 4
        progress.finished("completed", "done")
        assert "completed" in str(app.query_one("#epoch-label").render())  # at once, not at the tick


async def start_a_long_run(pilot, app):
    await set_fields(pilot, epochs="200", dataset="synthetic", **{"batch-size": "32"})
    await press_start(pilot)
    await wait_for(pilot, lambda: app.controller.current_run is not None)
    app.query_one(RunsTable).focus()


@pytest.mark.parametrize("way_out", ["ctrl+q", "palette"])
async def test_every_way_out_asks_then_stops_the_run(tmp_path, way_out):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_a_long_run(pilot, app)
        if way_out == "ctrl+q":
            await pilot.press("ctrl+q")
        else:  # the command palette's Quit, as the palette runs it
            (quit_command,) = [c for c in app.get_system_commands(app.screen) if c.title == "Quit"]
            await quit_command.callback()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and app.controller.training  # asked, nothing stopped yet
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.controller.training)
    (run,) = store.runs()
    assert run.info().status == "interrupted" and 1 <= run.info().epochs_done + 1 < 200


async def test_sigterm_stops_the_run_and_quits_without_asking(tmp_path):
    unhandled = []
    previous = signal.signal(signal.SIGTERM, lambda *args: unhandled.append(args))  # if the app installs none
    try:
        store = RunStore(tmp_path)
        app = NormcompressApp(store)
        async with app.run_test(size=(100, 32)) as pilot:
            await start_a_long_run(pilot, app)
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_for(pilot, lambda: not app.controller.training)
            await pilot.pause()
            assert not app.is_running and not unhandled
    finally:
        signal.signal(signal.SIGTERM, previous)
    (run,) = store.runs()
    assert run.info().status == "interrupted"


APP_WITH_A_LONG_RUN = """
import sys
from normcompress.config import TrainConfig
from normcompress.runs import RunStore
from normcompress_tui.app import NormcompressApp

class Started(NormcompressApp):
    def on_ready(self):  # the main screen is up
        self.controller.start(TrainConfig(epochs=200, dataset="synthetic", batch_size=32, device="cpu"))

Started(RunStore(sys.argv[1])).run(headless=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_app_process_keeps_the_run_and_ends_it(tmp_path, sig):
    """kill, or an SSH session that drops: the process ends within seconds and the run is interrupted."""
    process = subprocess.Popen(
        [sys.executable, "-c", APP_WITH_A_LONG_RUN, str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (RunStore(tmp_path).runs() and RunStore(tmp_path).runs()[0].is_live()):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.1)
        time.sleep(0.5)  # into the training loop
        process.send_signal(sig)
        process.wait(timeout=60)  # a run of 200 epochs would take many minutes
    finally:
        process.kill()
    (run,) = RunStore(tmp_path).runs()
    # A clean stop, not a death: exit status 0 and the summary itself says interrupted (a killed
    # process leaves `running` on disk, which only reads as interrupted once its lock is free).
    assert process.returncode == 0, process.stderr.read()
    assert run.summary().status == "interrupted" and run.summary().message.startswith("stopped after")


TERMINAL_THAT_HANGS_UP = """
import fcntl, os, pty, select, struct, sys, termios, time
from normcompress.runs import RunStore

pid, terminal = pty.fork()  # the app on a real terminal of its own, as over SSH
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))  # 120x36, as a terminal sets it
    app = sys.argv[1].replace("headless=True", "")
    os.execv(sys.executable, [sys.executable, "-c", app, sys.argv[2]])
while not (RunStore(sys.argv[2]).runs() and RunStore(sys.argv[2]).runs()[0].is_live()):
    if select.select([terminal], [], [], 0.1)[0]:
        os.read(terminal, 1 << 16)  # what a terminal does with the app's output: take it
time.sleep(0.5)
os.close(terminal)  # the SSH session drops: the terminal hangs up under the app
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.1)
else:
    print("still running after 60 s")
    os.kill(pid, 9)
"""


def test_the_app_ends_when_its_terminal_hangs_up_under_a_run(tmp_path):
    """Textual's writer thread died on the first write to the dead terminal, the next repaint blocked on
    its full queue, and the app never ended (at full CPU), though the run was stopped."""
    done = subprocess.run(
        [sys.executable, "-c", TERMINAL_THAT_HANGS_UP, APP_WITH_A_LONG_RUN, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "exit 0", (done.stdout, done.stderr[-2000:])
    (run,) = RunStore(tmp_path).runs()
    assert run.summary().status == "interrupted" and run.summary().message.startswith("stopped after")


async def test_the_chart_draws_the_pca_floor_of_an_overlaid_runs_data(tmp_path):
    store = RunStore(tmp_path)
    train(TrainConfig(norm="L2", epochs=1, dataset="synthetic", limit=320, device="cpu"), store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=1)
        await pilot.press("space")
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.model.reference is not None)  # fitted in a child process, then cached
        assert chart.model.reference_line() is None  # the training loss is in the run's own norm: no reference
        await pilot.press("m")  # val PSNR
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        (cached,) = (tmp_path / ".baselines").iterdir()
        label, value = chart.model.reference_line()
        assert label == "PCA (256 values) on synthetic" and value == pytest.approx(
            json.loads(cached.read_text())["metrics"]["psnr"]
        )
        assert label in legend(app) and "--" in legend(app)  # drawn dashed


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_the_legend_of_four_overlays_stays_visible_outside_the_plot(tmp_path, size):
    store = RunStore(tmp_path)
    runs = quick_runs(store, norms=("L1", "L2", "Linf-image", "0.5*L1+0.5*L2"))
    app = NormcompressApp(store)
    async with app.run_test(size=size) as pilot:
        table = await focused_table(pilot, rows=4)
        for _ in range(4):
            await pilot.press("space", "down")
        await pilot.press("a")  # smoothing makes every label longer
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        text = legend(app)
        named = [r for r in runs if f"{r.info().norm} {r.id[-6:]} (smoothed 0.6)" in text]
        unnamed = len(runs) - len(named)  # those the legend's rows cannot hold are counted, not dropped
        assert named and (f"+{unnamed} more" in text if unnamed else "more" not in text)
        assert size == (80, 24) or not unnamed  # 30 rows name all four
        assert widget_lines(app) <= app.query_one("#legend", Static).region.height  # nothing hidden below
        assert not any(r.id[-6:] in str(app.query_one(PlotextPlot).render()) for r in runs)  # not on the data
        widget = app.query_one("#legend", Static)
        assert widget.region.height >= 1 and widget.region.bottom <= app.query_one(LossChart).region.bottom
        assert app.query_one(PlotextPlot).region.height > 2 * widget.region.height  # the data keeps its rows
        assert table.row_count == 4


async def test_without_colour_every_run_has_its_own_marker(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    store = RunStore(tmp_path)
    quick_runs(store, norms=("L1", "L2", "Linf-image"))
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=3)
        await pilot.press("space", "down", "space", "down", "space")
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        symbols = [line.split()[0] for line in legend(app).split("   ") if line.strip()]
        assert len(symbols) == 3 and len(set(symbols)) == 3 and "⢕⢕" not in symbols
        plot = str(app.query_one(PlotextPlot).render())
        assert all(symbol[0] in plot for symbol in symbols)  # each marker is on the plot


async def test_help_opens_with_question_mark_and_closes_with_escape(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).render())
        for key in ("s  start", "x  stop", "m  next metric", "e  export", "space  overlay", "d  delete", "q  quit"):
            assert key in text
        assert "dashed line is PCA" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_palette_offers_the_apps_actions_and_overlays_all_or_none(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=2)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in (
            "Start a run",
            "Stop the run",
            "Resume the run",
            "Start a study",
            "Overlay all runs",
            "Overlay none",
            "Export the chart",
            "Export runs as CSV",
            "Open the run",
            "Delete the run",
            "Next metric",
            "Keys and panes",
        ):
            assert title in titles
        app.main.overlay_all()  # each overlay is a message to the screen: under load one pause is not enough
        chart = app.query_one(LossChart).model
        await wait_for(pilot, lambda: set(chart.overlays) == {r.id for r in runs})
        app.main.overlay_none()
        await wait_for(pilot, lambda: not chart.overlays)
        assert app.query_one(LossChart).model.overlays == {} and app.query_one(RunsTable).overlay_ids == set()
        commands = {command.title: command.callback for command in app.get_system_commands(app.screen)}
        commands["Open the run"]()
        await pilot.pause()
        assert isinstance(app.screen, DetailsScreen) and app.screen.run.id == runs[1].id  # the highlighted, newest
        title = str(app.screen.query_one("#details-title", Static).render())
        assert title == f"{runs[1].id}  completed 2 epochs"  # was "completed  completed 2 epochs"
        await pilot.press("escape")
        commands["Delete the run"]()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        notes = recording_notify(app)
        commands["Export runs as CSV"]()
        await wait_for(pilot, lambda: any("exported" in n for n, _ in notes))
        (path,) = (tmp_path / "exports").glob("runs-*.csv")
        import csv

        rows = list(csv.DictReader(path.open()))
        assert sorted({r["run"] for r in rows}) == sorted(r.id for r in runs) and len(rows) == 4  # 2 runs x 2 epochs
        assert "exported 2 runs (4 epoch rows)" in notes[-1][0]


async def test_export_writes_the_charts_view_as_png_and_svg(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store)
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")  # nothing on the chart yet: says so
        assert "nothing on the chart" in notes[-1][0]
        await focused_table(pilot, rows=2)
        await pilot.press("space", "down", "space", "m")  # two runs, val PSNR
        await pilot.press("e")
        await wait_for(pilot, lambda: any("chart exported" in n for n, _ in notes))
        png, svg = sorted((tmp_path / "exports").iterdir())
        assert png.suffix == ".png" and svg.suffix == ".svg" and "psnr" in png.name
        assert str(png) in notes[-1][0] and str(svg) in notes[-1][0]
        with Image.open(png) as image:
            assert image.size[0] > 600
        drawn = svg.read_text()
        assert all(f"{r.info().norm} {r.id[-6:]}" in drawn for r in runs) and "val PSNR (dB)" in drawn


async def test_an_overlaid_rows_mark_has_its_curves_colour_and_keeps_it(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store, norms=("L1", "L2", "Linf-image"))
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=3)
        await pilot.press("space", "down", "space", "down", "space")  # newest first: Linf-image, L2, L1
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        chart = app.query_one(LossChart)
        slots = dict(
            zip(chart.model.overlays, chart.model.series_slots(), strict=False)
        )  # no live run: one slot per overlay

        def mark(run):
            return table.get_cell(run.id, "overlay")

        colours = {run.id: str(mark(run).style) for run in runs}
        assert len(set(colours.values())) == 3 and all(c.startswith("rgb(") for c in colours.values())
        for run in runs:  # the mark's colour is the run's curve colour in the palette
            assert colours[run.id] == "rgb({},{},{})".format(*PALETTE_RGB[slots[run.id]])
        # ... also as drawn on the row under the cursor (the oldest run, L1), whose colours the cursor's
        # style took over: that row's mark was drawn in the cursor's foreground
        drawn = table.render_line(1 + table.cursor_row)  # line 0 is the header
        (mark_segment,) = [segment for segment in drawn if "●" in segment.text]
        assert tuple(mark_segment.style.color.get_truecolor()) == tuple(PALETTE_RGB[slots[runs[0].id]])
        await pilot.press("up", "up", "space")  # take the newest off: the others keep their colours
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        assert str(mark(runs[2]).style) == "" and mark(runs[2]).plain == " "
        assert [str(mark(r).style) for r in runs[:2]] == [colours[r.id] for r in runs[:2]]


async def test_deleting_the_run_being_trained_is_refused_at_once(tmp_path):
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(100, 32)) as pilot:
        await set_fields(pilot, epochs="200", dataset="synthetic", **{"batch-size": "32"})
        await press_start(pilot)
        table = await focused_table(pilot, rows=1)
        await pilot.press("d")  # on its `starting` row, before the run has files
        assert not isinstance(app.screen, ConfirmScreen)  # no question whose answer is refused
        assert any("is being trained: stop it first" in n for n, _ in notes)
        await wait_for(pilot, lambda: table.starting is None and table.row_count == 1)
        notes.clear()
        await pilot.press("d")  # on the run's own row, listed as running
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("is being trained: stop it first" in n for n, _ in notes)
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.controller.training)
        assert table.row_count == 1 and len(store.runs()) == 1


async def test_the_details_screen_scrolls_to_the_error_maps_on_a_small_terminal(tmp_path):
    store = RunStore(tmp_path)
    quick_runs(store, norms=("L1",))
    app = NormcompressApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await focused_table(pilot, rows=1)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        container = app.screen.query_one("#details")
        preview = app.screen.query_one("#details-preview")
        assert container.max_scroll_y > 0 and preview.region.bottom > 24  # below the fold at first
        container.scroll_to_widget(preview, animate=False, top=True)
        await pilot.pause()
        assert 0 < preview.region.bottom <= 24 and preview.region.height > 0
        history = app.screen.query_one("#details-history")  # below the error maps: the image history
        container.scroll_end(animate=False)
        await pilot.pause()
        assert 0 < history.region.bottom <= 24 and history.region.height > 0


async def test_a_screenshot_goes_to_the_stores_exports_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    store = RunStore(tmp_path / "runs")
    app = NormcompressApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_screenshot()
        await wait_for(
            pilot,
            lambda: (tmp_path / "runs" / "exports").is_dir() and any((tmp_path / "runs" / "exports").glob("*.svg")),
        )
        (svg,) = (tmp_path / "runs" / "exports").glob("*.svg")
        assert svg.read_text().startswith("<svg") and "normcompress" in svg.read_text()


def row_texts(table) -> list[str]:
    """Each row as the user reads it: its cells' text, in the order shown."""
    return [" ".join(cell.plain.strip() for cell in table.get_row_at(i)) for i in range(table.row_count)]


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_runs_table_tells_runs_apart_at_any_width(tmp_path, size):
    store = RunStore(tmp_path)
    runs = quick_runs(store, norms=("L1", "0.5*L1+0.5*L2"))
    runs[0].update_tags(add=["baseline"])
    app = NormcompressApp(store)
    async with app.run_test(size=size) as pilot:
        table = await focused_table(pilot, rows=2)
        await pilot.press("space", "down", "space")
        await pilot.pause(REDRAW_INTERVAL_S + 0.3)
        keys = [c.key for c in table.shown_columns]
        assert keys[:7] == ["overlay", "short", "norm", "seed", "status", "epochs", "psnr"]
        assert table.virtual_size.width <= table.scrollable_content_region.width  # nothing scrolled out of view
        for run, text in zip(reversed(runs), row_texts(table), strict=False):  # newest first
            info = run.info()
            assert text.startswith(f"● {run.id[-6:]} ")  # the id the legend shows, beside the overlay mark
            assert f"{info.metrics['best_psnr']:.2f}" in text and "2/2" in text
            assert f"{info.norm[:9]}" in text
            assert f"{info.norm} {run.id[-6:]}" in legend(app)
        if size[0] >= 200:  # wide: the rest of what tells runs apart, in full
            assert {"tags", "lr", "model", "dataset", "batch"} <= set(keys)
            assert "completed" in row_texts(table)[0] and "baseline" in row_texts(table)[1]
        else:  # narrow: the status as a mark, a long norm cut
            assert "✓" in row_texts(table)[0] and "0.5*L1+0.…" in row_texts(table)[0]


async def test_sort_by_a_column_and_filter_by_text(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store, norms=("L2", "L1", "Linf-image"))
    runs[2].update_tags(add=["keep-me"])
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=3)
        assert [t.split()[0] for t in row_texts(table)] == [r.id[-6:] for r in reversed(runs)]  # newest first
        await pilot.press("o", "o")  # id -> the short id -> the norm
        assert table.sort_key == "norm"
        assert [t.split()[0] for t in row_texts(table)] == [r.id[-6:] for r in (runs[1], runs[0], runs[2])]
        await pilot.press("o")  # seed: equal for all, ties stay newest first
        table.sort_by("norm")
        table.sort_by("norm")  # the same column again turns the order round
        assert [t.split()[1] for t in row_texts(table)] == ["Linf-image", "L2", "L1"]
        await pilot.press("slash")
        assert app.focused.id == "filter"
        await pilot.press(*"l1")
        assert [t.split()[1] for t in row_texts(table)] == ["L1"]
        assert "1 of 3 match 'l1'" in table.border_subtitle
        app.query_one("#filter", Input).value = "keep"  # tags are searched
        await pilot.pause()
        assert [t.split()[0] for t in row_texts(table)] == [runs[2].id[-6:]]
        app.query_one("#filter", Input).value = "lr=0.003 epochs=2 L2"  # settings too, every word must match
        await pilot.pause()
        assert [t.split()[1] for t in row_texts(table)] == ["L2"]
        await pilot.press("escape")
        assert table.row_count == 3 and app.focused is table and not app.query_one("#filter").display


async def test_a_tag_typed_in_the_app_is_saved_in_the_store(tmp_path):
    store = RunStore(tmp_path)
    (run,) = quick_runs(store, norms=("L1",))
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=1)
        await pilot.press("t")
        await pilot.press(*"best", "space", *"[red]x")  # a word that is not a tag: refused, nothing saved
        await pilot.press("enter")
        await pilot.pause()
        assert run.tags() == () and not (run.path / "tags.json").exists()
        await pilot.press("t", *"best", "space", *"lr-sweep", "enter")
        await wait_for(pilot, lambda: table.infos[run.id].tags == ("best", "lr-sweep"))
        assert RunStore(tmp_path).get(run.id).tags() == ("best", "lr-sweep")
        assert "tags" in [c.key for c in table.shown_columns] and "best lr-sweep" in row_texts(table)[0]
        await pilot.press("t", "escape")  # Escape leaves them as they were
        await pilot.pause()
        assert run.tags() == ("best", "lr-sweep")


async def test_the_x_axis_counts_epochs_steps_or_time_and_the_zoom_cuts_epochs(tmp_path):
    store = RunStore(tmp_path)
    runs = [
        train(TrainConfig(norm=n, epochs=3, dataset="synthetic", limit=128, batch_size=32, device="cpu"), store)
        for n in ("L1", "L2")
    ]
    seconds = {r.id: sum(rec["epoch_time_s"] for rec in r.metrics()) for r in runs}
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=2)
        await pilot.press("space", "down", "space")
        chart = app.query_one(LossChart)
        plot = app.query_one(PlotextPlot)

        def ends() -> list[float]:
            return [max(xs) for _, xs, _ in chart.model.view()[0]]

        assert ends() == pytest.approx([3, 3])
        await pilot.press("v")  # steps: 128 images in batches of 32 = 4 a epoch
        assert chart.model.x_axis == "step" and ends() == pytest.approx([12, 12])
        assert "step" in str(plot.render())
        await pilot.press("v")  # training time, from each epoch's recorded time
        assert chart.model.view()[2] == "training time (s)"
        assert ends() == pytest.approx([seconds[runs[1].id], seconds[runs[0].id]])  # newest first
        await pilot.press("v")
        assert chart.model.x_axis == "epoch"
        await pilot.press("Z", *"2-3", "enter")
        assert chart.model.zoom == (2.0, 3.0)
        starts = [min(xs) for _, xs, _ in chart.model.view()[0]]
        assert all(x > 1.0 for x in starts)  # only the steps of epochs 2 and 3
        assert "epochs 2-3" in str(plot.render())
        await pilot.press("Z", *"abc", "enter")  # not a zoom: said, and the zoom stays
        assert chart.model.zoom == (2.0, 3.0) and "is not a zoom" in notes[-1][0]
        await pilot.press("z")  # z steps on from wherever the zoom is: every epoch first
        assert chart.model.zoom == 10
        await pilot.press("v", "v", "e")  # the export is the view: time axis, zoomed
        await wait_for(pilot, lambda: any("chart exported" in n for n, _ in notes))
        (svg,) = (tmp_path / "exports").glob("*.svg")
        assert "training time (s)" in svg.read_text() and "last 10 epochs" in svg.read_text()


def test_the_preview_lays_the_reconstructions_out_again_to_fill_its_pane():
    from normcompress_tui.widgets.preview import best_band_width, grid_columns, relayout

    side, pad, columns = 6, 2, 8  # a recon.png as comparison_grid draws it: 3 rows of 8 tiles, 2 px apart
    step = side + pad
    grid = Image.new("RGB", (columns * step + pad, 3 * step + pad), "white")
    for row in range(3):
        for column in range(columns):
            grid.paste(
                (column * 30, row * 100, 7),
                (pad + column * step, pad + row * step, pad + column * step + side, pad + row * step + side),
            )
    assert grid_columns(grid.size) == (columns, side)
    assert grid_columns((100, 57)) is None  # not our layout: shown as it is
    assert best_band_width(columns, width_cells=150, height_cells=20) == 8  # wide: one band
    assert best_band_width(columns, width_cells=34, height_cells=30) in (2, 4)  # tall: bands of fewer, larger
    two_bands = relayout(grid, 4)
    assert two_bands.size == (4 * step + pad, 2 * (3 * step + pad) + 2 * pad)
    for column in range(columns):  # each tile of the second band sits under its band's first row
        band, place = divmod(column, 4)
        for row in range(3):
            x = pad + place * step + side // 2
            y = band * (3 * step + pad + 2 * pad) + pad + row * step + side // 2
            assert two_bands.getpixel((x, y)) == (column * 30, row * 100, 7)


@pytest.mark.parametrize("size, one_band", [((200, 30), True), ((90, 60), False)])
async def test_the_preview_grows_with_its_pane(tmp_path, size, one_band):
    store = RunStore(tmp_path)
    quick_runs(store, norms=("L1",))
    app = NormcompressApp(store)
    async with app.run_test(size=size) as pilot:
        preview = app.query_one("#preview")
        await wait_for(pilot, lambda: preview.per_band is not None)
        assert (preview.per_band == 8) == one_band  # a wide pane: one band of 8; a tall one: several
        image = app.query_one("#preview-image")
        assert image.region.bottom <= preview.region.bottom and image.region.right <= preview.region.right


async def test_the_picture_is_laid_out_for_a_new_captions_height_at_once(tmp_path):
    """The picture's height is the pane's less its caption's. Read from the caption's last layout, a
    caption going from two lines to one left the picture a row short and a column narrow (a snapshot on
    the CI machine caught it, where the layout pass meant to correct it came first)."""
    (run,) = quick_runs(RunStore(tmp_path), norms=("L1",))
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        preview, image = app.query_one("#preview"), app.query_one("#preview-image")
        await wait_for(pilot, lambda: preview.per_band is not None)
        await pilot.pause(0.2)
        settled = str(image.styles.width)
        preview.say("a caption too long for one line of the pane: " * 2)  # laid out over two lines
        await pilot.pause(0.2)
        preview.show(run.recon_path, "L1, one line")
        assert str(image.styles.width) == settled  # before any layout pass has measured the new caption


async def test_the_form_the_view_and_the_overlays_come_back_at_the_next_launch(tmp_path):
    store = RunStore(tmp_path)
    runs = quick_runs(store)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await focused_table(pilot, rows=2)
        await set_fields(pilot, epochs="7", seed="3", **{"custom-norm": "Lp:3"})
        await pilot.press("space", "m", "a", "l", "v", "z")  # overlay the newest; psnr, smooth, log, step, zoom
        app.query_one(RunsTable).sort_by("norm", reverse=False)
        await pilot.press("q")
    saved = json.loads((tmp_path / ".app-state.json").read_text())
    assert saved["form"]["epochs"] == "7" and saved["runs"]["overlays"] == [runs[1].id]
    assert [r.id for r in store.runs()] == [r.id for r in runs]  # the state file is not a run

    again = NormcompressApp(RunStore(tmp_path))
    async with again.run_test(size=(120, 40)) as pilot:
        table = again.query_one(RunsTable)
        chart = again.query_one(LossChart)
        await wait_for(pilot, lambda: table.overlay_ids == {runs[1].id} and set(chart.model.overlays) == {runs[1].id})
        assert (chart.metric, chart.smoothing, chart.log_scale, chart.model.x_axis, chart.model.zoom) == (
            "psnr",
            0.6,
            True,
            "step",
            10,
        )
        assert again.query_one("#epochs", Input).value == "7" and again.query_one("#seed", Input).value == "3"
        config = again.query_one("Controls").config()
        assert config.norm == "Lp:3" and config.epochs == 7 and config.seed == 3
        assert (table.sort_key, table.sort_reverse) == ("norm", False)


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xffnot json",
        b'{"version": 1, "form": {"epochs": "' + b"9" * 5000 + b'", "norm": "[red]x", "device": "cuda:9"}, '
        b'"chart": {"metric": "[bold]", "smoothing": true, "log": "yes", "x_axis": "../etc", "zoom": "-3"}, '
        b'"runs": {"overlays": ["../../etc", 7, null], "sort": "overlay", "descending": 1}}',
        b"[1, 2, 3]",
    ],
)
async def test_a_damaged_or_hostile_state_file_is_ignored(tmp_path, content):
    store = RunStore(tmp_path)
    quick_runs(store, norms=("L1",))
    (tmp_path / ".app-state.json").write_bytes(content)
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=1)
        await pilot.pause()
        chart = app.query_one(LossChart)
        assert (chart.metric, chart.smoothing, chart.log_scale, chart.model.x_axis, chart.model.zoom) == (
            "loss",
            0.0,
            False,
            "epoch",
            None,
        )
        assert app.query_one("Controls").config().epochs == 10 and table.overlay_ids == set()
        assert table.sort_key == "id"
        if not content.startswith(b'{"version"'):
            assert any("saved state was ignored" in n for n, _ in notes)


async def test_the_form_says_what_is_wrong_as_you_type_in_its_own_words(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        notes = recording_notify(app)
        await set_fields(pilot, epochs="0", lr="-1")
        status = str(app.query_one("#form-status", Static).render())
        assert "Epochs must be between 1 and 100,000" in status and "LR must be a positive number" in status
        await press_start(pilot)
        assert not app.controller.training and "Epochs must be between 1 and 100,000" in notes[-1][0]
        await set_fields(pilot, epochs="3", lr="0.01")
        assert not app.query_one("#form-status").display
        assert not app.query_one("#norm").disabled
        await set_fields(pilot, **{"custom-norm": "0.5*L1+0.5*L2"})
        assert app.query_one("#norm").disabled  # the custom norm is what trains: the list is not in play
        assert "trains instead of the Norm list" in str(app.query_one("#norm-status", Static).render())


async def test_r_resumes_an_interrupted_run_from_its_last_epoch(tmp_path):
    import threading

    store = RunStore(tmp_path)
    stop = threading.Event()
    config = TrainConfig(norm="L1", epochs=3, dataset="synthetic", limit=128, device="cpu")
    run = train(config, store, lambda e: stop.set() if isinstance(e, EpochEnd) else None, stop)
    assert run.info().status == "interrupted" and run.info().epochs_done == 1
    (done,) = [train(TrainConfig(norm="L2", epochs=1, dataset="synthetic", limit=128, device="cpu"), store)]
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await focused_table(pilot, rows=2)
        assert table.highlighted_info().id == done.id
        await pilot.press("r")  # the newest, completed: nothing to resume
        assert not app.controller.training and "only an interrupted or failed run can be resumed" in notes[-1][0], notes
        await pilot.press("down", "r")
        stats = str(app.query_one("#stats", Label).render())  # at once, before the child has loaded torch
        assert f"starting the resume of L1 {run.id[-6:]} (" in stats, stats  # the run as the table names it
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: not app.controller.training)
        assert not any(severity == "error" for _, severity in notes), notes
        info = RunStore(tmp_path).get(run.id).info()
        assert info.status == "completed" and info.epochs_done == 3
        assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
        assert [r["epoch"] for r in chart.model.current_epochs] == [1, 2, 3]  # the first epoch stayed on the chart
        assert len(RunStore(tmp_path).runs()) == 2 and table.row_count == 2  # no new run


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without the run's CUDA device")
async def test_r_resumes_a_run_whose_device_is_not_here_on_the_run_panes(tmp_path):
    """A run trained with --device cuda on a GPU box, its store copied to a laptop: r failed with "device
    cuda asked for CUDA", and nothing in the app could move it, where the CLI's --device could."""
    import threading

    store = RunStore(tmp_path)
    stop = threading.Event()
    config = TrainConfig(norm="L1", epochs=2, dataset="synthetic", limit=128, device="cpu")
    run = train(config, store, lambda e: stop.set() if isinstance(e, EpochEnd) else None, stop)
    saved = run.path / "config.json"
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "device": "cuda"}))  # as the GPU box saved it
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.query_one(Controls).devices_known)
        await set_fields(pilot, device="cpu")
        await focused_table(pilot, rows=1)
        await pilot.press("r")
        await wait_for(pilot, lambda: not app.controller.training)
        assert not any(severity == "error" for _, severity in notes), notes
        assert f"L1 {run.id[-6:]} trained on cuda, which is not here: it goes on on cpu" in notes[0][0]
        info = RunStore(tmp_path).get(run.id).info()
        assert info.status == "completed" and info.epochs_done == 2 and info.summary.device == "cpu"


def count_children(monkeypatch) -> list:
    """Every training child the app starts: the arguments of each Popen of normcompress_tui.trainer."""
    from normcompress_tui import trainer as trainer_module

    children, real = [], trainer_module.subprocess.Popen

    def spy(args, *rest, **kwargs):
        children.append(args)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(trainer_module.subprocess, "Popen", spy)
    return children


async def test_a_studys_runs_train_in_one_child_process(tmp_path, monkeypatch):
    children = count_children(monkeypatch)
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await set_fields(pilot, epochs="1", dataset="synthetic", **{"batch-size": "256"})
        await start_study(pilot, "L2, L1", "1")
        await wait_for(pilot, lambda: not app.controller.training)
        assert app.query_one(StudyQueue).states == {"L2 seed 0": "finished", "L1 seed 0": "finished"}
        chart = app.query_one(LossChart).model  # each run overlaid as it finished, each drawn once
        await wait_for(pilot, lambda: len(chart.overlays) == 2)
        assert sorted(chart.overlays) == sorted(i.id for i in store.infos()) and not chart.current_epochs
        assert app.query_one(RunsTable).overlay_ids == set(chart.overlays)
    # One child for the study: torch, the optimizer's imports and the data are loaded once, not per run.
    assert len(children) == 1 and children[0][1:3] == ["-m", "normcompress_tui.trainer"]
    assert sorted(i.norm for i in store.infos() if i.status == "completed") == ["L1", "L2"]


async def test_a_study_with_stack_on_trains_its_runs_together_in_one_child_and_the_chart_shows_them_all(
    tmp_path, monkeypatch
):
    children = count_children(monkeypatch)
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await set_fields(pilot, epochs="2", dataset="synthetic", **{"batch-size": "256"})
        await start_study(pilot, "L2, L1", "1", stack="on")
        await wait_for(pilot, lambda: not app.controller.training)
        assert app.query_one(StudyQueue).states == {"L2 seed 0": "finished", "L1 seed 0": "finished"}
        chart = app.query_one(LossChart).model
        # Both runs on the chart once, as overlays, each with its own two epochs from the store.
        await wait_for(pilot, lambda: len(chart.overlays) == 2 and not chart.current_epochs)
        for info in store.infos():
            _, records = chart.overlays[info.id]
            assert [r["loss"] for r in records] == [r["loss"] for r in store.get(info.id).metrics()]
    assert len(children) == 1  # one child for the study and its stack
    runs = store.runs()
    assert sorted(r.info().status for r in runs) == ["completed", "completed"]
    assert all("trained in a stack of 2 runs" in r.summary().notices for r in runs)


async def test_a_study_stacks_by_itself_only_where_its_runs_train_on_cuda(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(
        training_module, "study_in_process", lambda study, *args, **kwargs: asked.append(study.stack) or []
    )
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        controls = app.main.controls
        await wait_for(pilot, lambda: controls.devices_known)
        controller = app.controller
        for cuda in (False, True):  # this machine's answer, whatever it has; then a GPU box's
            controls.cuda_available = cuda
            assert controller.on_cuda("auto") is cuda and not controller.on_cuda("cpu") and controller.on_cuda("cuda:1")
            await start_study(pilot, "L2, L1", "1")  # the device as the Run pane has it: auto
            await wait_for(pilot, lambda: not controller.training)
        assert asked == [False, True]
        app.query_one(RunsTable).focus()
        await pilot.press("S")
        app.screen.query_one("#study-stack", Input).value = "sometimes"
        app.screen.query_one("#study-stack", Input).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, StudyScreen)  # refused, and still open
        assert "Stack: 'sometimes' is not one of auto, on, off" in str(app.screen.query_one("#study-problem").render())


async def test_a_study_queue_of_two_norms_by_two_seeds_completes_and_survives_a_failure(tmp_path, monkeypatch):
    import normcompress.train as engine

    monkeypatch.setenv(training_module.TRAINING_ENV, "thread")  # in this process, where the failure is planted

    real_train = engine.train

    def failing_once(config, *args, **kwargs):  # one run of the queue fails as a diverging run would
        if config.norm == "L1" and config.seed == 0:
            raise engine.TrainingFailed("the loss became NaN at epoch 1")
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(engine, "train", failing_once)
    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await set_fields(pilot, epochs="1", dataset="synthetic", **{"batch-size": "256"})
        await start_study(pilot, "L2, L1", "2")
        queue = app.query_one(StudyQueue)
        assert app.controller.training and queue.display and queue.total == 4
        await wait_for(pilot, lambda: not app.controller.training)
        assert queue.states == {
            "L2 seed 0": "finished",
            "L2 seed 1": "finished",
            "L1 seed 0": "failed",
            "L1 seed 1": "finished",
        }
        assert "NaN" in queue.failures["L1 seed 0"] and any("the study goes on" in n for n, _ in notes)
        assert "done: 3 of 4 runs completed" in str(queue.render())
        completed = [(i.norm, i.config.seed) for i in store.infos() if i.status == "completed"]
        assert sorted(completed) == [("L1", 1), ("L2", 0), ("L2", 1)]
        await pilot.press("S")  # the same study again: the three runs done are reused, not trained again
        app.screen.query_one("#study-norms", Input).value = "L2, L1"
        app.screen.query_one("#study-seeds", Input).focus()
        app.screen.query_one("#study-seeds", Input).value = "2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.controller.training)
        assert [queue.states[k] for k in ("L2 seed 0", "L2 seed 1", "L1 seed 1")] == ["reused"] * 3
        assert len(store.runs()) == 3
        assert str(app.query_one("#epoch-label", Label).render()) == "done"  # no spinner left turning
        assert "done: 3 of 4 runs completed" in str(app.query_one("#stats", Label).render())


async def test_a_bad_custom_norm_in_the_run_pane_does_not_keep_a_study_from_opening(tmp_path):
    """The study names its own norms, but S refused to open ('Cannot start a study: malformed norm')
    while the Run pane's Custom field held a norm that does not parse."""
    app = NormcompressApp(RunStore(tmp_path))
    notes = recording_notify(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await set_fields(pilot, **{"custom-norm": "0.5*L1+[red]Lq"})
        app.query_one(RunsTable).focus()
        await pilot.press("S")
        assert isinstance(app.screen, StudyScreen), notes
        assert app.screen.base.norm == "L2"  # the list's norm stands in; the study's Norms replace it
        await pilot.press("escape")
        await pilot.press("s")  # a run, which trains the Custom norm, is still refused
        assert not app.controller.training and any("malformed norm" in n for n, _ in notes)


async def test_the_study_screen_refuses_a_bad_norm_and_stays_open(tmp_path):
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("S")
        app.screen.query_one("#study-norms", Input).value = "L2, [red]L9"
        app.screen.query_one("#study-norms", Input).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, StudyScreen) and not app.controller.training
        problem = str(app.screen.query_one("#study-problem", Static).render())
        assert "✗" in problem and "[red]L9" in problem  # shown as typed: text, not markup
        await pilot.press("escape")
        assert not isinstance(app.screen, StudyScreen)


class FakeNvml:
    """Two GPUs as NVML would report them (this machine has none): the line's GPU part is checked here,
    and against the real driver when the tests run on the GPU machine."""

    count = 2

    def read(self, index):
        return [(97, 5.12, 79.6), (3, 0.5, 79.6)][index]


async def test_the_system_line_shows_cpu_memory_and_each_gpu(tmp_path):
    import psutil

    from normcompress_tui.widgets.system_line import SystemLine, pack, system_text

    assert (
        system_text(97.4, 180.2, 3 * 2**30 // 2, 2, [(97, 5.12, 79.6)])
        == "CPU 97% · app 180% of 2 cores · RSS 1.50 GiB · GPU0 97% 5.1/79.6 GiB"
    )
    assert pack("CPU 97% · app 180% of 2 cores · RSS 1.50 GiB", 30) == "CPU 97% · app 180% of 2 cores\nRSS 1.50 GiB"
    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        line = app.query_one(SystemLine)
        await wait_for(pilot, lambda: line.last)
        rss_shown = float(line.last.split("RSS ")[1].split(" GiB")[0])
        assert abs(rss_shown - psutil.Process().memory_info().rss / 2**30) < 0.25  # this process, in GiB
        assert f"of {psutil.cpu_count()} cores" in line.last
        line.nvml = FakeNvml()
        line.sample()
        assert line.last.endswith("GPU0 97% 5.1/79.6 GiB · GPU1 3% 0.5/79.6 GiB")
        assert "GPU1 3%" in str(line.render()) and all(
            len(x) <= line.content_region.width for x in str(line.render()).splitlines()
        )


def test_a_failure_in_the_training_process_comes_back_as_one_line(tmp_path):
    import threading

    from normcompress_tui.trainer import TrainingProcessError, train_in_process

    missing = tmp_path / "no-such-folder"
    events = []
    with pytest.raises(TrainingProcessError) as failure:
        train_in_process(
            TrainConfig(norm="L1", epochs=1, dataset=f"folder:{missing}", device="cpu"),
            RunStore(tmp_path / "runs"),
            events.append,
            threading.Event(),
        )
    assert "does not exist" in str(failure.value) and "\n" not in str(failure.value)
    assert "Traceback" not in str(failure.value)


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/status"), reason="reads Linux's per-thread counters")
def test_the_thread_that_relays_a_child_run_sleeps_until_the_child_speaks(tmp_path):
    """On two cores each wake-up of the app's relaying thread is taken from training: it blocks on the
    event pipe (a stop is passed on by a watcher that waits on the cancel flag) instead of polling it
    ten times a second, which woke it 20-30 times while the child alone started up."""
    from normcompress_tui.trainer import train_in_process

    def switches() -> int:  # times this thread blocked (waited) since it started
        status = open("/proc/thread-self/status").read()
        return int(status.split("voluntary_ctxt_switches:")[1].split()[0])

    events = []
    before, started = switches(), time.monotonic()
    train_in_process(
        TrainConfig(norm="L1", epochs=3, dataset="synthetic", limit=2048, device="cpu"),
        RunStore(tmp_path),
        events.append,
        threading.Event(),
        progress_interval_s=3600,
    )
    blocked, seconds = switches() - before, time.monotonic() - started
    assert [type(e).__name__ for e in events][-1] == "RunEnded" and seconds > 1  # the child's start alone
    # About a wait for each event (a message can arrive in two reads; starting and reaping the child wait
    # too), and far below polling's ten a second: on a loaded machine 8 events once took 14 waits.
    assert blocked <= 2 * len(events) + 5, (blocked, len(events), seconds)


def test_the_training_process_stops_and_keeps_the_run_when_its_app_dies(tmp_path):
    """kill -9 of the app (or a dropped SSH session) must not leave a run training forever, unwatched."""
    driver = (
        "import sys, threading\n"
        "from normcompress.config import TrainConfig\n"
        "from normcompress.runs import RunStore\n"
        "from normcompress_tui.trainer import train_in_process\n"
        "def on(event):\n"
        "    print(type(event).__name__, flush=True)\n"
        "train_in_process(TrainConfig(norm='L1', epochs=500, dataset='synthetic', limit=256, batch_size=32,\n"
        "                             device='cpu'), RunStore(sys.argv[1]), on, threading.Event())\n"
    )
    app = subprocess.Popen([sys.executable, "-c", driver, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    while app.stdout.readline().strip() != "EpochEnd":  # the run is under way in the child
        assert app.poll() is None
    app.kill()
    app.wait()
    store = RunStore(tmp_path)
    (run,) = store.runs()
    deadline = time.monotonic() + 120
    while run.is_live() and time.monotonic() < deadline:  # the child notices within a batch or two
        time.sleep(0.2)
    info = run.info()
    assert not run.is_live() and info.status == "interrupted" and 1 <= info.epochs_done < 500


def start_training_child() -> tuple[subprocess.Popen, int]:
    """A training child as the app starts one, and the reading end of its event pipe."""
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "normcompress_tui.trainer", str(write_fd)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    return child, read_fd


def test_a_child_whose_event_pipe_breaks_stops_and_keeps_the_run(tmp_path):
    """The app can die between two events: then the child's next event meets a closed pipe before its
    stdin watcher sees the end (seen on a 16-core machine, where the run was kept as failed). It must
    stop as if asked, keeping the run interrupted."""
    from normcompress_tui.trainer import _messages

    child, read_fd = start_training_child()
    config = TrainConfig(norm="L1", epochs=500, dataset="synthetic", limit=256, batch_size=32, device="cpu")
    child.stdin.write(pickle.dumps((("run", config, None, None), str(tmp_path), 0.01)))
    child.stdin.flush()  # ... and stdin stays open: only the pipe tells the child that the app is gone
    buffer, seen = bytearray(), []
    while not any(kind == "event" and isinstance(event, EpochEnd) for kind, event in seen):
        seen += _messages(read_fd, buffer)
    os.close(read_fd)
    stderr = child.communicate()[1].decode()
    (run,) = RunStore(tmp_path).runs()
    info = run.info()
    assert info.status == "interrupted" and 1 <= info.epochs_done < 500, (info.status, run.summary().message)
    assert "Traceback" not in stderr


def test_a_child_given_a_request_it_cannot_read_says_why(tmp_path):
    """A request of another version of the module (the package upgraded under a running app) failed
    before the child's reporting began: the app read "exit code -6: <no Python frame>", the abort of a
    child whose stdin watcher still held the pipe at exit."""
    from normcompress_tui.trainer import _messages

    child, read_fd = start_training_child()
    child.stdin.write(pickle.dumps((("run", TrainConfig(), None), str(tmp_path), 0.01)))  # three items, not four
    child.stdin.flush()
    buffer, seen = bytearray(), []
    while not seen:
        seen += _messages(read_fd, buffer)
    child.stdin.close()  # as the app does once the child has answered
    os.close(read_fd)
    assert seen == [("error", "ValueError: not enough values to unpack (expected 4, got 3)")]
    assert child.wait() == 0 and not RunStore(tmp_path).runs()


async def test_the_disabled_stop_button_stays_readable_in_every_colour_system(tmp_path):
    """Textual's disabled look (dimmed twice on a faded fill) was grey on grey under TERM=xterm."""
    from rich.color import ColorSystem

    def luminance(color) -> float:
        channels = [c / 255 for c in color.get_truecolor()]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(100, 30)):
        stop = app.query_one("#stop")
        assert stop.disabled
        style = stop.rich_style  # its colours before the opacity and dimming Textual applies later
        assert stop.styles.text_opacity == 1 and not style.dim and "dim" not in str(stop.styles.text_style)
        bright, dark = sorted((luminance(style.color), luminance(style.bgcolor)), reverse=True)
        assert (bright + 0.05) / (dark + 0.05) >= 4.5  # WCAG AA for text
        for system in (ColorSystem.STANDARD, ColorSystem.EIGHT_BIT):  # TERM=xterm, xterm-256color
            assert style.color.downgrade(system) != style.bgcolor.downgrade(system)


async def test_a_new_picture_of_the_same_size_is_repainted_without_a_layout_pass(tmp_path, monkeypatch):
    """A live run's preview is replaced every few seconds by a picture of the same size; a layout pass of
    the whole screen (the library's setter asks for one each time) cost training ~50 ms on two cores."""
    from textual.app import App
    from textual.screen import Screen

    from normcompress_tui.widgets.preview import ReconstructionPreview

    pictures = {}
    for name, colour, size in (
        ("dark", (20, 20, 20), (66, 26)),
        ("light", (230, 230, 230), (66, 26)),
        ("wide", (0, 200, 0), (130, 26)),
    ):  # 3 rows of 8 (or 16) tiles of 6 px
        pictures[name] = tmp_path / f"{name}.png"
        Image.new("RGB", size, colour).save(pictures[name])
    layouts = []
    refresh_layout = Screen._refresh_layout
    monkeypatch.setattr(
        Screen, "_refresh_layout", lambda screen, *a, **k: (layouts.append(1), refresh_layout(screen, *a, **k))[1]
    )

    class PreviewApp(App):
        def compose(self):
            yield ReconstructionPreview()

    app = PreviewApp()
    async with app.run_test(size=(60, 20)) as pilot:
        preview, image = app.query_one(ReconstructionPreview), app.query_one("#preview-image")

        def drawn() -> str:  # without a terminal textual-image draws shades of grey as characters
            return "".join(strip.text for strip in image.render_lines(image.region.reset_offset))

        preview.show(pictures["dark"], "dark")
        await pilot.pause()
        dark, before = drawn(), len(layouts)
        preview.show(pictures["light"], "light")
        await pilot.pause()
        assert len(layouts) == before  # no layout pass
        assert drawn().strip() and drawn() != dark  # but the new picture is what is drawn
        preview.show(pictures["wide"], "wide")
        await pilot.pause()
        assert len(layouts) > before  # another size: laid out again


async def test_a_tick_or_an_event_while_the_app_is_taken_down_is_dropped(tmp_path):
    """Seen on a 16-core machine: the tick fired between two widgets' removal as the app closed, and
    the app ended in a NoMatches traceback. Here the widgets are removed first, as teardown does."""
    from normcompress_tui.messages import TrainingEvent
    from normcompress_tui.widgets.system_line import SystemLine

    app = NormcompressApp(RunStore(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        for widget_type in (SystemLine, TrainingProgress, LossChart):
            await app.query_one(widget_type).remove()
        app.main.tick()
        app.post_message(TrainingEvent(StepProgress(1, 3, 4, 4, 0.05, 7000.0, [0.05])))
        await pilot.pause()
        assert app.is_running  # and run_test raises on leaving whatever the app raised


async def test_a_cell_that_grows_while_its_run_trains_is_shown_whole(tmp_path, monkeypatch):
    """Seen at 80x24: a running run's epochs read "10/2" once they passed 9 of 20, because cells were
    updated in place at the width of their first value."""
    from dataclasses import replace

    store = RunStore(tmp_path)
    (run,) = quick_runs(store, norms=("L1",))
    info = run.info()
    app = NormcompressApp(store)
    listed = []  # what the store lists, as the running run's epochs go by
    monkeypatch.setattr(store, "infos", lambda: listed)
    async with app.run_test(size=(80, 24)) as pilot:
        for done in (9, 10):
            listed[:] = [
                replace(info, summary=replace(info.summary, epochs_done=done), config=replace(info.config, epochs=20))
            ]
            app.main.refresh_runs()
            await wait_for(
                pilot, lambda done=done: getattr(app.query_one(RunsTable).infos.get(info.id), "epochs_done", 0) == done
            )
        table = app.query_one(RunsTable)
        shown = lambda: "".join(strip.text for strip in table.render_lines(table.region.reset_offset))
        await wait_for(pilot, lambda: "10/20" in shown())  # the column widens when the table next goes idle
