"""The training step replayed from a CUDA graph: what it refuses and why, and, with the two CUDA-only
calls (a side stream, a capture) standing in for themselves on the CPU, that a run whose steps are
warmed up, captured and replayed is the run trained without a graph, keeps a checkpoint that resumes
anywhere, and goes on without a graph when capture fails. On a CUDA device the real capture is tested."""

import contextlib
import threading

import pytest
import torch

from normcompress import step
from normcompress.config import TrainConfig
from normcompress.events import EpochEnd, Notice
from normcompress.runs import RunStore, Status
from normcompress.stack import train_stack
from normcompress.step import WARMUP_STEPS, GraphedStep, graph_refusal
from normcompress.train import train

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
# 600 images in batches of 128: 4 full batches (3 warm-up steps, the capture, a replay) and one of 88.
STEPS, LAST_BATCH = 5, 600 - 4 * 128


def small(**overrides) -> TrainConfig:
    values = {"epochs": 2, "dataset": "sample", "limit": 600, "device": "cpu", "seed": 3, "channels_last": False}
    return TrainConfig(**{**values, **overrides})


def test_what_a_graph_refuses_and_why():
    assert graph_refusal(small(), CPU, 1) == "CUDA graphs need a CUDA device"
    assert graph_refusal(small(), CUDA, 1) is None  # the default on CUDA
    assert graph_refusal(small(cuda_graph=True), CUDA, 1) is None
    assert graph_refusal(small(cuda_graph=False), CUDA, 1) == "--no-cuda-graph"
    assert graph_refusal(small(compile=True), CUDA, 1) == "--compile captures graphs of its own"
    assert "across processes" in graph_refusal(small(), CUDA, 2)
    assert "rate term" in graph_refusal(small(rate_lambda=0.01), CUDA, 1)


def test_a_graph_asked_for_on_the_cpu_is_refused_with_its_reason(tmp_path):
    events = []
    run = train(small(epochs=1, cuda_graph=True), RunStore(tmp_path), events.append)
    assert run.info().status == Status.COMPLETED
    said = "trained without a CUDA graph: CUDA graphs need a CUDA device"
    assert [e.message for e in events if isinstance(e, Notice)] == [said] and said in run.summary().notices
    quiet = train(small(epochs=1), RunStore(tmp_path))  # the CPU's default: nothing to say
    assert not quiet.summary().notices


def install_graph_on_cpu(monkeypatch) -> list[float]:
    """GraphedStep on the CPU: the side stream is the current one, and a 'capture' runs nothing, as a real
    one, and hands back a replay that runs the step and writes its loss into the one tensor every replay
    writes, as a graph's output is. Returns the losses the replays wrote, in order."""
    replays: list[float] = []

    def capture(self, one_step):
        groups = [g for s in self.sessions for g in s.optimizer.param_groups]
        assert all(
            isinstance(g["lr"], torch.Tensor) and g["capturable"] for g in groups
        )  # else a graph keeps its first
        self.loss = torch.full(self.indices.shape[:-1], float("nan"))  # a loss per run of the step

        def replay():
            self.loss.copy_(one_step())
            replays.append(self.loss.tolist())

        return replay

    monkeypatch.setattr(step, "graph_refusal", lambda config, device, world: None)
    monkeypatch.setattr(GraphedStep, "side_stream", lambda self: contextlib.nullcontext())
    monkeypatch.setattr(GraphedStep, "capture", capture)
    return replays


def batch_sizes(monkeypatch) -> list[int]:
    """The size of every batch a GraphedStep is called with, in order."""
    sizes: list[int] = []
    call = GraphedStep.__call__

    def counted(self, indices):
        sizes.append(len(indices))
        return call(self, indices)

    monkeypatch.setattr(GraphedStep, "__call__", counted)
    return sizes


def step_losses(run) -> list[float]:
    return [loss for record in run.metrics() for loss in record["step_losses"]]


@pytest.mark.parametrize("schedule", ["onecycle", "constant"])
def test_a_run_replayed_from_a_graph_is_the_run_trained_without_one(tmp_path, monkeypatch, schedule):
    plain = train(small(schedule=schedule), RunStore(tmp_path / "plain"))
    sizes, replays = batch_sizes(monkeypatch), install_graph_on_cpu(monkeypatch)
    graphed = train(small(schedule=schedule), RunStore(tmp_path / "graphed"))
    assert graphed.info().status == Status.COMPLETED
    # Each epoch: its 4 full batches replayed (after the first epoch's 3 warm-up steps), its last one not.
    assert len(replays) == 2 * (STEPS - 1) - WARMUP_STEPS
    assert len(sizes) == 2 * STEPS and sizes.count(LAST_BATCH) == 2
    # The lr as a tensor the schedule fills in place, the update that reads it there: the same run,
    # within the rounding of a fused update that reads its step count from a tensor.
    assert step_losses(graphed) == pytest.approx(step_losses(plain), rel=1e-5)
    assert len(set(step_losses(graphed))) == 2 * STEPS  # every step's own loss, not the graph's last one
    for g, p in zip(graphed.metrics(), plain.metrics(), strict=True):
        assert g["psnr"] == pytest.approx(p["psnr"], abs=1e-4)
        assert g["lr"] == pytest.approx(p["lr"], rel=1e-6)
    assert any("replayed from a CUDA graph" in n for n in graphed.summary().notices)


def test_a_capture_that_fails_says_so_once_and_the_run_trains_without_a_graph(tmp_path, monkeypatch):
    plain = train(small(), RunStore(tmp_path / "plain"))
    install_graph_on_cpu(monkeypatch)
    attempts = []

    def refuse(self, one_step):
        attempts.append(1)
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\n(more lines)")

    monkeypatch.setattr(GraphedStep, "capture", refuse)
    events = []
    run = train(small(), RunStore(tmp_path / "graphed"), events.append)
    assert run.info().status == Status.COMPLETED and attempts == [1]  # never tried again
    said = [e.message for e in events if isinstance(e, Notice)]
    assert said == [
        "the training step could not be captured in a CUDA graph (CUDA error: operation not permitted when "
        "stream is capturing); trained without one"  # its first line: torch's later ones are advice
    ]
    assert said[0] in run.summary().notices
    assert step_losses(run) == pytest.approx(step_losses(plain), rel=1e-5)  # the failed step was trained too


def test_a_graphed_runs_checkpoint_resumes_without_a_graph_as_if_never_stopped(tmp_path, monkeypatch):
    whole = train(small(), RunStore(tmp_path / "whole"))
    store = RunStore(tmp_path / "parts")
    stop = threading.Event()
    with monkeypatch.context() as patch:
        install_graph_on_cpu(patch)
        first = train(small(), store, lambda e: isinstance(e, EpochEnd) and stop.set(), stop)
    assert first.info().status == Status.INTERRUPTED and len(first.metrics()) == 1
    groups = first.load_checkpoint()["optimizer"]["param_groups"]
    assert all(type(g["lr"]) is float and g["capturable"] is False for g in groups)  # plain numbers on disk
    resumed = train(small(), store, resume=first.id)  # no graph now: a CPU's plain fused update
    assert resumed.info().status == Status.COMPLETED
    assert step_losses(resumed) == pytest.approx(step_losses(whole), rel=1e-5)
    assert resumed.metrics()[-1]["psnr"] == pytest.approx(whole.metrics()[-1]["psnr"], abs=1e-4)


STACK = [
    {"norm": "L2", "seed": 0},
    {"norm": "Linf-image", "seed": 1},
    {"norm": "L1", "schedule": "constant", "seed": 2},
]


def test_a_stack_replayed_from_a_graph_is_the_stack_trained_without_one_and_recaptures_when_a_run_leaves(
    tmp_path, monkeypatch
):
    plain = train_stack([small(**m) for m in STACK], RunStore(tmp_path / "plain"))
    replays = install_graph_on_cpu(monkeypatch)
    stops = [threading.Event() for _ in STACK]  # the Linf-image run leaves after its first epoch
    leave = lambda e: isinstance(e, EpochEnd) and "-Linf-image-" in e.run_id and stops[1].set()
    graphed = train_stack([small(**m) for m in STACK], RunStore(tmp_path / "graphed"), leave, stops=stops)
    assert [r.info().status for r in graphed] == [Status.COMPLETED, Status.INTERRUPTED, Status.COMPLETED]
    # Epoch 1: three runs, 3 warm-up steps, then 1 replay; epoch 2: two runs, a new capture: the same again.
    assert [len(losses) for losses in replays] == [3, 2]
    for run, reference in zip(graphed, plain, strict=True):
        kept = step_losses(run)
        assert kept == pytest.approx(step_losses(reference)[: len(kept)], rel=1e-5)
        assert run.metrics()[-1]["psnr"] == pytest.approx(reference.metrics()[len(run.metrics()) - 1]["psnr"], abs=1e-4)
    assert all(any("replayed from a CUDA graph" in n for n in r.summary().notices) for r in graphed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a real CUDA graph needs a CUDA device")
def test_on_cuda_the_step_is_replayed_from_a_graph_and_matches_the_run_without_one(tmp_path):
    config = {"device": "cuda", "limit": 2048, "epochs": 2}
    graphed = train(small(**config), RunStore(tmp_path / "graphed"))
    plain = train(small(**config, cuda_graph=False), RunStore(tmp_path / "plain"))
    assert any("replayed from a CUDA graph" in n for n in graphed.summary().notices)
    assert not any("CUDA graph" in n for n in plain.summary().notices)
    # cuDNN picks its algorithms per call: the same run within float rounding, not bit for bit.
    assert step_losses(graphed) == pytest.approx(step_losses(plain), rel=1e-3)
    assert graphed.metrics()[-1]["psnr"] == pytest.approx(plain.metrics()[-1]["psnr"], abs=0.01)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a real CUDA graph needs a CUDA device")
def test_on_cuda_a_stack_replayed_from_a_graph_matches_the_stack_without_one(tmp_path):
    config = {"device": "cuda", "limit": 2048, "epochs": 2}
    graphed = train_stack([small(**m, **config) for m in STACK], RunStore(tmp_path / "graphed"))
    plain = train_stack([small(**m, **config, cuda_graph=False) for m in STACK], RunStore(tmp_path / "plain"))
    for run, reference in zip(graphed, plain, strict=True):
        assert any("replayed from a CUDA graph" in n for n in run.summary().notices)
        assert step_losses(run) == pytest.approx(step_losses(reference), rel=1e-3)
        assert run.metrics()[-1]["psnr"] == pytest.approx(reference.metrics()[-1]["psnr"], abs=0.01)
