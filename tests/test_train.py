import errno
import json
import shutil
import sys
import threading

import pytest
import torch

from normcompress import files as files_module
from normcompress import probe
from normcompress.baseline import run_baseline
from normcompress.data import load_run_data
from normcompress.devices import DeviceError, device_options, resolve_device
from normcompress.errors import UsageError
from normcompress.metrics import SYSTEM_METRICS
from normcompress.recipe import uses_channels_last
from normcompress.runs import RunStore, load_model
from normcompress.train import (
    EpochEnd,
    RunEnded,
    RunStarted,
    StepProgress,
    TrainConfig,
    TrainingFailed,
    train,
)

TIMING = {"epoch_time_s", *SYSTEM_METRICS}  # what the machine did: differs run to run


def small(**overrides):
    values = {
        "norm": "L2",
        "epochs": 3,
        "dataset": "sample",
        "limit": 384,
        "device": "cpu",
        "seed": 1,
        "batch_size": 64,
    }
    return TrainConfig(**{**values, **overrides})


def records(run):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in run.metrics()]


def test_a_run_trains_saves_and_reports(tmp_path):
    events = []
    run = train(small(), RunStore(tmp_path), events.append, progress_interval_s=0)
    summary = run.summary()
    assert summary.status == "completed" and summary.epochs_done == 3 and summary.data == "sample"
    assert set(summary.versions) >= {"torch", "python", "normcompress"}
    history = run.metrics()
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert set(history[0]) >= {"loss", "psnr", "mse", "mae", "ssim", "maxabs_mean", "maxabs_worst"}
    assert history[-1]["loss"] < history[0]["loss"]  # it learns
    assert run.checkpoint_path.exists() and run.recon_path.stat().st_size > 1000
    assert torch.load(run.checkpoint_path, weights_only=True)["epoch"] == 3
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunEnded
    assert kinds.count(EpochEnd) == 3 and kinds.count(StepProgress) == 3 * 6  # 384 / 64 steps per epoch
    # Every step's loss is kept: six equal batches, so their mean is the epoch's loss.
    for record in history:
        assert len(record["step_losses"]) == 6
        assert sum(record["step_losses"]) / 6 == pytest.approx(record["loss"], rel=1e-5)
    streamed = [loss for e in events if isinstance(e, StepProgress) for loss in e.step_losses]
    assert streamed == pytest.approx([loss for r in history for loss in r["step_losses"]], rel=1e-5)
    # summary.json holds the final metrics only: not the last epoch's step losses, number or timing.
    on_disk = json.loads((run.path / "summary.json").read_text())["metrics"]
    assert set(on_disk) == {
        "loss",
        "psnr",
        "mse",
        "mae",
        "ssim",
        "maxabs_mean",
        "maxabs_worst",
        "sharpness",
        "best_psnr",
    }
    assert on_disk["psnr"] == history[-1]["psnr"] and on_disk["best_psnr"] == max(r["psnr"] for r in history)


def test_step_losses_arrive_in_batches_at_the_progress_rate(tmp_path):
    events = []
    run = train(small(epochs=1), RunStore(tmp_path), events.append, progress_interval_s=3600)
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert len(progress) == 1 and progress[0].step == 6  # one report, at the end of the epoch
    assert progress[0].step_losses == pytest.approx(run.metrics()[0]["step_losses"], rel=1e-5)


def test_same_seed_same_metrics_on_cpu(tmp_path):
    store = RunStore(tmp_path)
    a = train(small(epochs=2), store)
    b = train(small(epochs=2), store)
    c = train(small(epochs=2, seed=2), store)
    assert records(a) == records(b)
    assert records(a) != records(c)


def test_cancel_then_resume_equals_an_uninterrupted_run(tmp_path):
    store = RunStore(tmp_path)
    reference = train(small(), store)
    cancel = threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, EpochEnd) and event.epoch == 1:
            cancel.set()

    stopped = train(small(), store, stop_after_first_epoch, cancel)
    assert stopped.info().status == "interrupted" and stopped.info().epochs_done == 1
    resumed = train(TrainConfig(), store, resume=stopped.id[:-1])
    assert resumed.id == stopped.id and resumed.info().status == "completed"
    assert records(resumed) == records(reference)


def test_a_checkpoint_of_the_unfused_optimizer_resumes_under_the_fused_one(tmp_path, monkeypatch):
    """Runs before the fused optimizer saved foreach Adam's state; such a run resumes, keeping the
    implementation its state names, and its second epoch is a fused run's within float rounding."""
    from normcompress import recipe, session

    store = RunStore(tmp_path)
    reference = train(small(epochs=2), store)
    real = recipe.build_optimizer

    def unfused(config, model, prior, steps):
        optimizer, scheduler = real(config, model, prior, steps)
        for group in optimizer.param_groups:
            group["fused"] = False
        return optimizer, scheduler

    monkeypatch.setattr(session, "build_optimizer", unfused)
    cancel = threading.Event()
    old = train(small(epochs=2), store, lambda e: isinstance(e, EpochEnd) and cancel.set(), cancel)
    assert old.info().epochs_done == 1 and not torch.load(old.checkpoint_path)["optimizer"]["param_groups"][0]["fused"]
    monkeypatch.undo()
    train(TrainConfig(), store, resume=old.id)
    assert old.info().status == "completed"
    assert not torch.load(old.checkpoint_path)["optimizer"]["param_groups"][0]["fused"]
    assert old.metrics()[-1]["loss"] == pytest.approx(reference.metrics()[-1]["loss"], rel=1e-4)


def test_ctrl_c_mid_epoch_keeps_the_last_complete_epoch(tmp_path):
    store = RunStore(tmp_path)
    reference = train(small(), store)

    def interrupt_in_epoch_2(event):
        if isinstance(event, StepProgress) and event.epoch == 2 and event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small(), store, interrupt_in_epoch_2, progress_interval_s=0)
    run = next(r for r in store.runs() if r.id != reference.id)
    assert run.info().status == "interrupted" and len(run.metrics()) == 1
    assert torch.load(run.checkpoint_path, weights_only=True)["epoch"] == 1
    train(TrainConfig(), store, resume=run.id)
    assert records(run) == records(reference)


def test_resume_drops_metrics_written_after_the_last_checkpoint(tmp_path):
    """A crash between appending epoch 2's metrics and replacing the checkpoint: resume redoes epoch 2."""
    store = RunStore(tmp_path)
    reference = train(small(), store)

    def stopped_after(epochs):
        cancel = threading.Event()
        return train(small(), store, lambda e: isinstance(e, EpochEnd) and e.epoch == epochs and cancel.set(), cancel)

    epoch_1_checkpoint = stopped_after(1).checkpoint_path.read_bytes()
    crashed = stopped_after(2)
    crashed.checkpoint_path.write_bytes(epoch_1_checkpoint)
    train(TrainConfig(), store, resume=crashed.id)
    assert records(crashed) == records(reference)


def test_resuming_a_completed_run_is_refused(tmp_path):
    store = RunStore(tmp_path)
    run = train(small(epochs=1), store)
    with pytest.raises(UsageError, match="already completed"):
        train(TrainConfig(), store, resume=run.id)


def test_non_finite_loss_fails_the_run_with_a_message(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(TrainingFailed, match="non-finite"):
        train(small(lr=1e30, norm="L1"), store, progress_interval_s=0)
    (run,) = store.runs()
    assert run.info().status == "failed" and "non-finite" in run.summary().message


def test_blown_up_weights_behind_a_finite_loss_fail_the_run_in_one_line(tmp_path):
    """Under L2 with --lr 1e30 the training loss stays finite (the sigmoid saturates) while the weights
    are inf: the validation metrics were NaN and writing them to metrics.jsonl raised a traceback."""
    store = RunStore(tmp_path)
    with pytest.raises(TrainingFailed, match=r"the validation psnr, .* became non-finite in epoch 1; try a smaller"):
        train(small(lr=1e30, norm="L2", epochs=2, dataset="synthetic", limit=64), store)  # one step an epoch
    (run,) = store.runs()
    assert run.info().status == "failed" and run.metrics() == [] and run.info().problem is None


def test_a_full_disk_fails_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    real_open = open
    saves = []

    def filling_open(path, *args, **kwargs):
        if ".checkpoint.pt" in str(path):
            saves.append(path)
            if len(saves) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files_module, "open", filling_open, raising=False)
    with pytest.raises(files_module.FileError, match="disk is full"):
        train(small(), store)
    (run,) = store.runs()
    assert run.load_checkpoint()["epoch"] == 1
    assert run.info().status == "failed" and "disk is full" in run.summary().message
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("norm", ["Linf", "Linf-image", "Lp:3", "0.7*L1+0.3*Linf-image", "0.84*SSIM+0.16*L1"])
def test_every_norm_family_trains(tmp_path, norm):
    run = train(small(epochs=1, norm=norm, limit=128), RunStore(tmp_path))
    assert run.info().status == "completed" and run.train_config().norm == norm


def test_bad_config_is_refused_before_a_run_is_created(tmp_path):
    store = RunStore(tmp_path)
    for bad in (small(norm="L7"), small(epochs=0), small(lr=-1), small(model="vit"), small(dataset="mnist")):
        with pytest.raises(UsageError):
            train(bad, store)
    assert store.runs() == []


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError):
        resolve_device("gpu")
    options = device_options()
    assert options[0].key == "cpu"
    if not torch.cuda.is_available():
        assert [o.available for o in options] == [True, False] and options[1].reason
        with pytest.raises(DeviceError, match="asked for CUDA"):
            resolve_device("cuda:0")
    else:
        assert all(o.available for o in options) and len(options) == 1 + torch.cuda.device_count()


def test_a_cuda_index_past_the_visible_devices_names_those_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a box with two GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError) as refused:
        resolve_device("cuda:2")
    assert str(refused.value) == "device cuda:2 is not there: 2 CUDA devices visible (cuda:0, cuda:1)"


def test_the_device_probe_answers_what_torch_says_and_offers_the_cpu_when_it_fails(monkeypatch):
    assert probe.device_options() == device_options()
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # a Python that cannot start: exit code 1
    cpu, cuda = probe.device_options()
    assert cpu.key == "cpu" and cpu.available and not cuda.available
    assert cuda.reason == "the device probe failed: the probe ended with exit code 1"


def test_the_baseline_probe_is_the_baseline_and_fails_in_one_line(tmp_path):
    store = RunStore(tmp_path)
    run = train(small(epochs=1), store)
    expected, _ = run_baseline(store, run, load_run_data(run, None))
    assert probe.run_baseline(store, run.id) == expected  # read back from the store's cache this time
    with pytest.raises(probe.ProbeError) as failure:
        probe.run_baseline(store, "../elsewhere")
    assert "../elsewhere" in str(failure.value) and "\n" not in str(failure.value)
    assert "Traceback" not in str(failure.value)


def test_the_deeper_model_trains(tmp_path):
    run = train(small(epochs=1, model="wide-residual", limit=128), RunStore(tmp_path))
    assert run.info().status == "completed" and load_model(run).encoder[-1].out_channels == 64


def test_a_folder_trains_at_a_larger_image_size(tmp_path, image_folder):
    run = train(
        small(epochs=1, dataset=f"folder:{image_folder}", image_size=64, limit=None, batch_size=4),
        RunStore(tmp_path / "runs"),
    )
    assert run.info().status == "completed" and run.summary().notices  # the two bad files were named
    with __import__("PIL").Image.open(run.recon_path) as recon:
        assert recon.height > 3 * 64  # three rows of 64-pixel images, scaled up


@pytest.mark.parametrize("options", [{"amp": "bf16"}, {"channels_last": True}, {"amp": "bf16", "channels_last": True}])
def test_speed_options_train_to_similar_quality(tmp_path, options):
    store = RunStore(tmp_path)
    plain = train(small(epochs=2, channels_last=False), store).metrics()[-1]
    fast = train(small(epochs=2, **options), store).metrics()[-1]
    assert fast["psnr"] == pytest.approx(plain["psnr"], abs=0.3)


@pytest.mark.parametrize(
    "options, dtype, channels_last",
    [
        ({"channels_last": False}, torch.float32, False),
        ({"amp": "bf16", "channels_last": False}, torch.bfloat16, False),
        ({"channels_last": True}, torch.float32, True),
        ({}, torch.float32, True),
    ],
)  # the CPU default: channels-last
def test_speed_options_are_really_applied(tmp_path, monkeypatch, options, dtype, channels_last):
    """What the first convolution sees and gives in a training step: bf16 out under --amp bf16, a
    channels-last input with --channels-last. A flag silently ignored trains fine and fails here."""
    from normcompress import session as session_module

    seen = []
    real_build = session_module.build_model

    def spying_build(name):
        model = real_build(name)
        model.encoder[0].register_forward_hook(
            lambda module, inputs, output: (
                seen.append(
                    (
                        output.dtype,
                        inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous(),
                    )
                )
                if module.training
                else None
            )
        )
        return model

    monkeypatch.setattr(session_module, "build_model", spying_build)
    train(small(epochs=1, limit=128, **options), RunStore(tmp_path))
    assert seen and set(seen) == {(dtype, channels_last)}


def test_channels_last_by_default_on_the_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert uses_channels_last(TrainConfig(), cpu) and not uses_channels_last(TrainConfig(), cuda)
    assert not uses_channels_last(TrainConfig(channels_last=False), cpu)
    assert uses_channels_last(TrainConfig(channels_last=True), cuda)


def test_unknown_amp_mode_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown --amp"):
        train(small(amp="fp8"), RunStore(tmp_path))


@pytest.mark.slow  # 22 s on two cores: compiling the step; every run without --compile takes the same path
def test_compile_trains(tmp_path, monkeypatch):
    # torch.compile needs a C++ compiler on the CPU; 128 images in batches of 64 keep one compiled shape
    compiled = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(module) or real_compile(module, **kw))
    run = train(small(epochs=1, limit=128, compile=True), RunStore(tmp_path))
    assert len(compiled) == 1 and isinstance(compiled[0], torch.nn.Module)  # the training step's module
    assert run.info().status == "completed" and run.metrics()[0]["psnr"] > 8
    plain = train(small(epochs=1, limit=128), RunStore(tmp_path / "plain")).metrics()[0]
    assert run.metrics()[0]["psnr"] == pytest.approx(plain["psnr"], abs=0.3)  # the same training, compiled
