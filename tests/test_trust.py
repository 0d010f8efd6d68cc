"""Hostile input, second pass: the app's own files, control sequences from files and the environment,
lost updates, planted links, exports over a run, models that need more images, and the codec's streams.

Each test names the defect of the "Trust, second pass" issue it guards (1-8).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from normcompress.runs import RunStore, Status, StoreError, Summary
from normcompress.train import TrainConfig, train

from .hostile import ESCAPES, RAW_ESCAPES, STORE_FOLDERS, fingerprint, hostile_states, invoke, with_payload, wrong_kinds
from .test_hostile import TINY, assert_one_line_error

pytestmark = pytest.mark.usefixtures("in_process_probes")


def store_copy(template: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the template store: its path, the interrupted run's id and the completed one's."""
    store = tmp_path / "store"
    shutil.copytree(template, store)
    interrupted, completed = sorted(p.name for p in store.iterdir())
    return store, interrupted, completed


# -- 1. too few images for a PCA model: one line before a run exists ----------------------------------------
@pytest.mark.parametrize(
    "model, images, needed",
    [("pca-refine", 1, 256), ("pca-refine", 64, 256), ("pca-refine", 255, 256), ("hyperprior", 767, 768)],
)
def test_a_pca_model_on_too_few_images_is_refused_before_a_run_exists(tmp_path, monkeypatch, model, images, needed):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path / "runs"))
    rate = ["--rate-lambda", "0.01"] if model == "hyperprior" else []
    assert_one_line_error(
        invoke(["train", "--dataset", "synthetic", "--model", model, "--epochs", "1", "--limit", str(images), *rate]),
        2,
        f"at least {needed} training images",
    )
    assert RunStore(tmp_path / "runs").runs() == []  # no bogus `interrupted 0/1` run
    assert_one_line_error(
        invoke(
            [
                "study",
                "-o",
                str(tmp_path / "report"),
                "--norms",
                "L1",
                "--seeds",
                "1",
                "--dataset",
                "synthetic",
                "--model",
                model,
                "--limit",
                str(images),
                *rate,
            ]
        ),
        2,
        f"at least {needed} training images",
    )
    assert RunStore(tmp_path / "runs").runs() == []


def test_a_folder_of_nineteen_images_is_too_few_for_pca_refine_and_enough_for_the_seed_model(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(19):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path / "runs"))
    assert_one_line_error(
        invoke(["train", "--dataset", f"folder:{folder}", "--model", "pca-refine", "--epochs", "1"]),
        2,
        "these data give 17",
    )  # 19 images less the 10% held out for validation
    assert RunStore(tmp_path / "runs").runs() == []
    assert invoke(["train", "--dataset", f"folder:{folder}", "--epochs", "1", "--device", "cpu"])[0] == "ok"


def test_pca_refine_on_exactly_enough_images_trains(tmp_path):
    run = train(
        TrainConfig(norm="L2", dataset="synthetic", limit=256, epochs=1, model="pca-refine", device="cpu"),
        RunStore(tmp_path),
    )
    assert run.info().status == Status.COMPLETED


def test_a_run_whose_setup_fails_is_not_left_behind_as_interrupted(tmp_path, monkeypatch):
    from normcompress import train as engine

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine, "setup_session", broken)
    with pytest.raises(RuntimeError):
        train(TrainConfig(**TINY, epochs=1), RunStore(tmp_path))
    assert RunStore(tmp_path).runs() == [] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resume_of_a_completed_run_without_its_checkpoint_is_refused(template_store, tmp_path, monkeypatch):
    store, _, completed = store_copy(template_store, tmp_path)
    (store / completed / "checkpoint.pt").unlink()
    before = (store / completed / "metrics.jsonl").read_bytes()
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    assert_one_line_error(invoke(["train", "--resume", completed]), 1, "no checkpoint.pt to continue from")
    assert (store / completed / "metrics.jsonl").read_bytes() == before  # not trained again from scratch


# -- 2. the app's state file: every wrong type of every key, dropped with one notice ------------------------
def json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["form", "chart", "runs", "other"]),
        st.dictionaries(
            st.sampled_from(
                ["metric", "smoothing", "log", "x_axis", "zoom", "sort", "descending", "overlays", "folder", "norm"]
            ),
            json_values(),
            max_size=6,
        )
        | json_values(),
        max_size=4,
    )
)
def test_the_state_layer_keeps_only_values_of_the_schemas_types(state):
    from normcompress_tui.state import SCHEMA, checked

    sections, _dropped = checked(state)
    kinds = {"text": str, "text?": (str, type(None)), "number": (int, float), "flag": bool, "texts": list}
    for name, keys in SCHEMA.items():
        for key, value in sections[name].items():
            kind = keys.get(key, keys.get("*"))
            assert isinstance(value, kinds[kind]) and (kind == "flag" or not isinstance(value, bool))
            assert "\x1b" not in json.dumps(value) and "\\u001b" not in json.dumps(value)
    originally = sum(len(v) for v in state.values() if isinstance(v, dict))
    assert sum(len(v) for v in sections.values()) <= originally


async def test_the_state_the_app_saves_with_its_defaults_is_read_back_without_a_notice(tmp_path):
    """An ungrouped chart saved its group_by as null, which the state's schema then dropped as "not
    text": every launch after the first said so."""
    from normcompress_tui.app import NormcompressApp

    for launch in range(2):
        app = NormcompressApp(RunStore(tmp_path))
        notes: list[str] = []
        app.notify = lambda message, notes=notes, **kwargs: notes.append(message)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert not [n for n in notes if "saved state" in n], (launch, notes)
            await pilot.press("m")  # a view that differs from the defaults, so that it is written
            app.main.save_state()
    saved = json.loads((tmp_path / ".app-state.json").read_text())
    assert saved["chart"]["group_by"] is None and saved["chart"]["metric"] != "loss"


@pytest.mark.parametrize("name", list(hostile_states()))
async def test_the_app_starts_over_a_state_file_of_wrong_types(tmp_path, name):
    """Each key of the state file holding the wrong kind of value once killed the app at every launch
    (TypeError: unhashable type in the widgets' restore code), with exit status 0."""
    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.state import state_path
    from normcompress_tui.widgets.runs_table import RunsTable

    state_path(tmp_path).write_text(json.dumps(hostile_states()[name]))
    app = NormcompressApp(RunStore(tmp_path))
    notes = []
    app.notify = lambda message, **kwargs: notes.append(message)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.is_running and app.query_one(RunsTable)
        assert [n for n in notes if "saved state" in n], notes  # one notice says what was dropped
        state = app.main.current_state()  # what the widgets hold is a state of the right types again
        assert state["runs"]["sort"] == "id" and state["chart"]["metric"] == "loss"
        assert "ZAP" not in json.dumps(state)
        await pilot.press("q")
    assert app.return_code == 0


def test_every_key_of_the_schema_is_tried_with_every_wrong_kind():
    from normcompress_tui.state import SCHEMA, checked

    for section, keys in SCHEMA.items():
        for key, kind in keys.items():
            for wrong, value in wrong_kinds(kind).items():
                sections, dropped = checked({section: {"folder" if key == "*" else key: value}})
                assert sections[section] == {} and len(dropped) == 1, (section, key, wrong)


def test_an_app_that_dies_exits_non_zero(tmp_path, monkeypatch):
    from normcompress_tui import app as app_module

    def crash(self):
        raise RuntimeError("a widget's restore code blew up")

    from normcompress_tui.main_screen import MainScreen

    run = app_module.NormcompressApp.run
    monkeypatch.setattr(MainScreen, "restore_state", crash)
    monkeypatch.setattr(app_module.NormcompressApp, "run", lambda self: run(self, headless=True))
    monkeypatch.setattr(sys, "argv", ["normcompress-tui", "--runs-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        app_module.main()
    assert exit_info.value.code == 1


def test_a_store_that_is_a_file_is_one_line_for_the_app_and_the_cli(tmp_path):
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("a file")
    for command in (
        ["-c", "from normcompress_tui.app import main; main()"],
        ["-m", "normcompress", "runs", "list"],
        ["-m", "normcompress", "train", "--epochs", "1"],
    ):
        done = subprocess.run(
            [sys.executable, *command],
            capture_output=True,
            text=True,
            env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(not_a_folder)},
            timeout=300,
        )
        assert done.returncode == 2 and "is not a directory" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not_a_folder.read_text() == "a file"


# -- 3. control sequences from files and the environment never reach the terminal -------------------------
APP_ON_A_PTY = """
import fcntl, os, pty, select, struct, sys, termios, time
pid, terminal = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))  # wide: the whole path in the header
    os.environ["TERM"] = "xterm-256color"
    os.execv(sys.executable, [sys.executable, "-c", "from normcompress_tui.app import main; main()"])
seen, started = b"", time.monotonic()
while time.monotonic() - started < 120 and b"Runs" not in seen:
    if select.select([terminal], [], [], 0.1)[0]:
        try:
            seen += os.read(terminal, 1 << 16)
        except OSError:
            break
end = time.monotonic() + 3  # the header, the notices and the restored form are drawn by then
while time.monotonic() < end:
    if select.select([terminal], [], [], 0.1)[0]:
        seen += os.read(terminal, 1 << 16)
os.write(terminal, b"q")
end = time.monotonic() + 30
while time.monotonic() < end:
    if select.select([terminal], [], [], 0.1)[0]:
        try:
            seen += os.read(terminal, 1 << 16)
        except OSError:
            break
    if os.waitpid(pid, os.WNOHANG)[0]:
        break
sys.stdout.buffer.write(seen)
"""


def test_control_sequences_in_the_state_file_and_the_store_path_never_reach_the_terminal(tmp_path):
    from normcompress_tui.state import SCHEMA, VERSION, state_path

    store = tmp_path / f"runs{ESCAPES}"
    store.mkdir()
    state = {
        "version": VERSION,
        "form": dict.fromkeys(("folder", "norm", "custom-norm", "epochs"), ESCAPES),
        "chart": {key: ESCAPES for key, kind in SCHEMA["chart"].items() if kind == "text"},
        "runs": {"sort": ESCAPES, "overlays": [ESCAPES]},
    }
    state_path(store).write_text(json.dumps(state))
    done = subprocess.run(
        [sys.executable, "-c", APP_ON_A_PTY],
        capture_output=True,
        timeout=300,
        env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)},
    )
    screen = done.stdout
    assert b"Runs" in screen, done.stderr[-2000:]
    for raw in RAW_ESCAPES:
        assert raw not in screen, raw
    assert b"\\x1b[2JZAP" in screen  # the store path in the header, shown as text


def test_control_sequences_in_the_store_path_and_stored_strings_stay_on_one_line_in_the_cli(tmp_path, template_store):
    store = tmp_path / f"runs{ESCAPES}"
    done = subprocess.run(
        [sys.executable, "-m", "normcompress", "runs", "list"],
        capture_output=True,
        timeout=300,
        env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)},
    )
    assert done.returncode == 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr  # "no runs in …"
    shutil.copytree(template_store, store)
    completed = sorted(store.iterdir())[1]
    summary = json.loads((completed / "summary.json").read_text())
    (completed / "summary.json").write_text(json.dumps({**summary, "message": ESCAPES, "device": ESCAPES}))
    shown = {}
    for command in (["runs", "list"], ["runs", "show", completed.name], ["runs", "list", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "normcompress", *command],
            capture_output=True,
            timeout=300,
            env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)},
        )
        assert done.returncode == 0, done.stderr
        for raw in RAW_ESCAPES:
            assert raw not in done.stdout + done.stderr, (command, raw)
        shown[command[1]] = done.stdout.decode()
    message = [line.split(None, 1) for line in shown["show"].splitlines() if "message" in line]
    assert message == [["message", "\\x1b[2JZAP\\x1b]0;EVIL\\x07\\x0a\\x0d\\x9b31m"]]  # one line, as text


# -- 4. no lost update: writers at the same time all keep their words --------------------------------------
def test_eight_taggers_at_once_keep_every_tag(template_store, tmp_path):
    store, _, completed = store_copy(template_store, tmp_path)
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)}
    for trial in range(2):
        taggers = [
            subprocess.Popen(
                [sys.executable, "-m", "normcompress", "runs", "tag", completed, f"t{trial}p{n}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for n in range(8)
        ]
        assert all(t.wait(timeout=300) == 0 for t in taggers)
    tags = RunStore(store).get(completed).tags()
    assert sorted(tags) == sorted(f"t{trial}p{n}" for trial in range(2) for n in range(8))


async def test_a_tag_added_from_the_shell_while_the_apps_prompt_is_open_is_kept(template_store, tmp_path):
    from textual.widgets import Input

    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.screens import PromptScreen
    from normcompress_tui.widgets.runs_table import RunsTable

    store, _, completed = store_copy(template_store, tmp_path)
    run = RunStore(store).get(completed)
    run.update_tags(add=["old", "gone"])
    app = NormcompressApp(RunStore(store))
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(RunsTable)
        while table.row_count < 2:
            await pilot.pause(0.05)
        table.focus()
        table.move_cursor(row=[i.id for i in table.visible_infos()].index(completed))
        await pilot.press("t")
        assert isinstance(app.screen, PromptScreen)
        run.update_tags(add=["from-shell"])  # another process tags the run meanwhile
        app.screen.query_one(Input).value = "old typed"  # the user removed "gone" and added "typed"
        await pilot.press("enter")
        await pilot.pause()
    assert sorted(run.tags()) == ["from-shell", "old", "typed"]


# -- 5. a damaged tags.json is repaired from the CLI and listed as unreadable ------------------------------
@pytest.mark.parametrize(
    "repair, expected", [(["--clear"], ()), (["--replace", "fresh"], ("fresh",)), (["added"], ("added",))]
)
def test_a_damaged_tags_file_is_listed_as_such_and_repaired(template_store, tmp_path, monkeypatch, repair, expected):
    store, _, completed = store_copy(template_store, tmp_path)
    (store / completed / "tags.json").write_text('{"tags": ["bad word!"]}')
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    outcome, _code, err = invoke(["runs", "list"])
    assert outcome == "ok" and "tags are unreadable" in err and "--clear" in err
    outcome, _, err = invoke(["runs", "tag", completed, *repair])
    assert outcome == "ok" and "contents were dropped" in err, err
    assert RunStore(store).get(completed).tags() == expected
    assert RunStore(store).get(completed).info().tags_problem is None


# -- 6. planted links never send a write outside the store -------------------------------------------------
@pytest.mark.parametrize("folder", STORE_FOLDERS)
async def test_a_folder_of_the_store_planted_as_a_link_is_never_written_through(template_store, tmp_path, folder):
    from normcompress_tui import exports
    from normcompress_tui.app import NormcompressApp

    store, _interrupted, completed = store_copy(template_store, tmp_path)
    larger = train(TrainConfig(**{**TINY, "limit": 300}, epochs=1), RunStore(store))  # enough tiles for a PCA
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store / folder).symlink_to(elsewhere, target_is_directory=True)
    os.environ["NORMCOMPRESS_RUNS_DIR"] = str(store)
    try:
        outcome, _, err = invoke(["runs", "compare", larger.id, completed, "--width", "60", "--height", "10"])
    finally:
        del os.environ["NORMCOMPRESS_RUNS_DIR"]
    assert outcome == "ok", err  # the reference is computed, only not kept
    app = NormcompressApp(RunStore(store))
    notes = []
    app.notify = lambda message, **kwargs: notes.append((message, kwargs.get("severity")))
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_screenshot()
        worker = exports.runs_csv(app, app.store)
        await worker.wait()
        app.query_one("LossChart").set_overlay(completed, "L2 x", RunStore(store).get(completed).metrics())
        app.main.action_export_chart()
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert list(elsewhere.iterdir()) == []
    if folder == "exports":
        assert len([m for m, severity in notes if severity == "error" and "not a real folder" in m]) == 3, notes


def test_metrics_are_never_appended_through_a_planted_link(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    run = RunStore(tmp_path / "store").create(TrainConfig(**TINY).validated(), Summary(Status.RUNNING))
    (run.path / "metrics.jsonl").symlink_to(outside)
    with pytest.raises(StoreError):
        run.append_metrics({"epoch": 1, "loss": 0.1})
    assert outside.read_text() == ""


# -- 7. an export never lands on a run's files, nor over a file without --force --------------------------
def test_an_export_onto_any_file_of_the_store_is_refused(template_store, tmp_path, monkeypatch):
    store, _, completed = store_copy(template_store, tmp_path)
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    RunStore(store).get(completed).update_tags(add=["x"])
    before = fingerprint(store)
    targets = [store / completed / name for name in os.listdir(store / completed)] + [
        store / "all.csv",
        store / completed / "new.json",
    ]
    for target in targets:
        for force in ([], ["--force"]):
            path = target.with_suffix(".csv") if target.suffix not in (".csv", ".json") else target
            assert_one_line_error(invoke(["runs", "export", str(path), *force]), 2, "inside the run store")
    link = tmp_path / "innocent.csv"
    link.symlink_to(store / completed / "config.json")
    assert_one_line_error(invoke(["runs", "export", str(link), "--force"]), 2, "inside the run store")
    assert fingerprint(store) == before


def test_an_existing_export_is_replaced_only_with_force(template_store, tmp_path, monkeypatch):
    store, _, _ = store_copy(template_store, tmp_path)
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    target = tmp_path / "mine.csv"
    target.write_text("my own spreadsheet")
    assert_one_line_error(invoke(["runs", "export", str(target)]), 2, "already exists; pass --force")
    assert target.read_text() == "my own spreadsheet"
    assert invoke(["runs", "export", str(target), "--force"])[0] == "ok"
    assert target.read_text().startswith("run,")


# -- 8. the rest -----------------------------------------------------------------------------------------
def test_a_bad_ray_address_is_refused_before_anything_loads(tmp_path):
    code = (
        "import sys; from normcompress.cli import main; sys.argv = ['normcompress', 'study', '-o', "
        f"{str(tmp_path / 'r')!r}, '--ray', 'not an address']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    print(e.code, 'torch' in sys.modules, 'ray' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path / "runs")},
    )
    assert done.stdout.split() == ["2", "False", "False"], done.stderr
    assert "is not an address" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_port_that_answers_but_is_not_ray_is_one_line(tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path / "runs"))
    port = listener.getsockname()[1]
    try:
        assert_one_line_error(
            invoke(["study", "-o", str(tmp_path / "r"), "--ray", f"127.0.0.1:{port}", "--dataset", "synthetic"]),
            2,
            "not as a Ray cluster does",
        )
    finally:
        listener.close()


def test_a_poisoned_baseline_is_computed_again(tmp_path):
    from normcompress.baseline import BASELINES_DIR, run_baseline
    from normcompress.data import load_run_data

    store = RunStore(tmp_path)
    run = train(TrainConfig(**{**TINY, "limit": 300}, epochs=1), store)  # 300 tiles: enough for 256 components
    data = load_run_data(run)
    honest, _ = run_baseline(store, run, data)
    (cached,) = (store.root / BASELINES_DIR).iterdir()
    value = json.loads(cached.read_text())
    value["metrics"]["psnr"] = 99999.0
    cached.write_text(json.dumps(value))
    again, _ = run_baseline(store, run, data)
    assert again.metrics["psnr"] == pytest.approx(honest.metrics["psnr"]) and again.metrics["psnr"] < 100


def test_image_read_failures_give_a_reason_not_an_exception_class(tmp_path):
    from normcompress.images import ImageFileError, open_image

    (tmp_path / "text.png").write_text("not an image")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:80])
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green")]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    reasons = {}
    for name in ("text.png", "cut.png", "moving.gif"):
        with pytest.raises(ImageFileError) as error:
            open_image(tmp_path / name)
        reasons[name] = error.value.reason
    assert "not an image file" in reasons["text.png"] and "damaged or cut off" in reasons["cut.png"]
    assert "animation of 3 frames" in reasons["moving.gif"]
    assert not any(word in " ".join(reasons.values()) for word in ("UnidentifiedImageError", "OSError"))


def test_compress_checks_its_outputs_before_it_loads_the_model(template_store, tmp_path, monkeypatch):
    from normcompress import runs

    store, _, completed = store_copy(template_store, tmp_path)
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store))
    Image.new("RGB", (32, 32), "gray").save(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.ncz").write_bytes(b"mine")
    (tmp_path / "out" / "a.recon.png").write_bytes(b"mine")

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(runs, "load_model", never)
    for command in ("compress", "reconstruct"):
        assert_one_line_error(
            invoke([command, completed, str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]), 2, "already exists"
        )


def test_a_huge_rate_lambda_is_refused_and_a_blow_up_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path / "runs"))
    assert_one_line_error(
        invoke(["train", "--rate-lambda", "1e300", "--dataset", "synthetic"]),
        2,
        "--rate-lambda must be between 0 and 1000",
    )
    from normcompress.session import advice

    assert "--rate-lambda" in advice(TrainConfig(rate_lambda=500.0)) and "--rate-lambda" not in advice(TrainConfig())


def test_a_flat_megapixel_image_is_a_tiny_file_that_decodes(template_store, tmp_path):
    """The old bound of 4096 pixels per byte refused files the encoder wrote: a flat 1024x1024 image
    is a file of some 30 bytes (its latents all one value)."""
    from normcompress.codec import coder_for, decode, encode
    from normcompress.runs import load_model

    store = RunStore(template_store)
    run = store.runs()[1]
    Image.new("RGB", (1024, 1024), (120, 130, 140)).save(tmp_path / "flat.png")
    model = load_model(run)
    encoded = encode(run, model, coder_for(run, model), tmp_path / "flat.png", step=4.0)
    assert len(encoded.data) < 1024 * 1024 / 4096  # under the old bound
    assert np.array_equal(np.asarray(decode(encoded.data, store)), np.asarray(encoded.reconstruction))


def test_streams_that_are_empty_or_too_long_are_damage(template_store, tmp_path):
    from normcompress.codec import CodecError, coder_for, decode, encode, parse
    from normcompress.codec.format import MAX_RESIDUAL_PIXELS, MODES, RESIDUAL_FLAG, pack, residual_section
    from normcompress.runs import load_model

    store = RunStore(template_store)
    run = store.runs()[1]
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    model = load_model(run)
    good = parse(encode(run, model, coder_for(run, model), tmp_path / "noise.png").data)
    assert good.low < good.high and good.payload

    def rebuilt(payload: bytes) -> bytes:
        return with_payload(good, payload)

    with pytest.raises(CodecError, match="empty stream"):
        parse(rebuilt(b""))  # once a garbage image with exit status 0
    with pytest.raises(CodecError, match="does not end where its symbols do"):
        decode(rebuilt(good.payload + b"\x01\x02\x03\x04" * 3), store)
    side = int(MAX_RESIDUAL_PIXELS**0.5) + 1
    huge = pack(
        good.id_tail.encode(),
        good.weights,
        MODES["RGB"] | RESIDUAL_FLAG,
        side,
        side,
        32,
        0.25,
        0,
        0,
        b"",
        None,
        residual_section(0, 0, 0, b"\0" * 12, b""),
    )
    with pytest.raises(CodecError, match=r"near-lossless \.ncz files hold at most"):
        parse(huge)  # a 4 KB file once asked for a minute of pixel-by-pixel decoding
    assert len(huge) < 64
