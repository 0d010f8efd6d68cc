"""The app's parts that need no terminal: the chart's model and the training controller, driven directly."""

import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest

from normcompress.config import TrainConfig
from normcompress.events import EpochEnd, Notice, RunEnded, RunStarted, StepProgress, StudyProgress
from normcompress.runs import RunStore
from normcompress.study_config import StudyConfig
from normcompress_tui.training import TrainingController
from normcompress_tui.widgets.chart_model import ChartModel, parse_zoom, zoom_spec


def record(epoch: int, psnr: float, steps: int = 4, seconds: float = 2.0) -> dict:
    return {
        "epoch": epoch,
        "loss": 0.1 / epoch,
        "psnr": psnr,
        "step_losses": [0.1 / epoch] * steps,
        "epoch_time_s": seconds,
    }


def test_the_live_run_is_drawn_at_each_step_and_overlays_keep_their_slots():
    model = ChartModel()
    model.start_run("L1 aaaaaa")
    model.add_steps(1, 2, 4, [0.5, 0.4])  # steps 1 and 2 of 4 in epoch 1: at 0.25 and 0.5
    model.add_steps(1, 4, 4, [0.3, 0.2])
    ((label, xs, ys),) = model.series()
    assert label == "L1 aaaaaa (live)" and xs == [0.25, 0.5, 0.75, 1.0] and ys == [0.5, 0.4, 0.3, 0.2]
    model.set_overlay("r1", "L2 bbbbbb", [record(1, 20.0), record(2, 22.0)])
    model.set_overlay("r2", "L2 cccccc", [record(1, 18.0)])
    model.set_overlay("r1", "", None)
    model.set_overlay("r3", "L2 dddddd", [record(1, 19.0)])
    assert model.slots == {"r2": 2, "r3": 1}  # the freed slot 1 is taken again; r2 keeps its colour
    assert model.series_slots() == [0, 2, 1]  # the live run is slot 0
    model.end_run()
    assert model.series()[0][0] == "L1 aaaaaa"  # no longer "(live)"


def test_a_run_on_the_chart_both_as_its_current_run_and_overlaid_is_drawn_once_it_has_ended():
    model = ChartModel()
    model.metric = "psnr"
    model.start_run("L1 aaaaaa", run_id="a")
    model.add_epoch(record(1, 20.0))
    model.set_overlay("a", "L1 aaaaaa", [record(1, 20.0)])  # overlaid while it trains: both, as before
    assert [label for label, _, _ in model.series()] == ["L1 aaaaaa (live)", "L1 aaaaaa"]
    model.end_run()
    assert model.series() == [("L1 aaaaaa", [1], [20.0])] and model.series_slots() == [model.slots["a"]]
    model.start_run("L2 bbbbbb", run_id="b")  # a study's next run; then the one before it is overlaid
    model.add_epoch(record(1, 22.0))
    model.end_run()
    model.set_overlay("c", "L2 cccccc", [record(1, 18.0)])  # another run: the ended current run stays
    assert [label for label, _, _ in model.series()] == ["L2 bbbbbb", "L1 aaaaaa", "L2 cccccc"]
    model.set_overlay("b", "L2 bbbbbb", [record(1, 22.0)])
    assert [label for label, _, _ in model.series()] == ["L1 aaaaaa", "L2 cccccc", "L2 bbbbbb"]
    assert not model.current_epochs and not model.current_steps


def test_a_run_keeps_its_colour_from_live_to_overlaid_and_no_group_takes_the_live_runs():
    model = ChartModel()
    model.metric = "psnr"
    model.start_run("L1 aaaaaa", run_id="a")
    model.add_epoch(record(1, 20.0))
    assert model.series_slots() == [0]
    model.end_run()
    model.set_overlay("a", "L1 aaaaaa", [record(1, 20.0)])  # a study's finished run: overlaid
    assert model.series_slots() == [0]  # the colour it had while it trained, not a new one
    model.start_run("L2 bbbbbb", run_id="b")
    model.add_epoch(record(1, 22.0))
    model.set_overlay("c", "L2 cccccc", [record(1, 18.0)])
    assert model.series_slots() == [1, 0, 2]  # b took the lowest free slot; c the next
    model.end_run()
    model.set_overlay("b", "L2 bbbbbb", [record(1, 22.0)])
    assert model.series_slots() == [0, 2, 1] and model.mark_slot("b") == 1
    model.start_run("L1 dddddd", run_id="d")  # the lowest slot no run on the chart holds
    model.add_epoch(record(1, 21.0))
    assert model.series_slots()[0] == 3
    model.group_by = "norm"
    model.groups = {"a": {"norm": "L1"}, "b": {"norm": "L2"}, "c": {"norm": "L2"}}
    assert model.group_slots() == {"L1": 1, "L2": 2}  # the live run's slot 3 is not a group's
    model.set_overlay("d", "", None)  # taken off the table's overlays while live: it keeps its colour
    assert model.series_slots()[0] == 3
    model.start_run("L2 eeeeee", run_id="e")  # d was never overlaid: it leaves the chart and frees 3
    assert "d" not in model.slots and model.slots["e"] == 3


def test_the_view_cuts_to_the_zoom_and_maps_epochs_onto_steps_and_time():
    model = ChartModel()
    model.metric = "psnr"
    model.set_overlay("r1", "L2 x", [record(e, 10.0 + e) for e in range(1, 6)])  # 5 epochs of 4 steps, 2 s each
    model.zoom = 2  # the last 2 epochs: epochs 4 and 5
    assert model.view()[0] == [("L2 x", [4, 5], [14.0, 15.0])]
    model.zoom = (2.0, 3.0)  # epochs 2 to 3
    assert model.view()[0] == [("L2 x", [2, 3], [12.0, 13.0])]
    model.zoom = None
    model.x_axis = "step"
    assert model.view()[0][0][1] == [4.0, 8.0, 12.0, 16.0, 20.0]  # the end of each epoch, in steps
    model.next_x_axis()
    series, _, title = model.view()
    assert model.x_axis == "time" and title == "training time (s)" and series[0][1] == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_the_reference_is_for_validation_metrics_only():
    model = ChartModel()
    model.reference = SimpleNamespace(label="PCA (256 values)", data="sample", metrics={"psnr": 25.5})
    assert model.reference_line() is None  # the training loss is in each run's own norm
    model.metric = "psnr"
    assert model.reference_line() == ("PCA (256 values) on sample", 25.5)


@pytest.mark.parametrize("text, zoom", [("3-7", (3.0, 7.0)), ("5", 5), ("", None), (" 2 - 2 ", (2.0, 2.0))])
def test_zoom_specs_parse_and_print_back(text, zoom):
    assert parse_zoom(text) == zoom and parse_zoom(zoom_spec(zoom)) == zoom


@pytest.mark.parametrize("text", ["0", "7-3", "x", "1-", "-2"])
def test_a_bad_zoom_is_a_sentence(text):
    with pytest.raises(ValueError, match="is not a zoom"):
        parse_zoom(text)


class Recorder:
    """A stand-in for a widget: every call, by name, with its arguments."""

    def __init__(self, calls: list, name: str, **attributes) -> None:
        self._calls, self._name = calls, name
        self.__dict__.update(attributes)

    def __getattr__(self, method: str):
        return lambda *args, **kwargs: self._calls.append((self._name, method, args))


def fake_view(calls: list) -> SimpleNamespace:
    chart = Recorder(calls, "chart", model=ChartModel())
    chart.start_run = chart.model.start_run
    chart.add_epoch = chart.model.add_epoch
    return SimpleNamespace(
        controls=Recorder(calls, "controls"),
        chart=chart,
        progress=Recorder(calls, "progress", is_starting=False),
        queue=Recorder(calls, "queue"),
        preview=Recorder(calls, "preview"),
        system_line=Recorder(calls, "system_line"),
        refresh_runs=lambda: calls.append(("view", "refresh_runs", ())),
        overlay_when_listed=lambda run_id: calls.append(("view", "overlay_when_listed", (run_id,))),
        show_starting=lambda info: calls.append(("view", "show_starting", (info,))),
        load_reference=lambda run_id: calls.append(("view", "load_reference", (run_id,))),
        notify=lambda message, **kwargs: calls.append(("view", "notify", (message,))),
    )


def test_the_controller_shows_a_run_from_its_events(tmp_path):
    calls, started = [], []
    controller = TrainingController(
        RunStore(tmp_path), calls.append, lambda f, *a: started.append((f, a)), fake_view(calls)
    )
    config = TrainConfig(norm="L1", epochs=1)
    controller.start(config)
    assert controller.training and started[0][1] == (config, None) and ("controls", "set_running", (True,)) in calls
    run_id = "20260101-120000.000-L1-abcdef"
    for event in (
        RunStarted(run_id, config, "cpu", "sample", 100, 10, 0),
        StepProgress(1, 1, 4, 4, 0.2, 1000.0, [0.25, 0.2]),
        EpochEnd(1, 1, record(1, 21.0)),
        Notice("CIFAR-10 fell back to the sample"),
        RunEnded(run_id, "completed", "completed 1 epoch"),
    ):
        controller.on_event(event)
    names = [(widget, method) for widget, method, _ in calls]
    assert (
        names.index(("progress", "started"))
        < names.index(("progress", "step"))
        < names.index(("progress", "epoch_end"))
        < names.index(("progress", "finished"))
    )
    assert ("chart", "add_steps", (1, 4, 4, [0.25, 0.2])) in calls
    assert controller.view.chart.model.current_label == "L1 abcdef" and controller.current_run.id == run_id
    assert ("view", "load_reference", (run_id,)) in calls  # the first completed run brings the PCA line
    notes = [args[0] for widget, method, args in calls if method == "notify"]
    assert notes == ["CIFAR-10 fell back to the sample", f"{run_id}: completed 1 epoch"]
    shown = (controller.current_run.recon_path, "1 epoch, completed")  # not "live" once it has ended
    assert ("preview", "show", shown) in calls
    assert ("queue", "clear", ()) in calls  # a study's line does not stay under a single run
    rows = [args[0] for _, method, args in calls if method == "show_starting"]
    assert rows[0].id == "starting" and rows[0].status == "starting" and rows[0].config == config  # at the press
    assert rows[1].id == run_id and rows[1].status == "starting"  # ... with its id once it has one
    model = controller.view.chart.model
    assert not model.live and model.live_label() == "L1 abcdef"  # a finished run is no longer "(live)"


def test_the_controller_says_a_failure_in_the_forms_words_not_the_clis_flags(tmp_path):
    """A run that blew up was told to "try a smaller --lr", an option the app has no field called."""
    calls = []
    controller = TrainingController(RunStore(tmp_path), calls.append, lambda f, *a: None, fake_view(calls))
    config = TrainConfig(norm="L1", epochs=1)
    controller.start(config)
    run_id = "20260101-120000.000-L1-abcdef"
    controller.on_event(RunStarted(run_id, config, "cpu", "sample", 100, 10, 0))
    ended = "the L1 loss became non-finite in epoch 1, step 3; try a smaller --lr than 10 or a smaller --rate-lambda"
    controller.on_event(RunEnded(run_id, "failed", ended))
    said = "the L1 loss became non-finite in epoch 1, step 3; try a smaller LR than 10 or a smaller Rate λ"
    assert ("progress", "finished", ("failed", said)) in calls
    assert [args[0] for _, method, args in calls if method == "notify"] == [f"{run_id}: {said}"]


def test_the_controller_follows_a_stacks_first_run_and_reports_every_runs_end(tmp_path):
    calls = []
    controller = TrainingController(RunStore(tmp_path), calls.append, lambda f, *a: None, fake_view(calls))
    config = TrainConfig(norm="L2", epochs=1)
    controller.start(config)
    first, second = "20260101-120000.000-L2-aaaaaa", "20260101-120000.001-L1-bbbbbb"
    for event in (
        RunStarted(first, config, "cuda:0", "sample", 100, 10, 0),
        RunStarted(second, replace(config, norm="L1"), "cuda:0", "sample", 100, 10, 0),  # the same stack
        StepProgress(1, 1, 4, 4, 0.2, 1000.0, [0.25, 0.2], first),
        StepProgress(1, 1, 4, 4, 0.9, 1000.0, [0.95, 0.9], second),
        EpochEnd(1, 1, record(1, 21.0), first),
        EpochEnd(1, 1, record(1, 5.0), second),
        RunEnded(second, "completed", "completed 1 epoch"),
        RunEnded(first, "completed", "completed 1 epoch"),
    ):
        controller.on_event(event)
    steps = [args for widget, method, args in calls if method == "add_steps"]
    assert steps == [(1, 4, 4, [0.25, 0.2])]  # the first run's steps only
    assert [r["psnr"] for r in controller.view.chart.model.current_epochs] == [21.0]
    assert [method for _, method, _ in calls if method in ("started", "finished")] == ["started", "finished"]
    notes = [args[0] for _, method, args in calls if method == "notify"]
    assert notes == [f"{second}: completed 1 epoch", f"{first}: completed 1 epoch"]  # every run's end said
    assert controller.current_run.id == first and controller.live is None
    overlaid = [args[0] for _, method, args in calls if method == "overlay_when_listed"]
    assert overlaid == [second]  # the runs beside the first are on the chart from their start


def test_a_resumed_run_keeps_its_earlier_epochs_once_even_when_its_next_is_saved_first(tmp_path):
    """The child of a resumed run can save its next epoch before the app reads its RunStarted: the chart
    then held that epoch twice (from the store, then from its EpochEnd), and its steps twice over."""
    from normcompress.train import train

    store = RunStore(tmp_path)
    run = train(TrainConfig(norm="L1", epochs=2, dataset="synthetic", limit=64, batch_size=32, device="cpu"), store)
    on_disk = run.metrics()  # epoch 1, and epoch 2 already written by the resumed run's child
    calls = []
    controller = TrainingController(store, calls.append, lambda f, *a: None, fake_view(calls))
    controller.resume(run.info())
    controller.on_event(RunStarted(run.id, run.train_config(), "cpu", "synthetic", 64, 512, 1))  # resumed after 1
    controller.on_event(StepProgress(2, 2, 2, 2, 0.1, 1000.0, on_disk[1]["step_losses"], run.id))
    controller.on_event(EpochEnd(2, 2, on_disk[1], run.id))
    model = controller.view.chart.model
    assert [r["epoch"] for r in model.current_epochs] == [1, 2]
    assert len(model.current_steps) == 2  # epoch 1's two steps from the store; epoch 2's come from the child
    assert ("chart", "add_steps", (2, 2, 2, on_disk[1]["step_losses"])) in calls


def test_a_stopped_runs_clock_stops(monkeypatch):
    from normcompress_tui.widgets.progress import TrainingProgress

    progress = TrainingProgress()
    monkeypatch.setattr(progress, "show", lambda: None)  # drawing needs a screen; the figures do not
    progress.starting("L1 on sample")
    progress.step(StepProgress(1, 10, 1, 4, 0.2, 1000.0, [0.2]))
    progress.step(StepProgress(1, 10, 2, 4, 0.2, 1000.0, [0.2]))
    assert progress.seconds_left() is not None and progress._starting is None  # the first step ends "starting"
    progress.finished("interrupted", "stopped after 2 steps")
    assert progress.seconds_left() is None


def test_the_controller_stops_quits_and_reports_a_study(tmp_path):
    calls = []
    controller = TrainingController(RunStore(tmp_path), calls.append, lambda f, *a: None, fake_view(calls))
    assert not controller.stop()  # nothing to stop
    controller.claim()
    cancel = controller.cancel
    assert controller.stop() and cancel.is_set()
    controller.quit_when_stopped = True
    worker = SimpleNamespace(error=RuntimeError("boom"))
    controller.live = "a-run"  # its child died under it
    assert controller.worker_ended(worker, failed=True) is True and not controller.training
    assert ("progress", "finished", ("failed", "RuntimeError: boom")) in calls and controller.live is None
    assert ("view", "notify", ("RuntimeError: boom",)) in calls
    controller.on_study_update(StudyProgress(1, 2, "L1 seed 1", "failed", "a non-finite loss"))
    controller.on_study_update(StudyProgress(1, 2, "L2 seed 0", "finished", run_id="r-finished"))
    controller.on_study_update(StudyProgress(1, 2, "L2 seed 1", "reused", run_id="r-reused"))
    overlaid = [args[0] for _, method, args in calls if method == "overlay_when_listed"]
    assert overlaid == ["r-finished", "r-reused"]  # a study's runs gather on the chart as they finish
    controller.on_study_update(StudyProgress(1, 2, "", "ended", "done: 1 of 2 runs completed"))
    assert ("queue", "ended", ("done: 1 of 2 runs completed",)) in calls
    assert any(method == "notify" and "L1 seed 1 failed: a non-finite loss" in args[0] for _, method, args in calls)
    assert isinstance(controller.cancel, threading.Event)


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("failed", ("failed", "StoreError: cannot create a run in /proc/x")),
        ("stopped", ("stopped", "stopped before its first step")),
        ("reused", ("done", "done: 2 of 2 runs completed")),
    ],
)
def test_a_worker_that_ends_before_a_first_step_ends_the_starting_line(tmp_path, how, said):
    """The progress line turned its 'starting' spinner on after a run that failed before it existed (a
    store it cannot write to), a stop during the start, or a study whose runs were all reused (which
    says how it ended, once)."""
    calls = []
    view = fake_view(calls)
    view.progress.is_starting = True
    controller = TrainingController(RunStore(tmp_path), calls.append, lambda f, *a: None, view)
    controller.claim(starting="L2 on sample")
    if how == "stopped":
        controller.stop()
    error = type("StoreError", (Exception,), {})("cannot create a run in /proc/x")
    if how == "reused":  # a study whose runs were all done already: its ending says so
        controller.on_study_update(StudyProgress(2, 2, "", "ended", "done: 2 of 2 runs completed"))
        view.progress.is_starting = False
    worker = SimpleNamespace(error=error if how == "failed" else None)
    controller.worker_ended(worker, failed=how == "failed")
    assert [args for _, method, args in calls if method == "finished"] == [said] and not controller.training


def test_the_reference_is_probed_one_run_at_a_time_and_a_run_without_one_is_not_asked_again(monkeypatch, tmp_path):
    from normcompress import probe
    from normcompress_tui.reference import ReferenceLoader

    asked, threads, shown = [], [], []
    monkeypatch.setattr(probe, "run_baseline", lambda store, run_id: asked.append(run_id) or None)
    loader = ReferenceLoader(
        RunStore(tmp_path), threads.append, lambda f, *args: f(*args), shown.append, lambda: bool(shown)
    )
    for run_id in ("a", "b", "c"):  # overlaid while the first probe is out
        loader.want(run_id)
    assert len(threads) == 1
    threads.pop()()  # the probe of "a" ends (no baseline); only the latest asked for, "c", goes next
    assert asked == ["a"] and len(threads) == 1
    threads.pop()()
    assert asked == ["a", "c"] and not threads
    loader.want("a")  # it had none: not asked again
    assert not threads and not shown


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_study_whose_child_dies_says_how_to_go_on(tmp_path, monkeypatch, mode):
    """All of a study's runs share one child: if it dies (killed, out of memory), the queue says so and
    how to go on (the run it was training is interrupted, so the same study again resumes it). A study
    trained in the app's own process (thread mode) that fails as a whole says the same."""
    import normcompress_tui.training as training_module
    from normcompress_tui.messages import StudyUpdate
    from normcompress_tui.trainer import TrainingProcessError

    def dies(*args, **kwargs):
        raise TrainingProcessError("the training process ended with exit code -9")

    if mode == "thread":
        monkeypatch.setenv(training_module.TRAINING_ENV, "thread")
        monkeypatch.setattr(training_module.api, "run_study", dies)
    else:
        monkeypatch.setattr(training_module, "study_in_process", dies)
    posted = []
    controller = TrainingController(RunStore(tmp_path), posted.append, lambda f, *a: None, fake_view([]))
    study = StudyConfig.of_norms(["L2", "L1"], seeds=1, devices=["cpu"], epochs=1, dataset="synthetic")
    with pytest.raises(TrainingProcessError):  # the worker fails: the app's notification says it too
        controller._study_worker(study)
    (update,) = [m.progress for m in posted if isinstance(m, StudyUpdate)]
    assert update.state == "ended" and "exit code -9" in update.message and "again goes on" in update.message


def test_a_study_over_seeds_says_once_that_g_groups_its_runs(tmp_path):
    calls = []
    controller = TrainingController(RunStore(tmp_path), calls.append, lambda f, *a: None, fake_view(calls))
    hints = lambda: [args[0] for _, method, args in calls if method == "notify" and "g groups" in args[0]]
    controller.start_study(StudyConfig.of_norms(["L2", "L1"], seeds=1, devices=["cpu"]))
    assert hints() == []  # one seed: no band to show
    controller.start_study(StudyConfig.of_norms(["L2", "L1"], seeds=3, devices=["cpu"]))
    assert len(hints()) == 1
    controller.view.chart.model.group_by = "norm"  # grouped already: nothing to say
    controller.start_study(StudyConfig.of_norms(["L2", "L1"], seeds=3, devices=["cpu"]))
    assert len(hints()) == 1


def test_a_study_stopped_mid_run_marks_the_runs_it_left_training_interrupted(monkeypatch):
    """After x (or a child that died) the queue went on showing ▶ for the runs it had been training."""
    from normcompress_tui.widgets.study_queue import StudyQueue

    queue = StudyQueue()
    shown = []
    monkeypatch.setattr(queue, "update", lambda text: shown.append(str(text)))
    queue.begin(["L2 seed 0", "L2 seed 1", "L1 seed 0"])
    queue.progress(StudyProgress(0, 3, "L2 seed 0", "finished"))
    queue.progress(StudyProgress(1, 3, "L2 seed 1", "training"))
    queue.ended("stopped: 1 of 3 runs completed")
    assert queue.states == {"L2 seed 0": "finished", "L2 seed 1": "interrupted", "L1 seed 0": "waiting"}
    assert shown[-1] == "study 1/3  ✓ L2 seed 0  ‖ L2 seed 1  · L1 seed 0  stopped: 1 of 3 runs completed"
