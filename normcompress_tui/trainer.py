"""The app's training in a child process that streams the engine's events back through a pipe.

In a thread of the app's own interpreter, training shared the GIL with the UI: every timer, key and
repaint made the training thread hand the interpreter over, and runs were 10-14% slower than headless
on two cores. A child process has an interpreter of its own. Stop, quit and errors behave as before:
the app's cancel event reaches the child within one batch (the run is kept as interrupted), the
child's failure is raised in the app's worker as one line, and a child whose app died (kill -9, a
dropped SSH session) stops by itself. A study trains all its runs in one child (study_in_process).
"""

import functools
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable

from normcompress.config import TrainConfig
from normcompress.errors import NormcompressError
from normcompress.events import RunStarted, StudyProgress
from normcompress.runs import Run, RunStore
from normcompress.study_config import StudyConfig

STOP_WATCH_S = 1.0  # how long the stop watcher outlives its run, at most (a stop is passed on at once)
FRAME = struct.Struct("!I")  # each message: its length, then its pickle


class TrainingProcessError(NormcompressError):
    """The child's failure, as one line (a bad dataset, a non-finite loss, a crash)."""


class _Sender:
    """The child's end of the event pipe: length-prefixed pickles, one write each."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message: tuple) -> None:
        data = pickle.dumps(message)
        view = memoryview(FRAME.pack(len(data)) + data)
        with self.lock:
            while view:  # a pipe may take a large message in parts
                view = view[os.write(self.fd, view) :]


def _child_main(event_fd: int) -> None:
    """The child's whole life: read the request from stdin, train, send each event (and a study's
    progress), then ("done", a study's completed run ids or None) or ("error", one line). A line on
    stdin, or its end (the app is gone), stops the run within a batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the app, which asks first
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    sender = _Sender(event_fd)
    stdin = sys.stdin.buffer
    # ("run", config, resume, resume_on) or ("study", study, None, None)
    request, store_root, progress_interval_s = pickle.load(stdin)

    def watch_app() -> None:
        stdin.readline()  # b"stop\n", or b"" when the app closed its end or died
        stop.set()

    threading.Thread(target=watch_app, daemon=True).start()
    from normcompress import api  # torch: in the child only

    def send(message: tuple) -> None:
        try:
            sender.send(message)
        except BrokenPipeError:  # the app died between two events: stop as if asked, keeping the run
            stop.set()

    try:  # from here every failure is sent: one uncaught left the app "exit code -6: <no Python frame>"
        kind, subject, resume, resume_on = request  # a request of another version of this module fails here
        store = RunStore(store_root)
        if kind == "study":  # every run of it here, one after another or stacked, as the engine decides
            runs = api.run_study(
                subject,
                store,
                lambda update: send(("progress", update)),
                lambda event: send(("event", event)),
                stop,
                keep_going=True,
                **trainers_here(progress_interval_s),
            )
            send(("done", [run.id for run in runs]))
        else:
            api.train_run(
                subject, store, lambda event: send(("event", event)), stop, resume, progress_interval_s, resume_on
            )
            send(("done", None))
    except NormcompressError as exc:
        send(("error", str(exc)))
    except BaseException as exc:  # a crash of the child is reported, not lost
        send(("error", f"{type(exc).__name__}: {exc}"))


def _messages(fd: int, buffer: bytearray) -> list[tuple]:
    """The whole messages in the buffer after reading what the pipe has; EOFError when the pipe is closed."""
    chunk = os.read(fd, 1 << 20)
    if not chunk:
        raise EOFError
    buffer += chunk
    messages = []
    while len(buffer) >= FRAME.size:
        (size,) = FRAME.unpack_from(buffer)
        if len(buffer) < FRAME.size + size:
            break
        messages.append(pickle.loads(bytes(buffer[FRAME.size : FRAME.size + size])))
        del buffer[: FRAME.size + size]
    return messages


def train_in_process(
    config: TrainConfig | None,
    store: RunStore,
    on_event: Callable[[object], None],
    cancel: threading.Event,
    resume: str | None = None,
    progress_interval_s: float = 0.5,
    resume_on: str | None = None,
) -> Run | None:
    """Run api.train_run in a fresh Python process and hand each of its events to on_event in this
    thread; return the run when it has ended (None if it was stopped before it was created), raise
    TrainingProcessError (one line) if it failed."""
    started: list[str] = []

    def relay(event) -> None:
        if isinstance(event, RunStarted):
            started.append(event.run_id)
        on_event(event)

    _train_in_child(("run", config, resume, resume_on), store.root, relay, cancel, progress_interval_s)
    return store.get(started[-1]) if started else None


def study_in_process(
    study: StudyConfig,
    store: RunStore,
    on_progress: Callable[[StudyProgress], None],
    on_event: Callable[[object], None],
    cancel: threading.Event,
    progress_interval_s: float = 0.5,
) -> list[Run]:
    """A whole study (api.run_study, going on past a failed run) in one fresh Python process, its
    progress and events handed to on_progress and on_event in this thread; its completed runs in study
    order. One child for all its runs: with a child for each, every run paid again for importing torch,
    building the optimizer (which imports torch._dynamo) and loading the data, about 2.5 s a run on
    two cores."""
    request = ("study", study, None, None)
    done = _train_in_child(request, store.root, on_event, cancel, progress_interval_s, on_progress)
    return [store.get(run_id) for run_id in done or []]


def trainers_here(progress_interval_s: float) -> dict[str, Callable]:
    """api.run_study's trainers for a study trained in this process, reporting steps this often."""
    from normcompress import api

    return {
        "trainer": functools.partial(api.train_run, progress_interval_s=progress_interval_s),
        "stack_trainer": functools.partial(api.train_runs_together, progress_interval_s=progress_interval_s),
    }


def _train_in_child(request: tuple, store_root, on_event, cancel, progress_interval_s, on_progress=None):
    """Run a request in a child; what its ("done", …) message carries (a study's run ids), or raise."""
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "normcompress_tui.trainer", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)  # the child holds the only writing end: end of input means the child is gone
        outcome: dict = {}
        stdin_lock, finished = threading.Lock(), threading.Event()

        def pass_on_stop() -> None:
            """The cancel flag, handed to the child the moment it is set. The reading loop below blocks
            until the child speaks: on two cores a thread that polled would wake beside training."""
            while not finished.is_set():
                if cancel.wait(STOP_WATCH_S):
                    with stdin_lock:
                        if not finished.is_set():
                            try:
                                child.stdin.write(b"stop\n")
                                child.stdin.flush()
                            except BrokenPipeError:
                                pass  # the child is gone already; its exit code says how
                    return

        try:
            child.stdin.write(pickle.dumps((request, str(store_root), progress_interval_s)))
            child.stdin.flush()
            threading.Thread(target=pass_on_stop, daemon=True).start()  # after the request: one writer at a time
            outcome = _relay(read_fd, on_event, on_progress)
        except BrokenPipeError:
            pass  # the child is gone already; its exit code says how
        finally:
            os.close(read_fd)
            with stdin_lock:
                finished.set()
                try:
                    child.stdin.close()  # the child's watcher sees the end: it stops if it has not
                except BrokenPipeError:
                    pass
            child.wait()
        failure = outcome.get("error")
        if failure is None and child.returncode:
            errors.seek(0)
            lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
            failure = f"the training process ended with exit code {child.returncode}" + (
                f": {lines[-1]}" if lines else ""
            )
    if failure is not None:
        raise TrainingProcessError(failure)
    return outcome.get("done")


def _relay(read_fd: int, on_event, on_progress) -> dict:
    """Hand the child's events (and a study's progress) on as they come, until it closes its end;
    its ("done", …) and ("error", …) payloads, by kind."""
    outcome, buffer = {}, bytearray()
    while True:
        try:
            messages = _messages(read_fd, buffer)
        except EOFError:
            return outcome
        for kind, payload in messages:
            if kind == "event":
                on_event(payload)
            elif kind == "progress":
                if on_progress is not None:
                    on_progress(payload)
            else:
                outcome[kind] = payload


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
    # Not a normal exit: the stdin watcher is blocked in a read, and finalizing the interpreter under it
    # aborts (SIGABRT on stdin's buffer lock). Everything the child had to say went through os.write.
    os._exit(0)
