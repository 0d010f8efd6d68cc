import errno
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from normcompress import files as files_module
from normcompress import runs as runs_module
from normcompress.config import TrainConfig
from normcompress.errors import UsageError
from normcompress.files import atomic_write
from normcompress.runs import RunStore, StoreError, Summary


def make_run(store, norm="L1", summary=None):
    summary = Summary.from_json(summary or {"status": "completed", "epochs_done": 0})
    return store.create(TrainConfig(norm=norm, epochs=3).validated(), summary)


def test_create_gives_sortable_unique_ids(tmp_path):
    store = RunStore(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda i: make_run(store, norm="0.5*L1+0.5*L2"), range(40)))
    ids = [r.id for r in runs]
    assert len(set(ids)) == 40 and sorted(p.name for p in tmp_path.iterdir()) == sorted(ids)
    assert all("*" not in i and ":" not in i and "0.5xL1+0.5xL2" in i for i in ids)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_atomic_write_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    atomic_write(target, b"old")
    real_open = open

    class FullDisk:
        def __init__(self, *args):
            self.file = real_open(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module, "open", FullDisk, raising=False)
    with pytest.raises(files_module.FileError, match="disk is full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["summary.json"]  # the temporary file is gone


def test_prefix_lookup(tmp_path):
    store = RunStore(tmp_path)
    a, b = make_run(store, "L1"), make_run(store, "L2")
    assert store.get(a.id).id == a.id
    assert store.get(a.id[:-2]).id == a.id
    assert store.get(b.id[-6:]).id == b.id  # the random suffix that charts show
    with pytest.raises(UsageError, match="matches 2 runs"):
        store.get(a.id[:8])
    with pytest.raises(StoreError, match="no run"):
        store.get("nope")
    assert b.id in [r.id for r in store.runs()]


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda run: (run.path / "summary.json").write_text('{"status": "compl'), "summary.json is not valid JSON"),
        (lambda run: (run.path / "config.json").unlink(), "config.json is missing"),
        (lambda run: (run.path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo'), "cut off"),
        (lambda run: run.checkpoint_path.unlink(), "checkpoint.pt is missing"),
    ],
)
def test_damaged_runs_are_listed_not_fatal(tmp_path, damage, problem):
    store = RunStore(tmp_path)
    good = make_run(store)
    run = make_run(store, summary={"status": "completed", "epochs_done": 2})
    (run.path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    run.save_checkpoint({"epoch": 2})
    damage(run)
    infos = {i.id: i for i in store.infos()}
    assert infos[good.id].status == "completed"
    assert infos[run.id].status == "damaged" and problem in infos[run.id].problem


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = make_run(RunStore(tmp_path))
    run.save_checkpoint({"epoch": 1, "weights": list(range(1000))})
    data = run.checkpoint_path.read_bytes()
    run.checkpoint_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match=r"checkpoint\.pt cannot be read"):
        run.load_checkpoint()


def test_running_run_whose_process_died_reads_as_interrupted(tmp_path):
    run = make_run(RunStore(tmp_path), summary={"status": "running", "epochs_done": 0})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from normcompress.runs import Run; from pathlib import Path\n"
            "with Run(Path(sys.argv[1])).hold():\n    print('held', flush=True); time.sleep(60)",
            str(run.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run.info().status == "running" and run.is_live()
        with pytest.raises(StoreError, match="being trained by another process"), run.hold():
            pass
        with pytest.raises(StoreError, match="being trained"):
            RunStore(tmp_path).remove(run)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run.info().status == "interrupted" and not run.is_live()


def test_metrics_survive_a_resume_cut(tmp_path):
    run = make_run(RunStore(tmp_path))
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch})
    assert [r["epoch"] for r in run.keep_metrics_through(2)] == [1, 2]
    assert [json.loads(line)["epoch"] for line in (run.path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_polling_rereads_only_the_runs_that_changed(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    quiet, appended, edited = (make_run(store, summary={"status": "completed", "epochs_done": 1}) for _ in range(3))
    for run in (quiet, appended, edited):
        run.append_metrics({"epoch": 1, "psnr": 10.0})
        run.save_checkpoint({"epoch": 1})
    assert len(store.infos()) == 3
    read = []
    real_info = runs_module.Run.info
    monkeypatch.setattr(runs_module.Run, "info", lambda self: read.append(self.id) or real_info(self))
    assert [i.status for i in store.infos()] == ["completed"] * 3 and read == []
    with open(appended.path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "psn')  # a cut-off line, written in place
    (edited.path / "summary.json").write_text(json.dumps({"status": "failed", "epochs_done": 1}))
    infos = {i.id: i for i in store.infos()}
    assert sorted(read) == sorted([appended.id, edited.id])
    assert infos[appended.id].status == "damaged" and infos[edited.id].status == "failed"
    assert infos[quiet.id].status == "completed"
    new = make_run(store, "L2")
    assert new.id in {i.id for i in store.infos()}


def test_long_last_lines_are_read_whole(tmp_path):
    """An epoch line carries every step's loss: a CIFAR-10 epoch makes it longer than one read chunk."""
    store = RunStore(tmp_path)
    run = make_run(store, summary={"status": "completed", "epochs_done": 1})
    run.save_checkpoint({"epoch": 1})
    run.append_metrics({"epoch": 1, "step_losses": [0.123456] * 3000})
    assert run.info().status == "completed" and len(run.metrics()[0]["step_losses"]) == 3000
    with open(run.path / "metrics.jsonl", "r+b") as f:
        f.truncate(20_000)
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
    assert run.info().status == "damaged" and "garbled" in run.info().problem


def test_a_run_carried_as_files_is_added_whole_or_not_at_all(tmp_path):
    """A Ray worker's run arrives as its files: added in one rename, the same bytes, nothing else."""
    source = make_run(RunStore(tmp_path / "worker"), summary={"status": "completed", "epochs_done": 1})
    source.append_metrics({"epoch": 1, "loss": 0.5, "psnr": 20.0})
    atomic_write(source.checkpoint_path, b"weights")
    (source.path / "run.lock").write_bytes(b"")  # the worker's lock does not travel
    files = source.files()
    assert sorted(files) == ["checkpoint.pt", "config.json", "metrics.jsonl", "summary.json"]

    store = RunStore(tmp_path / "driver")
    added = store.add(source.id, files)
    assert [r.id for r in store.runs()] == [source.id] and os.listdir(store.root) == [source.id]
    assert added.files() == files and added.info().status == "completed" and added.metrics()[0]["psnr"] == 20.0
    with pytest.raises(StoreError, match="already in"):
        store.add(source.id, files)
    # A resumed run comes back with more epochs: with replace it takes the old one's place.
    grown = {
        **files,
        "summary.json": json.dumps({"status": "completed", "epochs_done": 2}).encode(),
        "metrics.jsonl": files["metrics.jsonl"] + b'{"epoch": 2, "loss": 0.4, "psnr": 21.0}\n',
    }
    store.add(source.id, grown, replace=True)
    assert [r["psnr"] for r in store.get(source.id).metrics()] == [20.0, 21.0]
    assert os.listdir(store.root) == [source.id]  # the old version and the staging are gone


@pytest.mark.parametrize(
    "run_id, change, reason",
    [
        ("../escape", {}, "is not a run id"),
        (None, {"../../outside.json": b"{}"}, "unexpected files"),
        (None, {"run.lock": b""}, "unexpected files"),
        (None, {"summary.json": None}, "config.json or summary.json missing"),
        (None, {"summary.json": b'{"status": "exploded"}'}, "no valid status"),
        (None, {"metrics.jsonl": b'{"epoch": 1, "loss": 0.5'}, "cut off"),
        (None, {"config.json": "text, not bytes"}, "is not bytes"),
        (None, {"recon.png": b"x" * ((64 << 20) + 1)}, "is not bytes within"),
    ],
)
def test_hostile_run_files_are_refused_and_nothing_is_left(tmp_path, run_id, change, reason):
    source = make_run(RunStore(tmp_path / "worker"), summary={"status": "completed", "epochs_done": 1})
    source.append_metrics({"epoch": 1, "loss": 0.5})
    atomic_write(source.checkpoint_path, b"weights")
    files = {**source.files(), **change}
    files = {name: data for name, data in files.items() if data is not None}
    store = RunStore(tmp_path / "driver")
    with pytest.raises(StoreError, match=reason):
        store.add(run_id or source.id, files)
    assert not store.root.exists() or os.listdir(store.root) == []
    assert not (tmp_path / "outside.json").exists()
