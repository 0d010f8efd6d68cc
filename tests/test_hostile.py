"""Hostile input: damaged and malicious run stores against every command that reads one, path-traversal
references, markup and escape strings, unvalidated numbers, silent overwrites and unbounded decoding.

Each test names the defect class of the "Trust the store" issue it guards.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from normcompress.codec import CodecError, parse
from normcompress.codec.format import MODES, pack
from normcompress.losses import parse_norm
from normcompress.runs import RunStore, Status
from normcompress.train import TrainConfig, train

from .hostile import HANG_S, TINY, census, damages, fingerprint, invoke


def assert_one_line_error(result, code=None, fragment=""):
    outcome, exit_code, err = result
    assert outcome == "error", err
    if code is not None:
        assert exit_code == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 or all("skipped:" in line for line in lines[:-1]), err
    assert fragment in err, err
    assert "\x1b" not in err and "Traceback" not in err


# -- 2. damaged run files never crash a command, and nothing outside is touched --------------------------
# Every file's kinds of damage by default (a wrong value, deep nesting, a special file, a link out, a size
# bomb, one missing); all 61 with -m slow (or scripts/hostile_census.py), ten commands each.
QUICK_DAMAGES = {
    "summary epochs_done is a string", "summary nested 100k deep", "summary is a FIFO", "summary is a symlink out",
    "summary 2 MB", "config is {}", "config norm is markup", "config seed 2**70", "config missing",
    "metrics psnr NaN", "metrics line cut off", "metrics is a symlink out", "checkpoint of another model",
    "checkpoint truncated", "checkpoint is a FIFO", "entropy std NaN", "lock is a symlink out", "recon is a bomb",
}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [n if n in QUICK_DAMAGES else pytest.param(n, marks=pytest.mark.slow) for n in damages(Path("/nonexistent"))],
)
def test_a_damaged_run_never_crashes_a_command(template_store, work, name, monkeypatch):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", "")
    counts, bad = census(template_store, work, [name])
    assert not bad, "\n".join(bad)
    assert counts["error"] + counts["ok"] == 10


def test_damaged_runs_are_listed_with_the_reason_and_skipped_by_studies(template_store, tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(template_store, store_path)
    store = RunStore(store_path)
    interrupted, completed = store.runs()
    (completed.path / "summary.json").write_text('{"status": "completed", "epochs_done": "1"}')
    (interrupted.path / "config.json").write_text("{}")
    infos = {i.id: i for i in store.infos()}
    assert infos[completed.id].status == Status.DAMAGED and "epochs_done" in infos[completed.id].problem
    assert infos[interrupted.id].status == Status.DAMAGED and "lacks norm" in infos[interrupted.id].problem
    # A config.json of {} once made --resume train a different run with the defaults.
    os.environ["NORMCOMPRESS_RUNS_DIR"] = str(store_path)
    try:
        assert_one_line_error(invoke(["train", "--resume", interrupted.id]), 1, "lacks norm")
    finally:
        del os.environ["NORMCOMPRESS_RUNS_DIR"]
    assert interrupted.load_checkpoint()["epoch"] == 1 and len(store.runs()) == 2  # nothing trained
    from normcompress.study import find_run

    assert find_run(store, TrainConfig(**TINY, epochs=1).validated(), ("completed",)) is None


@pytest.mark.usefixtures("in_process_probes")
@pytest.mark.parametrize("stride", [pytest.param(1, marks=pytest.mark.slow), 6])
async def test_the_app_starts_over_a_hostile_store(template_store, tmp_path, stride):
    """Every damage at once, one run directory each: the app lists them all and survives opening,
    overlaying and previewing every `stride`-th row (it once died at launch with exit status 0); every
    row in the slow case, about 1.5 s of drawing each."""
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.screens import DetailsScreen
    from normcompress_tui.widgets.runs_table import RunsTable

    store_path = tmp_path / "store"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    interrupted, names = sorted(template_store.iterdir())[0], list(damages(outside))
    for number, (_name, damage) in enumerate(damages(outside).items()):
        target = store_path / f"{interrupted.name[:-6]}{number:06x}"
        shutil.copytree(interrupted, target, symlinks=True)
        damage(target)
    app = NormcompressApp(RunStore(store_path))
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(RunsTable)
        deadline = time.monotonic() + HANG_S
        while table.row_count < len(names) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert table.row_count == len(names)
        table.focus()
        for row in range(0, len(names), stride):
            table.move_cursor(row=row, animate=False)
            await pilot.press("space")  # overlay
            await pilot.press("enter")  # details
            if isinstance(app.screen, DetailsScreen):
                await pilot.press("escape")
            await pilot.press("space")  # off the chart again: 60 curves at once is another test
        await pilot.pause()
        assert app.is_running
        # Listing reads config.json, summary.json and the last line of metrics.jsonl (and checks that a
        # checkpoint exists); every damage to those shows as damaged. The others surface when used.
        listed = {name: table.infos[f"{interrupted.name[:-6]}{n:06x}"].status for n, name in enumerate(names)}
        expected = {n for n in names if n.split()[0] in ("summary", "config", "metrics")} - {
            "summary message is markup",
            "config dataset markup",
        } | {"checkpoint missing", "checkpoint is a FIFO"}
        assert {n for n, status in listed.items() if status == Status.DAMAGED} == expected
    assert outside.read_text() == "keep" and not (tmp_path / "created-through-lock").exists()


# -- 1. a run reference never resolves outside the store --------------------------------------------------
def traversal_refs(store: Path, run_id: str, victim: Path) -> list[str]:
    return [
        str(victim),
        f"{run_id}/../../{victim.parent.name}/{victim.name}",
        f"{run_id}/..",
        "/",
        "..",
        ".",
        f"./{run_id}",
        f"{run_id}/",
        str(store / run_id),
        "",
        " ",
        "\x00",
        f"../{store.name}/{run_id}",
        "link-" + run_id[-6:],
        run_id[:-6] + "ffffff",
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "rm", "--yes"],
        ["runs", "show"],
        ["eval"],
        ["train", "--resume"],
        ["runs", "compare"],
        ["compress", "-o", "OUT"],
    ],
)
def test_no_reference_reaches_outside_the_store(template_store, tmp_path, command, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(template_store, store)
    victim = tmp_path / "victim"
    shutil.copytree(next(store.iterdir()), victim)  # a run-shaped directory outside the store
    run_id = sorted(p.name for p in store.iterdir())[0]
    (store / (run_id[:-6] + "ffffff")).symlink_to(victim, target_is_directory=True)  # named like a run
    (store / ("link-" + run_id[-6:])).symlink_to(victim, target_is_directory=True)
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    before = fingerprint(tmp_path)
    for ref in traversal_refs(store, run_id, victim):
        args = [c.replace("OUT", str(tmp_path / "out")) for c in command]
        if args[0] == "compress":
            args = [args[0], ref, str(tmp_path / "x.png"), *args[1:]]
        else:
            args = [*args, ref]
        outcome, code, err = invoke(args)
        assert outcome == "error" and code in (1, 2), (ref, err)
        assert fingerprint(tmp_path) == before, ref  # nothing deleted, created or changed anywhere


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_reference_is_a_run_or_an_error(tmp_path_factory, ref):
    store_path = tmp_path_factory.getbasetemp() / "refs"
    store = RunStore(store_path)
    if not store_path.exists():
        store_path.mkdir()
        (store_path.parent / "outside-run").mkdir(exist_ok=True)
    try:
        run = store.get(ref)
    except Exception as exc:
        assert type(exc).__name__ in ("UsageError", "StoreError"), exc
    else:
        assert run.path.parent == store_path


def test_rm_removes_only_a_run_directory_inside_the_store(template_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(template_store, store)
    run_id = sorted(p.name for p in store.iterdir())[0]
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    outcome, _code, err = invoke(["runs", "rm", "--yes", run_id])
    assert outcome == "ok" and f"removed {run_id}" in err and not (store / run_id).exists()
    assert not [p for p in store.iterdir() if p.name.startswith(".")]  # no .removing- leftover


# -- 3. markup and escapes are shown as text --------------------------------------------------------------
def test_markup_and_escapes_in_file_names_and_stored_strings(template_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(template_store, store)
    _interrupted, completed = sorted(store.iterdir())
    summary = json.loads((completed / "summary.json").read_text())
    (completed / "summary.json").write_text(json.dumps({**summary, "message": "[/x]\x1b[2J\x07done"}))
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    outcome, _, _ = invoke(["runs", "show", completed.name])
    assert outcome == "ok"
    hostile = tmp_path / "[" / "x]\x1b[31mred.png"  # the path reads [/x]<ESC>[31mred.png
    hostile.parent.mkdir()
    hostile.write_text("not an image")
    outcome, code, err = invoke(
        ["reconstruct", completed.name, str(hostile), "-o", str(tmp_path / "o"), "--device", "cpu"]
    )
    assert outcome == "error" and "[/x]\\x1b[31mred.png" in err and "\x1b" not in err
    folder = tmp_path / "[/x]\x1b]0;title\x07"
    outcome, code, err = invoke(["train", "--dataset", f"folder:{folder}", "--epochs", "1"])
    assert outcome == "error" and code == 1 and "\x1b" not in err and "\x07" not in err
    outcome, code, err = invoke(["train", "--norm", "[/x]\x1b[31m"])
    assert outcome == "error" and code == 2 and "\\x1b" in err


def test_the_cli_console_prints_markup_literally(capsys):
    from normcompress.console import err, out

    out.print("[/x] [bold]not bold[/bold] \x1b[31m")
    err.print("[/y]")
    captured = capsys.readouterr()
    assert captured.out.strip() == "[/x] [bold]not bold[/bold] \\x1b[31m" and captured.err.strip() == "[/y]"


# -- 4. numbers are validated before they are used ----------------------------------------------------------
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image-size", "11", "--dataset", "folder:/tmp"], "multiple of 4"),
        (["--image-size", "12", "--dataset", "folder:/tmp"], "multiple of 4"),
        (["--image-size", "20", "--dataset", "folder:/tmp"], "from 28 to 1024"),
        (["--image-size", "30", "--dataset", "folder:/tmp"], "multiple of 4"),
        (["--image-size", "33", "--dataset", "folder:/tmp"], "multiple of 4"),
        (["--image-size", "100000", "--dataset", "folder:/tmp"], "from 28 to 1024"),
        (["--seed", "20000000000000"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--epochs", "1000000"], "--epochs"),
        (["--resume", ""], "empty run reference"),
        (["--runs-dir", ""], "--runs-dir is empty"),
    ],
)
def test_numbers_and_empty_strings_are_refused_in_one_line(tmp_path, monkeypatch, args, fragment):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path / "runs"))
    assert_one_line_error(invoke(["train", *args]), 2, fragment)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(1e-6, 1e6), st.sampled_from(["L1", "L2", "Linf", "Linf-image", "SSIM", "Lp:"])),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[1],
    ),
    st.floats(1, 1e12),
)
def test_every_canonical_norm_parses_again_to_itself(terms, p):
    text = "+".join(f"{w!r}*{n}{p!r}" if n == "Lp:" else f"{w!r}*{n}" for w, n in terms)
    norm = parse_norm(text)
    assert parse_norm(norm.name).name == norm.name  # Lp:1e+06 did not parse: an orphan run


def test_a_long_hybrid_makes_a_short_run_directory(tmp_path):
    norm = "+".join(f"0.123456*{n}" for n in ["L1", "L2", "Linf", "Linf-image", "SSIM", "Lp:3.5", "Lp:7.25"])
    run = train(TrainConfig(**{**TINY, "norm": norm}, epochs=1), RunStore(tmp_path))
    assert len(run.id) <= 80 and run.info().status == Status.COMPLETED and run.info().norm == parse_norm(norm).name


# -- 5. nothing is overwritten silently ---------------------------------------------------------------------
def test_outputs_are_never_overwritten_silently(template_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(template_store, store)
    run_id = sorted(p.name for p in store.iterdir())[1]
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    rng = np.random.default_rng(2)
    (tmp_path / "a").mkdir()
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "same.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "same.jpg")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a" / "same.png")
    out = tmp_path / "out"
    assert_one_line_error(
        invoke(["compress", run_id, str(tmp_path / "same.png"), str(tmp_path / "same.jpg"), "-o", str(out)]),
        2,
        "would both be written",
    )
    assert not out.exists() or not any(out.iterdir())
    assert invoke(["compress", run_id, str(tmp_path / "same.png"), "-o", str(out)])[0] == "ok"
    first = (out / "same.ncz").read_bytes()
    assert_one_line_error(
        invoke(["compress", run_id, str(tmp_path / "a" / "same.png"), "-o", str(out)]),
        2,
        "already exists; pass --force",
    )
    assert (out / "same.ncz").read_bytes() == first
    assert invoke(["compress", run_id, str(tmp_path / "a" / "same.png"), "-o", str(out), "--force"])[0] == "ok"
    assert (out / "same.ncz").read_bytes() != first
    (tmp_path / "b").mkdir()
    shutil.copy(out / "same.ncz", tmp_path / "b" / "same.ncz")
    assert_one_line_error(
        invoke(["decompress", str(out / "same.ncz"), str(tmp_path / "b" / "same.ncz"), "-o", str(tmp_path / "png")]),
        2,
        "would both be written",
    )
    for command in (
        ["compress", run_id, str(tmp_path / "same.png")],
        ["decompress", str(out / "same.ncz")],
        ["reconstruct", run_id, str(tmp_path / "same.png")],
    ):
        assert_one_line_error(invoke([*command, "-o", ""]), 2, "--out is empty")
    assert_one_line_error(invoke(["runs", "list", "--runs-dir", ""]), 2, "--runs-dir is empty")


# -- 6. decoding is bounded before anything large is allocated ---------------------------------------------
def ncz(width: int, height: int, alpha: bytes | None = None, id_tail: bytes = b"abcdef") -> bytes:
    """A well-formed .ncz file (valid checksum, no payload) that claims whatever it is given."""
    return pack(
        id_tail,
        b"\0" * 4,
        MODES["RGBA"] if alpha is not None else MODES["RGB"],
        width,
        height,
        32,
        0.25,
        0,
        0,
        b"",
        alpha,
        b"",
    )


def test_a_tiny_file_claiming_a_huge_image_is_refused_before_any_allocation():
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(CodecError, match="files hold at most 16,777,216"):
        parse(ncz(16384, 16384))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20 and time.perf_counter() - started < HANG_S


def test_an_alpha_bomb_is_refused_without_inflating_it(template_store, tmp_path):
    inflater = zlib.compressobj(9)
    bomb = b"".join(inflater.compress(b"\0" * (1 << 20)) for _ in range(256)) + inflater.flush()  # 256 MiB inflated
    from normcompress.codec import decode

    tracemalloc.start()
    with pytest.raises(CodecError):
        decode(ncz(32, 32, alpha=bomb), RunStore(template_store))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 << 20  # the plane is 1 KiB; the bomb would be 256 MiB


def test_a_crafted_ncz_id_is_shown_as_text(template_store, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(template_store))
    (tmp_path / "evil.ncz").write_bytes(ncz(32, 32, id_tail=b"\x1b]0;pwned\x07[/x]"))
    outcome, _code, err = invoke(["decompress", str(tmp_path / "evil.ncz"), "-o", str(tmp_path / "o")])
    assert outcome == "error" and "\\x1b]0;pwned\\x07[/x]" in err and "\x1b" not in err and "\x07" not in err


def test_special_files_and_huge_images_are_refused_not_read(template_store, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(template_store))
    run_id = sorted(p.name for p in template_store.iterdir())[1]
    assert_one_line_error(invoke(["decompress", "/dev/zero", "-o", str(tmp_path / "o")]), 1, "not a regular file")
    os.mkfifo(tmp_path / "fifo.ncz")
    os.mkfifo(tmp_path / "fifo.png")
    assert_one_line_error(
        invoke(["decompress", str(tmp_path / "fifo.ncz"), "-o", str(tmp_path / "o")]), 1, "not a regular file"
    )
    assert_one_line_error(
        invoke(["compress", run_id, str(tmp_path / "fifo.png"), "-o", str(tmp_path / "o")]), 1, "not a regular file"
    )
    Image.new("1", (12000, 12000)).save(tmp_path / "huge.png")  # 140 KB that claims 144 megapixels
    assert_one_line_error(
        invoke(["reconstruct", run_id, str(tmp_path / "huge.png"), "-o", str(tmp_path / "o"), "--device", "cpu"]),
        1,
        "more than the 16,777,216 pixels",
    )


def test_version_1_files_still_decode(template_store, tmp_path, monkeypatch):
    """Version 2 stores the tile as a varint (a run at --image-size 256 could not compress); the same
    file as version 1 (tile as one byte) decodes to the same picture."""
    from normcompress.codec import decode

    store = RunStore(template_store)
    run_id = sorted(p.name for p in template_store.iterdir())[1]
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(template_store))
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    assert invoke(["compress", run_id, str(tmp_path / "i.png"), "-o", str(tmp_path / "o")])[0] == "ok"
    data = (tmp_path / "o" / "i.ncz").read_bytes()
    header = parse(data)
    assert data[3] == 2 and header.tile == 32
    body = bytearray(data[:-4])
    body[3] = 1  # varint 32 and the byte 32 are the same byte: the file is a valid version 1 file
    old = bytes(body) + struct.pack("<I", zlib.crc32(body))
    assert np.array_equal(np.asarray(decode(old, store)), np.asarray(decode(data, store)))
    body[3] = 9
    with pytest.raises(CodecError, match="format version 9; this normcompress reads versions 1, 2"):
        parse(bytes(body) + struct.pack("<I", zlib.crc32(body)))


# -- 8. the rest: stale leftovers, locks through symlinks, Ctrl-C during imports, the default data dir ----
def test_leftovers_of_a_killed_process_are_removed(template_store, tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(template_store, store_path)
    interrupted = sorted(store_path.iterdir())[0]
    dead = 2**22 + 12345  # above the default pid_max, so no process has it
    (store_path / f".new-{dead}-deadbeef").mkdir()
    (store_path / f".removing-{dead}-deadbeef").mkdir()
    (interrupted / f".checkpoint.pt.{dead}-abc123.tmp").write_bytes(b"half")
    (interrupted / f".summary.json.{os.getpid()}-abc123.tmp").write_bytes(b"mine, live")
    store = RunStore(store_path)
    train(TrainConfig(**TINY, epochs=1), store)  # creating a run clears the store's stale staging
    assert (
        not (store_path / f".new-{dead}-deadbeef").exists() and not (store_path / f".removing-{dead}-deadbeef").exists()
    )
    train(TrainConfig(), store, resume=interrupted.name)  # holding a run clears its stale temporaries
    assert not (interrupted / f".checkpoint.pt.{dead}-abc123.tmp").exists()
    assert (interrupted / f".summary.json.{os.getpid()}-abc123.tmp").exists()  # a live writer's file stays


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_output_the_terminal_cannot_encode_is_escaped_not_a_traceback(tmp_path, encoding):
    """`runs list` prints `sample≤64`, and an error may quote a user's ±: under PYTHONIOENCODING=ascii or a
    Latin-1 terminal both ended in a UnicodeEncodeError traceback."""
    from normcompress.runs import Summary

    summary = Summary.from_json({"status": "completed", "epochs_done": 1, "metrics": {"psnr": 20.0}, "data": "sample"})
    RunStore(tmp_path).create(TrainConfig(epochs=1, dataset="sample", limit=64).validated(), summary)
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path), "PYTHONIOENCODING": encoding}
    command = [sys.executable, "-m", "normcompress"]
    listed = subprocess.run([*command, "runs", "list"], capture_output=True, text=True, env=env, check=False)
    assert listed.returncode == 0 and "sample\\u226464" in listed.stdout, listed.stderr
    refused = subprocess.run([*command, "train", "--norm", "L≤2"], capture_output=True, text=True, env=env, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("normcompress: error: ") and "\\u2264" in refused.stderr


def test_ctrl_c_during_the_imports_is_one_line(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "normcompress", "runs", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path)},
    )
    time.sleep(0.4)  # inside `import torch` (about 2 s here)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=HANG_S)
    assert "Traceback" not in err
    # 130 from our handler; 0 only if the imports beat the signal; -SIGINT if it came before Python had set
    # up its own handler (a loaded machine): the shell's usual death by Ctrl-C, silent, as it should be
    assert process.returncode in (0, 130, -signal.SIGINT), err


def test_a_failed_download_leaves_no_data_folder(tmp_path, monkeypatch):
    import torchvision

    def offline(root, **kwargs):
        Path(root).mkdir(parents=True, exist_ok=True)  # as torchvision does before it downloads
        raise OSError("offline")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    monkeypatch.chdir(tmp_path)
    from normcompress.data import load_data

    data = load_data("cifar10", "data")
    assert data.source == "sample" and not (tmp_path / "data").exists()


def test_rm_waits_for_no_one_and_a_removed_run_cannot_be_resumed(template_store, tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(template_store, store_path)
    store = RunStore(store_path)
    interrupted = store.runs()[0]
    store.remove(interrupted)
    from normcompress.runs import StoreError

    with pytest.raises(StoreError, match="was removed"), interrupted.hold():
        pass
    assert not interrupted.path.exists()
