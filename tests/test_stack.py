"""Runs trained together as one stacked model: each is the run it would be alone, leaves the stack on
its own (stopped, failed), resumes inside another stack, and a study stacks only where it should."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from normcompress.config import TrainConfig
from normcompress.errors import UsageError
from normcompress.events import EpochEnd, RunStarted, StepProgress
from normcompress.runs import RunStore, Status
from normcompress.stack import train_stack
from normcompress.stackable import MAX_STACK, stacks, why_not_stacked
from normcompress.study import StudyConfig, run_study
from normcompress.train import train

# A float tolerance, stated: a batched convolution adds in another order than one run's, and the
# differences grow over the steps. Measured over 2 epochs of 32 steps: step losses within 2e-3 relative
# (L1's; its gradient's sign flips where an error is near 0), 4e-6 for the others, PSNR within 7e-4 dB.
# A stack that mixed up two runs' norms, rates or batch orders is off by far more than these bounds.
LOSS_RTOL, PSNR_ATOL = 1e-2, 1e-2


def small(**overrides) -> TrainConfig:
    values = {"epochs": 2, "dataset": "sample", "limit": 1024, "device": "cpu", "batch_size": 32, "seed": 0}
    return TrainConfig(**{**values, **overrides})


# Three norms (the batch's and each image's largest error among them) and one run of another recipe:
# the original study's constant rate with Adam, beside the default one-cycle AdamW at two peaks.
MEMBERS = [
    {"norm": "L2", "seed": 0},
    {"norm": "Linf", "seed": 1, "lr": 1e-2},
    {"norm": "Linf-image", "seed": 2},
    {"norm": "L1", "seed": 3, "lr": 1e-3, "schedule": "constant", "optimizer": "adam"},
]


def assert_same_run(stacked, alone) -> None:
    got, expected = stacked.metrics(), alone.metrics()
    assert [r["epoch"] for r in got] == [r["epoch"] for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["loss"] == pytest.approx(e["loss"], rel=LOSS_RTOL)
        assert g["psnr"] == pytest.approx(e["psnr"], abs=PSNR_ATOL)
        assert g["lr"] == pytest.approx(e["lr"], rel=1e-9)  # each run's own schedule
        assert len(g["step_losses"]) == len(e["step_losses"]) == 32
        assert g["step_losses"] == pytest.approx(e["step_losses"], rel=LOSS_RTOL)


def test_runs_in_a_stack_match_the_same_runs_trained_alone(tmp_path):
    store = RunStore(tmp_path)
    # Alone in the stack's memory layout: channels-last (the CPU's default) rounds differently again.
    alone = [train(small(**m, channels_last=False), store) for m in MEMBERS]
    stacked = train_stack([small(**m) for m in MEMBERS], store)
    for run, reference in zip(stacked, alone, strict=True):
        assert run.info().status == Status.COMPLETED and run.train_config() == reference.train_config()
        assert "trained in a stack of 4 runs" in run.summary().notices
        assert run.checkpoint_path.exists() and run.recon_path.exists()
        assert_same_run(run, reference)
    # The runs really are different runs: a stack that mixed their norms or rates would match nothing above.
    finals = [run.metrics()[-1]["loss"] for run in stacked]
    assert len({round(v, 6) for v in finals}) == 4
    assert [r["lr"] for r in stacked[3].metrics()] == [1e-3] * 2


def test_a_run_stopped_inside_a_stack_leaves_it_and_resumes_inside_another(tmp_path):
    store = RunStore(tmp_path)
    configs = [small(norm="L2", seed=0), small(norm="Linf-image", seed=1), small(norm="L1", seed=2)]
    stops = [threading.Event() for _ in configs]
    ids: list[str] = []
    progress_ids: set[str] = set()
    seen_while_training: list[tuple] = []

    def on_event(event):
        if isinstance(event, RunStarted):
            ids.append(event.run_id)
        elif isinstance(event, StepProgress):
            progress_ids.add(event.run_id)
        elif isinstance(event, EpochEnd) and event.run_id == ids[1] and event.epoch == 1:
            stops[1].set()  # the Linf-image run, after its first epoch
        elif isinstance(event, EpochEnd) and event.run_id == ids[0] and event.epoch == 2:
            # While the others train on, the stopped run has left: it reads as interrupted, its lock free.
            stopped, going_on = store.get(ids[1]), store.get(ids[0])
            seen_while_training.append((stopped.info().status, stopped.is_live(), going_on.is_live()))

    runs = train_stack(configs, store, on_event, stops=stops, progress_interval_s=0)
    assert progress_ids == set(ids) and len(ids) == 3
    assert seen_while_training == [(Status.INTERRUPTED, False, True)]
    statuses = [(r.info().status, r.info().epochs_done) for r in runs]
    assert statuses == [(Status.COMPLETED, 2), (Status.INTERRUPTED, 1), (Status.COMPLETED, 2)]
    assert runs[1].summary().message == "stopped after 1 complete epoch"
    # Resumed inside another stack, beside a new run: it ends as if never stopped.
    resumed, fresh = train_stack([small(), small(norm="L1", seed=5)], store, resumes=[runs[1].id, None])
    assert resumed.id == runs[1].id and resumed.info().status == Status.COMPLETED
    assert [r["epoch"] for r in resumed.metrics()] == [1, 2]
    assert fresh.info().status == Status.COMPLETED
    assert_same_run(resumed, train(small(norm="Linf-image", seed=1, channels_last=False), store))


def test_a_run_that_blows_up_fails_alone_and_the_stack_goes_on(tmp_path):
    store = RunStore(tmp_path)
    runs = train_stack([small(norm="L1", lr=1e30), small(norm="L2", seed=1)], store, progress_interval_s=0)
    failed, completed = (r.summary() for r in runs)
    assert failed.status == Status.FAILED and "became non-finite in epoch 1" in failed.message
    assert "try a smaller --lr than 1e+30" in failed.message
    assert completed.status == Status.COMPLETED and completed.epochs_done == 2


def test_ctrl_c_keeps_every_run_of_the_stack_as_interrupted(tmp_path):
    store = RunStore(tmp_path)

    def interrupt(event):
        if isinstance(event, StepProgress) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_stack([small(norm="L2"), small(norm="L1", seed=1)], store, interrupt, progress_interval_s=0)
    infos = [run.info() for run in store.runs()]
    assert [(i.status, i.epochs_done) for i in infos] == [(Status.INTERRUPTED, 1)] * 2
    assert all(run.summary().message == "interrupted after 1 complete epoch" for run in store.runs())


def test_stopping_the_whole_stack_keeps_every_run_resumable(tmp_path):
    store = RunStore(tmp_path)
    cancel = threading.Event()
    cancel.set()  # before the first step
    runs = train_stack([small(norm="L2"), small(norm="L1", seed=1)], store, cancel=cancel)
    assert [(r.info().status, r.info().epochs_done) for r in runs] == [(Status.INTERRUPTED, 0)] * 2


def test_what_trains_in_a_stack_and_what_alone():
    configs = [
        small(norm="L2"),  # 0
        small(norm="L1", batch_size=16),  # 1: another batch size, another stack
        small(norm="Linf", seed=4, lr=1e-2, epochs=5),  # 2: with 0 (its own rate and epochs)
        small(model="hyperprior", rate_lambda=0.01),  # 3: a codec measures its own rate
        small(rate_lambda=0.01),  # 4: a rate term
        small(compile=True),  # 5
        small(norm="L1", batch_size=16, seed=1),  # 6: with 1
    ]
    assert stacks(configs) == [[0, 2], [1, 6], [3], [4], [5]]
    assert why_not_stacked(configs[0]) is None and "rate" in why_not_stacked(configs[4])
    many = [small(seed=s) for s in range(MAX_STACK + 1)]
    assert [len(s) for s in stacks(many)] == [MAX_STACK, 1]
    with pytest.raises(UsageError, match="share their batch_size; these have 16, 32"):
        train_stack([configs[0], configs[1]], RunStore("/nonexistent"))
    with pytest.raises(UsageError, match="cannot train in a stack: a rate term"):
        train_stack([configs[0], configs[4]], RunStore("/nonexistent"))


def test_a_study_stacks_where_asked_and_reuses_its_runs(tmp_path):
    store = RunStore(tmp_path)
    study = StudyConfig.of_norms(["L2", "L1"], seeds=2, stack=True, **small().__dict__)
    states = []
    runs = run_study(study, store, lambda p: states.append((p.label, p.state, p.epoch)))
    assert [r.train_config().norm for r in runs] == ["L2", "L2", "L1", "L1"]
    assert all("trained in a stack of 4 runs" in r.summary().notices for r in runs)
    assert ("L1 seed 1", "epoch", 2) in states and states.count(("L1 seed 1", "finished", 0)) == 1
    again = run_study(study, store, lambda p: states.append((p.label, p.state, p.epoch)))
    assert [r.id for r in again] == [r.id for r in runs] and states[-1][1] == "reused"


def test_a_study_on_the_cpu_trains_one_by_one_unless_asked():
    from normcompress.study import _stacking

    assert not _stacking(StudyConfig.of_norms(["L2", "L1"], devices=["cpu"]))
    assert _stacking(StudyConfig.of_norms(["L2", "L1"], devices=["cpu"], stack=True))
    with pytest.raises(UsageError, match="--stack trains its runs together on one device"):
        StudyConfig.of_norms(["L2"], devices=["cpu", "cpu"], stack=True).validated()


def test_the_cli_stacks_a_study_and_after_ctrl_c_the_same_command_resumes_it(tmp_path):
    """`study --stack` as a user runs it: Ctrl-C keeps both runs of the stack as interrupted, with one
    line and exit 130, and the same command trains them on together to their end."""
    store, epochs = tmp_path / "runs", 10
    command = [sys.executable, "-m", "normcompress", "study", "--stack", "--norms", "L2,L1", "--seeds", "1"]
    command += ["--epochs", str(epochs), "--dataset", "synthetic", "--limit", "256", "--batch-size", "64"]
    command += ["--devices", "cpu", "--out", str(tmp_path / "report"), "--runs-dir", str(store)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    while not any(run.info().epochs_done for run in RunStore(store).runs()):  # a first epoch saved
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=600)  # only a guard: a SIGINT that is ignored fails on the code
    assert process.returncode == 130 and "Traceback" not in err, err
    assert "run the same command again to resume" in err
    infos = [run.info() for run in RunStore(store).runs()]
    # Saved one after the other: Ctrl-C may fall between two runs' saves of an epoch, and then the stack
    # resumes runs at different epochs, each going on from its own.
    assert [i.status for i in infos] == [Status.INTERRUPTED] * 2
    assert all(0 <= i.epochs_done < epochs for i in infos) and max(i.epochs_done for i in infos) >= 1
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "finished  L2 seed 0" in again.stderr and "finished  L1 seed 0" in again.stderr
    runs = RunStore(store).runs()
    assert [(r.info().status, len(r.metrics())) for r in runs] == [(Status.COMPLETED, epochs)] * 2
    assert all("trained in a stack of 2 runs" in r.summary().notices for r in runs)
    shown = subprocess.run(
        [sys.executable, "-m", "normcompress", "runs", "show", runs[0].id, "--runs-dir", str(store)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    notices = [line.split(None, 1)[1] for line in shown.stdout.splitlines() if line.startswith("  notice ")]
    assert shown.returncode == 0 and "trained in a stack of 2 runs" in notices


def test_the_cli_refuses_a_stack_over_several_devices(run_cli, tmp_path):
    code, _, err = run_cli("study", "--stack", "--devices", "cpu,cpu", "--out", str(tmp_path / "r"))
    assert code == 2 and err.strip().endswith(
        "--stack trains its runs together on one device: give one --devices and no --ray"
    )
    assert len(err.strip().splitlines()) == 1


def test_the_step_bar_speaks_for_one_run_or_for_a_stack():
    from normcompress.console import step_detail

    one = StepProgress(1, 2, 3, 8, 0.0123456, 5000.0, [], "a")
    other = StepProgress(1, 2, 3, 8, 0.5, 4000.0, [], "b")
    assert step_detail([one]) == "loss 0.01235  5,000 img/s"
    assert step_detail([one, other]) == "2 runs together  9,000 img/s"  # no one norm's loss for both


def test_a_stacked_study_on_cifar10_resumes_on_the_sample_it_fell_back_to(tmp_path, monkeypatch):
    """Offline, CIFAR-10 falls back to the sample; the interrupted runs resume on the sample, so they
    stack apart from the study's new runs (whose request is still cifar10) instead of being refused."""
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    store, cancel = RunStore(tmp_path / "runs"), threading.Event()
    settings = {**small().__dict__, "dataset": "cifar10", "data_dir": str(tmp_path / "data"), "limit": 256}

    def stop_after_an_epoch(event):
        if isinstance(event, EpochEnd):
            cancel.set()

    first = StudyConfig.of_norms(["L2", "L1"], seeds=1, stack=True, **settings)
    assert run_study(first, store, on_event=stop_after_an_epoch, cancel=cancel) == []
    assert {r.info().status for r in store.runs()} == {Status.INTERRUPTED}
    wider = StudyConfig.of_norms(["L2", "L1"], seeds=2, stack=True, **settings)  # two new runs beside them
    runs = run_study(wider, store)
    assert len(runs) == 4 and all(r.info().status == Status.COMPLETED for r in runs)
    assert {r.summary().data for r in runs} == {"sample"}


def test_the_study_bar_counts_the_runs_of_a_stack_instead_of_naming_each():
    from normcompress.console import running_detail

    assert running_detail({"L2 seed 0": "2/8", "L1 seed 0": "3/8"}) == "L2 seed 0 2/8, L1 seed 0 3/8"
    many = {f"L2 seed {s}": epoch for s, epoch in enumerate(["10/10", "2/10", "2/10", "starting"])}
    assert running_detail(many) == "4 runs at 2/10, 10/10, starting"
