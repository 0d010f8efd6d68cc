"""Print the table of outcomes of the hostile-input suite, group by group: damaged run files against every
command that reads a store, path-traversal references, the app's state file of every wrong type, control
sequences from files and the environment, writers at the same time, planted links, exports onto a run's
files, PCA models on too few images, and crafted codec streams.

Run: python scripts/hostile_census.py   (some five minutes; the same cases as tests/test_hostile.py and
tests/test_trust.py). Columns: cases tried, clean errors (one line, an exit code), succeeded, tracebacks,
hangs, data lost (a file outside the runs under test changed or vanished, a word or run lost) and path
escapes (a file written outside the store, or into the store's files, where it must not be).
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from normcompress.events import EpochEnd
from normcompress.runs import RunStore
from normcompress.train import TrainConfig, train
from tests.hostile import (
    ESCAPES,
    RAW_ESCAPES,
    STORE_FOLDERS,
    census,
    fingerprint,
    hostile_states,
    invoke,
    with_payload,
    wrong_kinds,
)
from tests.test_hostile import TINY, traversal_refs

TRAVERSAL_COMMANDS = [["runs", "rm", "--yes"], ["runs", "show"], ["eval"], ["train", "--resume"], ["runs", "compare"]]
COLUMNS = ("error", "ok", "traceback", "hang", "data lost", "path escape")


def make_template(root: Path) -> Path:
    template = root / "template"
    cancel = threading.Event()
    train(TrainConfig(**TINY, epochs=2), RunStore(template), lambda e: isinstance(e, EpochEnd) and cancel.set(), cancel)
    train(TrainConfig(**TINY, epochs=1), RunStore(template))
    return template


def fresh_store(template: Path, root: Path) -> tuple[Path, str, str]:
    store = root / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(template, store, symlinks=True)
    interrupted, completed = sorted(p.name for p in store.iterdir())
    os.environ["NORMCOMPRESS_RUNS_DIR"] = str(store)
    return store, interrupted, completed


def traversal(template: Path, root: Path, bad: list[str]) -> Counter:
    counts: Counter = Counter()
    store, run_id, _ = fresh_store(template, root)
    victim = root / "victim"
    shutil.copytree(store / run_id, victim)
    (store / (run_id[:-6] + "ffffff")).symlink_to(victim, target_is_directory=True)
    before = fingerprint(root, skip={root / "work"})
    for command in TRAVERSAL_COMMANDS:
        for ref in traversal_refs(store, run_id, victim):
            outcome, _, text = invoke([*command, ref])
            if fingerprint(root, skip={root / "work"}) != before:
                outcome = "data lost"
                bad.append(f"{command} {ref!r}: {text.strip()[-200:]}")
            counts[outcome] += 1
    shutil.rmtree(victim)
    return counts


async def _start_app(store: Path) -> tuple[bool, list[str]]:
    from normcompress_tui.app import NormcompressApp

    app = NormcompressApp(RunStore(store))
    notes: list[str] = []
    app.notify = lambda message, **kwargs: notes.append(message)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        alive = app.is_running and bool(app.current_state())
        await pilot.press("q")
    return alive and app.return_code == 0, notes


def state_files(root: Path, bad: list[str]) -> Counter:
    """Every hostile state file, the app started over it; every key x every wrong kind through the layer."""
    from normcompress_tui.state import SCHEMA, checked, state_path

    counts: Counter = Counter()

    for name, state in hostile_states().items():
        store = root / "state-store"
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir()
        state_path(store).write_text(json.dumps(state))
        try:
            alive, notes = asyncio.run(_start_app(store))
        except Exception as exc:
            alive, notes = False, [f"{type(exc).__name__}: {exc}"]
        noticed = any("saved state" in n for n in notes)
        counts["error" if alive and noticed else "traceback"] += 1
        if not (alive and noticed):
            bad.append(f"state file {name}: {notes[-3:]}")
    for section, keys in SCHEMA.items():
        for key, kind in keys.items():
            for _wrong, value in wrong_kinds(kind).items():
                sections, dropped = checked({section: {"folder" if key == "*" else key: value}})
                counts["error" if sections[section] == {} and len(dropped) == 1 else "traceback"] += 1
    return counts


def control_sequences(template: Path, root: Path, bad: list[str]) -> Counter:
    from normcompress_tui.state import VERSION, state_path
    from tests.test_trust import APP_ON_A_PTY

    counts: Counter = Counter()
    store = root / f"escapes{ESCAPES}"
    shutil.copytree(template, store)
    completed = sorted(store.iterdir())[1]
    summary = json.loads((completed / "summary.json").read_text())
    (completed / "summary.json").write_text(json.dumps({**summary, "message": ESCAPES, "device": ESCAPES}))
    state_path(store).write_text(
        json.dumps(
            {
                "version": VERSION,
                "form": {"folder": ESCAPES, "norm": ESCAPES},
                "chart": {"metric": ESCAPES},
                "runs": {"sort": ESCAPES},
            }
        )
    )
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)}
    outputs = {
        "the app on a terminal": subprocess.run(
            [sys.executable, "-c", APP_ON_A_PTY], capture_output=True, env=env, timeout=300
        ).stdout
    }
    for command in (
        ["runs", "list"],
        ["runs", "list", "--json"],
        ["runs", "show", completed.name],
        ["runs", "compare", completed.name, "--no-baseline"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "normcompress", *command], capture_output=True, env=env, timeout=300
        )
        outputs[" ".join(command[:2])] = done.stdout + done.stderr
    for name, output in outputs.items():
        raw = [r for r in RAW_ESCAPES if r in output]
        counts["path escape" if raw else "ok"] += 1  # a raw sequence is the terminal's own escape
        if raw:
            bad.append(f"control sequences reach the terminal in {name}: {raw}")
    shutil.rmtree(store)
    return counts


def concurrent_writers(template: Path, root: Path, bad: list[str]) -> Counter:
    counts: Counter = Counter()
    store, _, completed = fresh_store(template, root)
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(store)}
    for trial in range(3):
        taggers = [
            subprocess.Popen(
                [sys.executable, "-m", "normcompress", "runs", "tag", completed, f"t{trial}p{n}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(8)
        ]
        codes = [t.wait(timeout=300) for t in taggers]
        tags = set(RunStore(store).get(completed).tags())
        lost = {f"t{trial}p{n}" for n in range(8)} - tags
        counts["ok"] += 8 - len(lost)
        counts["data lost"] += len(lost)
        if lost or any(codes):
            bad.append(f"parallel tags, trial {trial}: lost {sorted(lost)}, exit codes {codes}")
    return counts


def planted_links(template: Path, root: Path, bad: list[str]) -> Counter:
    """Each folder the project writes inside the store, planted as a link, under every writer of it."""
    from tests.test_trust import test_a_folder_of_the_store_planted_as_a_link_is_never_written_through as check

    counts: Counter = Counter()
    for folder in STORE_FOLDERS:
        work = root / f"links-{folder.strip('.')}"
        work.mkdir()
        try:
            asyncio.run(check(template, work, folder))
            counts["error"] += 4  # runs compare, screenshot, runs CSV, chart export: each refused or not kept
        except AssertionError as exc:
            counts["path escape"] += 1
            bad.append(f"planted {folder}: {str(exc)[:200]}")
    return counts


def export_targets(template: Path, root: Path, bad: list[str]) -> Counter:
    counts: Counter = Counter()
    store, _, completed = fresh_store(template, root)
    RunStore(store).get(completed).update_tags(add=["x"])
    before = fingerprint(store)
    link = root / "innocent.csv"
    link.symlink_to(store / completed / "config.json")
    targets = [store / completed / name for name in os.listdir(store / completed)] + [store / "all.csv", link]
    for target in targets:
        for force in ([], ["--force"]):
            path = target if target.suffix in (".csv", ".json") else target.with_suffix(".csv")
            outcome, _code, _text = invoke(["runs", "export", str(path), *force])
            if fingerprint(store) != before:
                outcome = "path escape"
                bad.append(f"runs export {path} {force}: the store changed")
            counts[outcome] += 1
    link.unlink()
    return counts


def too_few_images(root: Path, bad: list[str]) -> Counter:
    counts: Counter = Counter()
    os.environ["NORMCOMPRESS_RUNS_DIR"] = str(root / "pca-store")
    for model, images in (("pca-refine", 1), ("pca-refine", 64), ("pca-refine", 255), ("hyperprior", 767)):
        rate = ["--rate-lambda", "0.01"] if model == "hyperprior" else []
        for command in (
            ["train", "--epochs", "1"],
            ["study", "-o", str(root / "report"), "--norms", "L1", "--seeds", "1"],
        ):
            outcome, _code, _text = invoke(
                [*command, "--dataset", "synthetic", "--model", model, "--limit", str(images), *rate]
            )
            left = RunStore(root / "pca-store").runs()
            if left:
                outcome = "data lost"  # a bogus run left behind
                bad.append(f"{model} on {images} images, {command[0]}: left {len(left)} run(s)")
            counts[outcome] += 1
    return counts


def codec_streams(template: Path, root: Path, bad: list[str]) -> Counter:
    import numpy as np
    from PIL import Image

    from normcompress.codec import CodecError, coder_for, decode, encode, parse
    from normcompress.codec.format import MAX_RESIDUAL_PIXELS, MODES, RESIDUAL_FLAG, pack, residual_section
    from normcompress.runs import load_model

    counts: Counter = Counter()
    store = RunStore(template)
    run = store.runs()[1]
    model = load_model(run)
    image = root / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    good = parse(encode(run, model, coder_for(run, model), image).data)

    def rebuilt(payload: bytes) -> bytes:
        return with_payload(good, payload)

    side = int(MAX_RESIDUAL_PIXELS**0.5) + 1
    cases = {
        "empty payload": rebuilt(b""),
        "payload with words to spare": rebuilt(good.payload + b"\1\2\3\4" * 3),
        "a 4 MP+ residual in 60 bytes": pack(
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
        ),
    }
    for name, data in cases.items():
        try:
            decode(data, store)
            counts["ok"] += 1
            bad.append(f"codec: {name} decoded")
        except CodecError:
            counts["error"] += 1
        except Exception as exc:
            counts["traceback"] += 1
            bad.append(f"codec: {name}: {type(exc).__name__}: {exc}")
    return counts


def main() -> None:
    from normcompress import devices, probe

    probe.device_options = devices.device_options  # the app's device list from this process (torch is loaded)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = make_template(root)
        work = root / "work"
        work.mkdir()
        from PIL import Image

        Image.new("RGB", (40, 40), "gray").save(work / "image.png")
        bad: list[str] = []
        groups = {}
        damaged, damage_bad = census(template, work)
        groups["damaged run files x commands"], bad = damaged, bad + damage_bad
        groups["traversal references x commands"] = traversal(template, root, bad)
        groups["app state files, and each key x each wrong kind"] = state_files(root, bad)
        groups["control sequences in files and the store path"] = control_sequences(template, root, bad)
        groups["8 taggers at once, 3 trials (tags)"] = concurrent_writers(template, root, bad)
        groups["store folders planted as links x writers"] = planted_links(template, root, bad)
        groups["runs export onto the store's files"] = export_targets(template, root, bad)
        groups["PCA models on too few images (train, study)"] = too_few_images(root, bad)
        groups["crafted codec streams"] = codec_streams(template, root, bad)
    print("| inputs | cases | clean errors | succeeded | tracebacks | hangs | data lost | path escapes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total: Counter = Counter()
    for label, counts in groups.items():
        total += counts
        print(f"| {label} | {sum(counts.values())} | " + " | ".join(str(counts[c]) for c in COLUMNS) + " |")
    print(f"| all | {sum(total.values())} | " + " | ".join(str(total[c]) for c in COLUMNS) + " |")
    for line in bad:
        print("BAD:", line)


if __name__ == "__main__":
    main()
