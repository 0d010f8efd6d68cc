"""A run's training step (or a stack's, normcompress.stack): forward, loss, backward and the optimizer's
update, run as it is or replayed from a CUDA graph.

At batch 128 the seed model's step is a few dozen small kernels, and on a GPU its time goes to launching
them from Python, not to the arithmetic. Captured once in a CUDA graph over a static batch of indices
into the images already on the device, each later step is one copy of its indices and one replay. The
steps before the capture warm up on a side stream, as torch.cuda.graphs asks (the allocator and the
fused optimizer's state settle there); they are ordinary steps of the run. A batch of another size (an
epoch's last) runs as it would without a graph, and so does every step of a run the graph cannot
serve: graph_refusal says why, and a capture that fails says so once and the run goes on without it.
"""

import contextlib
from collections.abc import Callable

import torch

from .config import TrainConfig
from .events import Notice
from .metrics import to_float
from .session import Session
from .text import one_line

WARMUP_STEPS = 3  # eager steps on a side stream before the capture (PyTorch's examples use 3 to 11)


def train_step(s: Session, indices: torch.Tensor) -> torch.Tensor:
    """One update of the run's model on the training images at `indices`; its loss, detached. The
    learning-rate schedule is stepped by the caller, on the host, between steps."""
    target = to_float(s.train_images[indices])
    # No autocast weight cache: a graph may not hold one, and each weight is cast once per step anyway.
    with torch.autocast(s.device.type, torch.bfloat16, enabled=s.config.amp == "bf16", cache_enabled=False):
        output = s.step_model(target)
    if s.config.rate_lambda > 0:
        output, bpp = output
        loss = s.norm(output.float(), target) + s.config.rate_lambda * bpp.float()
    else:
        loss = s.norm(output.float(), target)  # the norm itself in float32
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    s.optimizer.step()
    return loss.detach()


def graph_refusal(config: TrainConfig, device: torch.device, world: int) -> str | None:
    """Why this run's step is not replayed from a CUDA graph, or None when it is (by default on CUDA)."""
    if device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if config.cuda_graph is False:
        return "--no-cuda-graph"
    if config.compile:
        return "--compile captures graphs of its own"
    if world > 1:
        return "a step across processes reduces its gradients outside any graph"
    if config.rate_lambda > 0:
        return "a rate term's entropy model trains without a graph"
    return None


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Let a graph replay the optimizer's update at the learning rate of the step: each group's rate
    becomes a tensor on the device, which the schedule fills in place, and the update reads its step
    count there too. A checkpoint keeps plain numbers (runs.checkpoint), so it resumes anywhere."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        group["capturable"] = True


class GraphedStep:
    """A step over a static buffer of batch indices, captured after WARMUP_STEPS calls and replayed for
    every later call of the same shape: a run's train_step, or a stack's step of all its runs."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], sessions: list[Session]):
        self.step, self.sessions = step, sessions  # the runs whose optimizers the step updates
        self.device = sessions[0].device
        self.indices = torch.zeros(shape, dtype=torch.long, device=self.device)  # what the graph reads
        self.replay: Callable[[], None] | None = None
        self.loss: torch.Tensor | None = None  # what the graph writes: read before the next replay
        self.warmed = 0
        self.failure: str | None = None

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        """The step's loss(es). From a replay it is the graph's own tensor, overwritten by the next step."""
        if self.failure is not None or indices.shape != self.indices.shape:
            return self.step(indices)
        self.indices.copy_(indices)
        if self.replay is None:
            if self.warmed < WARMUP_STEPS:
                self.warmed += 1
                with self.side_stream():
                    return self.step(self.indices)
            try:
                self.replay = self.capture(lambda: self.step(self.indices))
            except Exception as exc:  # torch raises RuntimeError, or its own kinds, for what a graph cannot hold
                self.failure = one_line((str(exc).strip() or type(exc).__name__).splitlines()[0])  # torch's first line
                for s in self.sessions:
                    note(
                        s,
                        f"the training step could not be captured in a CUDA graph ({self.failure}); trained without one",
                    )
                return self.step(indices)
            for s in self.sessions:
                note(
                    s,
                    f"its training step was replayed from a CUDA graph after {WARMUP_STEPS} warm-up steps",
                    emit=False,
                )
        self.replay()
        return self.loss

    @contextlib.contextmanager
    def side_stream(self):
        """Run on a side stream that starts after, and is waited for by, the current one."""
        current, side = torch.cuda.current_stream(self.device), torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            yield
        current.wait_stream(side)

    def capture(self, step: Callable[[], torch.Tensor]) -> Callable[[], None]:
        """Record `step` once (nothing runs) and return what replays it. Its gradients are made inside
        the graph's memory, so they are None going in."""
        for s in self.sessions:
            s.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.loss = step()
        return graph.replay


def note(s: Session, text: str, emit: bool = True) -> None:
    """A fact of how the run trained, kept in its summary's notices (and said now, where emit)."""
    if text not in s.summary.notices:  # a resumed run says it once
        s.summary.notices = [*s.summary.notices, text]
    if emit:
        s.emit(Notice(text))


class StepGraphs:
    """The step of a run, or of the runs of a stack, replayed from a CUDA graph where graph_refusal allows
    it for every one of them: one GraphedStep per set of runs stepping together (a run that leaves a
    stack means a new capture), none after a capture failed. `step(sessions, indices)` is the step itself."""

    def __init__(self, sessions: list[Session], step: Callable[[list[Session], torch.Tensor], torch.Tensor]) -> None:
        self.step = step
        self.refusal = next(filter(None, (graph_refusal(s.config, s.device, s.ranks.world) for s in sessions)), None)
        self.graph: tuple[tuple[int, ...], GraphedStep] | None = None  # for which sessions (their ids)
        for s in sessions:
            if self.refusal is None:
                make_capturable(s.optimizer, s.device)  # once: a graph reads the rate tensors it was captured with
            elif s.config.cuda_graph or (s.device.type == "cuda" and s.config.cuda_graph is None):
                note(s, f"trained without a CUDA graph: {self.refusal}")  # asked for, or the default

    def __call__(self, sessions: list[Session], indices: torch.Tensor) -> torch.Tensor:
        if self.refusal is not None:
            return self.step(sessions, indices)
        key = tuple(id(s) for s in sessions)
        if self.graph is None or self.graph[0] != key:
            self.graph = None  # the last set's graph and its memory go first
            self.graph = (key, GraphedStep(lambda rows: self.step(sessions, rows), tuple(indices.shape), sessions))
        loss = self.graph[1](indices)
        self.refusal = self.graph[1].failure  # a capture that failed is not tried again
        return loss


def graphed_step(s: Session) -> Callable[[torch.Tensor], torch.Tensor]:
    """What a run trained alone calls for each step: train_step, replayed from a graph where it may be."""
    graphs = StepGraphs([s], lambda sessions, indices: train_step(sessions[0], indices))
    return lambda indices: graphs([s], indices)
