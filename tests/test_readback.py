"""Progress read back without stalling the stream: values that land late still arrive whole, in order,
once each, and never for a run that has left its stack."""

import threading
from types import SimpleNamespace

import pytest
import torch

from normcompress import stack as stack_module
from normcompress import train as train_module
from normcompress.config import TrainConfig
from normcompress.events import RunEnded, RunStarted, StepProgress
from normcompress.readback import Readback
from normcompress.runs import RunStore, Status
from normcompress.stack import train_stack
from normcompress.train import TrainingFailed, train


class OneReportLate(Readback):
    """A GPU that is always one report behind the host: each copy lands once the next one is requested."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device)
        self.made = 0

    def _copy(self, values):
        self.made += 1
        made_at = self.made
        return values.clone(), SimpleNamespace(query=lambda: self.made > made_at, synchronize=lambda: None)


@pytest.fixture
def late_copies(monkeypatch):
    monkeypatch.setattr(train_module, "Readback", OneReportLate)
    monkeypatch.setattr(stack_module, "Readback", OneReportLate)


def small(**overrides) -> TrainConfig:
    values = {"epochs": 2, "dataset": "sample", "limit": 384, "device": "cpu", "batch_size": 64, "seed": 1}
    return TrainConfig(**{**values, **overrides})


def test_requests_arrive_oldest_first_and_only_once_landed():
    readback = OneReportLate(torch.device("cpu"))
    readback.request(torch.tensor([1.0, 2.0]), "first")
    assert list(readback.arrived()) == []  # not landed: the host does not wait
    readback.request(torch.tensor([3.0]), "second")
    assert list(readback.arrived()) == [([1.0, 2.0], "first")]
    readback.request(torch.tensor([4.0]), "third")
    assert list(readback.arrived(wait=True)) == [([3.0], "second"), ([4.0], "third")]
    assert list(readback.arrived(wait=True)) == []


def test_a_run_whose_progress_lands_late_reports_every_step_in_order(tmp_path, late_copies):
    events = []
    run = train(small(), RunStore(tmp_path), events.append, progress_interval_s=0)
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert [(e.epoch, e.step) for e in progress] == [(epoch, step) for epoch in (1, 2) for step in range(1, 7)]
    assert all(len(e.step_losses) == 1 for e in progress)
    streamed = [loss for e in progress for loss in e.step_losses]
    assert streamed == pytest.approx([loss for r in run.metrics() for loss in r["step_losses"]], rel=1e-6)
    # The running mean of a report is over the steps up to it, not up to when it landed.
    first_epoch = run.metrics()[0]["step_losses"]
    assert progress[2].loss == pytest.approx(sum(first_epoch[:3]) / 3, rel=1e-5)


def test_a_loss_that_lands_late_still_fails_the_run(tmp_path, late_copies):
    with pytest.raises(TrainingFailed, match="non-finite in epoch 1"):
        train(small(norm="L1", lr=1e30, schedule="constant"), RunStore(tmp_path), progress_interval_s=0)


def test_no_progress_reaches_a_run_after_it_left_its_stack(tmp_path, late_copies):
    """A report requested while the run was in the stack lands after it was stopped: it is not shown."""
    store = RunStore(tmp_path)
    stops = [threading.Event(), threading.Event()]
    events, ids = [], []

    def on_event(event):
        events.append(event)
        if isinstance(event, RunStarted):
            ids.append(event.run_id)
        elif isinstance(event, StepProgress) and event.run_id == ids[1] and event.step == 2:
            stops[1].set()  # landed at step 3's report; the run leaves before step 4, step 3's report pending

    runs = train_stack([small(), small(norm="L1", seed=2)], store, on_event, stops=stops, progress_interval_s=0)
    assert [r.info().status for r in runs] == [Status.COMPLETED, Status.INTERRUPTED]
    stopped = [i for i, e in enumerate(events) if getattr(e, "run_id", None) == ids[1]]
    ended = next(i for i in stopped if isinstance(events[i], RunEnded))
    assert [events[i].step for i in stopped if isinstance(events[i], StepProgress)] == [1, 2]
    assert all(not isinstance(events[i], StepProgress) for i in stopped if i > ended)
    going_on = [e.step for e in events if isinstance(e, StepProgress) and e.run_id == ids[0]]
    assert going_on == list(range(1, 7)) * 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the copy into pinned memory and its event")
def test_on_cuda_the_copy_is_pinned_and_lands():
    readback = Readback(torch.device("cuda"))
    values = torch.arange(4.0, device="cuda")
    readback.request(values * 2, "doubled")
    host, landed, _ = readback._pending[0]
    assert host.is_pinned() and isinstance(landed, torch.cuda.Event)
    assert list(readback.arrived(wait=True)) == [([0.0, 2.0, 4.0, 6.0], "doubled")]
