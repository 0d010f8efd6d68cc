"""Studies on a local Ray cluster: the same runs as a local study, reused on a re-run, a killed worker
that leaves the store clean, a stop that keeps what finished. Skipped only without the extra
(`pip install -e '.[cluster]'`), which .ci/run installs."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

from normcompress.runs import RUN_ID, RunStore
from normcompress.study import StudyConfig, run_study

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.cluster

SMALL = {"norms": ["L2", "L1"], "seeds": 2, "epochs": 1, "dataset": "synthetic", "limit": 128, "devices": ["cpu"]}
LONG = {
    "norms": ["L2", "L1"],
    "seeds": 1,
    "epochs": 20,
    "dataset": "synthetic",
    "limit": 64,
    "batch_size": 64,
    "devices": ["cpu"],
}


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    """One local Ray instance of 2 CPUs for the module (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def entries(store: RunStore) -> list[str]:
    """What the store's directory holds beside its runs' own (the PCA cache aside): any leftover shows."""
    return sorted(name for name in os.listdir(store.root) if name != ".baselines") if store.root.exists() else []


def identity(run) -> dict:
    return {k: v for k, v in asdict(run.train_config()).items() if k != "device"}


def test_a_study_on_ray_writes_the_runs_a_local_study_writes_and_reuses_them(tmp_path):
    updates = []
    on_ray = RunStore(tmp_path / "ray")
    runs = run_study(StudyConfig.of_norms(**SMALL, ray="local"), on_ray, updates.append)
    here = run_study(StudyConfig.of_norms(**SMALL), RunStore(tmp_path / "here"))

    assert len(entries(on_ray)) == 4 and all(RUN_ID.fullmatch(name) for name in entries(on_ray))
    assert [r.info().status for r in runs] == ["completed"] * 4
    assert [identity(r) for r in runs] == [identity(r) for r in here]
    for a, b in zip(runs, here, strict=False):  # one torch thread on Ray, two here: sums in another order
        assert a.metrics()[-1]["psnr"] == pytest.approx(b.metrics()[-1]["psnr"], rel=1e-3)
    started = [u for u in updates if u.state == "training"]
    assert sorted(u.label for u in started) == ["L1 seed 0", "L1 seed 1", "L2 seed 0", "L2 seed 1"]
    assert all(re.fullmatch(r"\S+ pid \d+", u.where) for u in started)
    assert [u.message for u in updates if u.state == "epoch"] == ["epoch 1/1"] * 4
    assert [u.done for u in updates if u.state == "finished"] == [1, 2, 3, 4]

    again = []
    rerun = run_study(StudyConfig.of_norms(**SMALL, ray="local"), on_ray, again.append)
    assert [r.id for r in rerun] == [r.id for r in runs]
    assert [u.state for u in again] == ["reused"] * 4 and len(entries(on_ray)) == 4


def _kill_first_attempt(label: str, killed: list[int]):
    """A progress callback that kills the worker training `label` when its first epoch ends, once."""

    def on_progress(update) -> None:
        if update.label == label and update.state == "epoch" and not killed:
            pid = int(update.where.rsplit(" ", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    return on_progress


def test_a_killed_worker_leaves_no_half_run_and_is_retried(tmp_path):
    store = RunStore(tmp_path / "runs")
    updates, killed = [], []
    record = _kill_first_attempt("L2 seed 0", killed)
    runs = run_study(
        StudyConfig.of_norms(**LONG, ray="local", retries=0),
        store,
        lambda u: (updates.append(u), record(u)),
        keep_going=True,
    )
    assert killed
    (failed,) = [u for u in updates if u.state == "failed"]
    assert failed.label == "L2 seed 0" and "worker died" in failed.message
    assert [r.train_config().norm for r in runs] == ["L1"]  # the other run finished
    assert entries(store) == [runs[0].id]  # and nothing of the killed one is in the store

    # Again with a retry: L1 is reused, L2's first worker is killed again and its second attempt completes.
    updates, killed = [], []
    record = _kill_first_attempt("L2 seed 0", killed)
    runs = run_study(
        StudyConfig.of_norms(**LONG, ray="local", retries=1), store, lambda u: (updates.append(u), record(u))
    )
    assert killed
    assert [u.state for u in updates if u.label == "L1 seed 0"] == ["reused"]
    assert "retrying" in [u.state for u in updates if u.label == "L2 seed 0"]
    assert [r.info().status for r in runs] == ["completed", "completed"]
    assert len(runs[0].metrics()) == 20 and len(entries(store)) == 2
    # The private store of each killed worker was swept by the task that ran after it on this node.
    private = Path(tempfile.gettempdir()) / "normcompress-ray"
    assert not [p for p in private.iterdir() if any(f"-{pid}-" in p.name for pid in killed)]


def test_a_failing_run_is_reported_and_the_study_ends_in_one_line(tmp_path):
    # A folder dataset that does not exist on the worker: the task raises, the other runs still train.
    study = StudyConfig.of_norms(
        norms=["L2"], seeds=1, epochs=1, dataset=f"folder:{tmp_path / 'nowhere'}", devices=["cpu"], ray="local"
    )
    with pytest.raises(Exception) as caught:
        run_study(study, RunStore(tmp_path / "runs"))
    message = str(caught.value)
    assert message.startswith("1 run of 1 failed (L2 seed 0: image folder ") and "\n" not in message
    assert "nowhere does not exist" in message
    assert entries(RunStore(tmp_path / "runs")) == []


def test_a_run_that_fails_on_a_worker_comes_back_as_a_failed_run(tmp_path):
    """A run the engine ended as failed (its weights blew up) travels like any run, and says why."""
    store = RunStore(tmp_path / "runs")
    updates = []
    runs = run_study(
        StudyConfig.of_norms(
            norms=["L2"], seeds=1, epochs=2, dataset="synthetic", limit=64, lr=1e30, devices=["cpu"], ray="local"
        ),
        store,
        updates.append,
        keep_going=True,
    )
    assert runs == []
    (failed,) = [u for u in updates if u.state == "failed"]
    assert "became non-finite in epoch 1" in failed.message and "\n" not in failed.message
    (run,) = store.runs()
    assert run.info().status == "failed" and "non-finite" in run.summary().message


def test_stopping_a_study_on_ray_cancels_the_tasks_out_and_keeps_the_runs_done(tmp_path):
    # Two CPUs per run on a 2-CPU cluster: one run at a time, so a stop after the first finds the second out.
    store, cancel = RunStore(tmp_path / "runs"), threading.Event()
    states = []

    def on_progress(update) -> None:
        states.append((update.label, update.state))
        if update.state == "finished":
            cancel.set()

    runs = run_study(
        StudyConfig.of_norms(**LONG, ray="local", cpus_per_run=2), store, on_progress, cancel=cancel, keep_going=True
    )
    assert len(runs) == 1 and entries(store) == [runs[0].id]
    assert [s for s in states if s[1] == "finished"] == [(runs[0].train_config().norm + " seed 0", "finished")]


def test_ctrl_c_on_the_cli_cancels_the_runs_out_on_ray_and_keeps_the_runs_done(tmp_path):
    """The real driver: `study --ray` (a local instance of its own), two runs one at a time (2 CPUs each),
    Ctrl-C once the first has come back."""
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path / "runs")}
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "normcompress",
            "study",
            "--ray",
            "--ray-cpus",
            "2",
            "--norms",
            "L2,L1",
            "--seeds",
            "1",
            "--epochs",
            "10",
            "--dataset",
            "synthetic",
            "--limit",
            "64",
            "--batch-size",
            "64",
            "--devices",
            "cpu",
            "--out",
            str(tmp_path / "report"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    for line in driver.stderr:
        lines.append(line)
        if line.startswith("finished"):
            driver.send_signal(signal.SIGINT)
            break
    lines += driver.stderr.readlines()
    assert driver.wait() == 130, lines
    assert re.fullmatch(r"training  L2 seed 0 on \S+ pid \d+\n", lines[0]), lines
    assert "the runs out on Ray were cancelled" in "".join(lines) and "Traceback" not in "".join(lines)
    (run,) = RunStore(tmp_path / "runs").runs()
    assert run.info().status == "completed" and f"finished  {run.train_config().norm} seed 0\n" in lines
    assert entries(RunStore(tmp_path / "runs")) == [run.id] and not (tmp_path / "report").exists()


async def test_the_apps_study_screen_sends_a_study_to_ray_and_shows_each_runs_epoch(tmp_path):
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.study_queue import StudyQueue
    from tests.test_tui import set_fields, start_study, wait_for

    store = RunStore(tmp_path)
    app = NormcompressApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await set_fields(pilot, epochs="2", dataset="synthetic", device="cpu")
        await start_study(pilot, "L2", "2", ray="local")
        queue = app.query_one(StudyQueue)
        seen = set()
        show = queue._show

        def recorded(ending: str = "") -> None:  # every state the queue shows, not only those a poll catches
            show(ending)
            seen.add(str(queue.render()))

        queue._show = recorded
        await wait_for(pilot, lambda: not app.controller.training)
        assert queue.states == {"L2 seed 0": "finished", "L2 seed 1": "finished"}
        assert any("▶ L2 seed 0 1/2" in text or "▶ L2 seed 1 1/2" in text for text in seen), seen
        assert "done: 2 of 2 runs completed" in str(queue.render())
        assert sorted(i.config.seed for i in store.infos() if i.status == "completed") == [0, 1]


@pytest.mark.parametrize(
    "address, message",
    [
        ("127.0.0.1:1", "cannot reach the Ray cluster at '127.0.0.1:1': Connection refused"),
        ("ray://127.0.0.1:1", "cannot reach the Ray cluster at 'ray://127.0.0.1:1'"),
        ("no-port-here", "is not an address: give HOST:PORT"),
        ("host:99999", "is not an address"),
    ],
)
def test_an_address_nothing_answers_at_is_one_line_at_once(run_cli, tmp_path, address, message):
    """Ray waits minutes for a cluster that is not there; the study says so in one line, with no run."""
    code, _, err = run_cli(
        "study",
        "--ray",
        address,
        "--norms",
        "L2",
        "--seeds",
        "1",
        "--dataset",
        "synthetic",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "report"),
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
