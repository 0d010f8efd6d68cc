"""Hostile inputs for the run store and the CLI, shared by tests/test_hostile.py and
scripts/hostile_census.py (which prints the table of outcomes for the closing note).

Each damage turns one good run directory into a hostile one; each probe runs one CLI command over the
store in-process and classifies the outcome: a clean error (one line, exit code), success, a
traceback (any exception escaping the entry point), a hang (an alarm fired), or data lost (a file
outside the run directories under test changed, or another run's files changed).
"""

import hashlib
import io
import json
import os
import shutil
import signal
import sys
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch

from normcompress import cli
from normcompress.model import build_model

TINY = {"norm": "L2", "dataset": "synthetic", "limit": 64, "batch_size": 32, "device": "cpu"}  # a run in a second
HANG_S = 300  # far above the slowest probe on a loaded machine; a FIFO read would block forever

MARKUP = "[/x][bold]\x1b[31m\x07"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _write(name: str, data: bytes | str):
    return lambda run: (run / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def _json_edit(name: str, **changes):
    def damage(run: Path) -> None:
        value = json.loads((run / name).read_text())
        value.update(changes)
        (run / name).write_text(json.dumps(value))

    return damage


def _fifo(name: str):
    def damage(run: Path) -> None:
        (run / name).unlink(missing_ok=True)
        os.mkfifo(run / name)

    return damage


def _symlink(name: str, target: Path):
    def damage(run: Path) -> None:
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(target)

    return damage


def _dir(name: str):
    def damage(run: Path) -> None:
        (run / name).unlink(missing_ok=True)
        (run / name).mkdir()

    return damage


def _checkpoint(state):
    def damage(run: Path) -> None:
        buffer = io.BytesIO()
        torch.save(state() if callable(state) else state, buffer)
        (run / "checkpoint.pt").write_bytes(buffer.getvalue())

    return damage


def _nan_weights():
    model = build_model("seed")
    state = model.state_dict()
    state["encoder.0.weight"][0, 0, 0, 0] = float("nan")
    return {"model": state, "epoch": 1}


def _metrics_line(edit):
    def damage(run: Path) -> None:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        record = json.loads(lines[-1])
        lines[-1] = edit(record)
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")

    return damage


def _bomb_png(run: Path) -> None:
    """A small PNG that claims 12000x12000 pixels."""
    from PIL import Image

    Image.new("1", (12000, 12000)).save(run / "recon.png")


def _history_claiming(epochs: str):
    def damage(run: Path) -> None:
        from PIL import Image, PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("epochs", epochs)
        Image.open(run / "history.png").save(run / "history.png", pnginfo=info)

    return damage


def damages(outside: Path) -> dict[str, object]:
    """Every way a run directory can be hostile, by name. `outside` is a file outside the store."""
    return {
        # summary.json
        "summary epochs_done is a string": _json_edit("summary.json", epochs_done="1"),
        "summary wall_time_s is NaN": lambda r: (r / "summary.json").write_text(
            (r / "summary.json").read_text().replace('"wall_time_s": ', '"wall_time_s": NaN, "x": ')
        ),
        "summary metrics is a list": _json_edit("summary.json", metrics=[]),
        "summary metric is a string": _json_edit("summary.json", metrics={"psnr": "high"}),
        "summary status unknown": _json_edit("summary.json", status="bogus"),
        "summary status damaged": _json_edit("summary.json", status="damaged"),
        "summary message is markup": _json_edit("summary.json", message=MARKUP),
        "summary is null": _write("summary.json", "null"),
        "summary is a list": _write("summary.json", "[]"),
        "summary nested 100k deep": _write("summary.json", _nested(100_000)),
        "summary not UTF-8": _write("summary.json", b'{"status": "\xff\xfe"}'),
        "summary empty": _write("summary.json", b""),
        "summary 2 MB": _write("summary.json", b" " * (2 << 20) + b"{}"),
        "summary is a FIFO": _fifo("summary.json"),
        "summary is a symlink out": _symlink("summary.json", outside),
        "summary is a directory": _dir("summary.json"),
        # config.json
        "config is {}": _write("config.json", "{}"),
        "config image_size 0": _json_edit("config.json", image_size=0),
        "config image_size '32'": _json_edit("config.json", image_size="32"),
        "config image_size 300": _json_edit("config.json", image_size=300),
        "config norm unknown": _json_edit("config.json", norm="L3"),
        "config norm is markup": _json_edit("config.json", norm=MARKUP),
        "config epochs -1": _json_edit("config.json", epochs=-1),
        "config seed 2**70": _json_edit("config.json", seed=2**70),
        "config lr a string": _json_edit("config.json", lr="fast"),
        "config lr true": _json_edit("config.json", lr=True),
        "config model unknown": _json_edit("config.json", model="vit"),
        "config dataset markup": _json_edit("config.json", dataset="folder:" + MARKUP),
        "config is null": _write("config.json", "null"),
        "config nested 100k deep": _write("config.json", '{"a": ' + _nested(100_000) + "}"),
        "config is a FIFO": _fifo("config.json"),
        "config missing": lambda r: (r / "config.json").unlink(),
        # metrics.jsonl
        "metrics not UTF-8": _write("metrics.jsonl", b'{"epoch": 1, "x": "\xff"}\n'),
        "metrics epoch is a string": _metrics_line(lambda r: json.dumps({**r, "epoch": str(r["epoch"])})),
        "metrics psnr NaN": _metrics_line(lambda r: json.dumps(r).replace('"psnr": ', '"psnr": NaN, "y": ')),
        "metrics step_losses a string": _metrics_line(lambda r: json.dumps({**r, "step_losses": "many"})),
        "metrics psnr null": _metrics_line(lambda r: json.dumps({**r, "psnr": None})),
        "metrics line cut off": lambda r: (r / "metrics.jsonl").write_bytes((r / "metrics.jsonl").read_bytes()[:-20]),
        "metrics nested 100k deep": _write("metrics.jsonl", _nested(100_000) + "\n"),
        "metrics epochs out of order": _metrics_line(lambda r: json.dumps({**r, "epoch": 7})),
        "metrics is a FIFO": _fifo("metrics.jsonl"),
        "metrics is a symlink out": _symlink("metrics.jsonl", outside),
        # checkpoint.pt
        "checkpoint holds {}": _checkpoint({}),
        "checkpoint holds a list": _checkpoint([1, 2, 3]),
        "checkpoint of another model": _checkpoint(
            lambda: {"model": build_model("wide-residual").state_dict(), "epoch": 1}
        ),
        "checkpoint with NaN weights": _checkpoint(_nan_weights),
        "checkpoint truncated": lambda r: (r / "checkpoint.pt").write_bytes((r / "checkpoint.pt").read_bytes()[:500]),
        "checkpoint garbage": _write("checkpoint.pt", os.urandom(4096)),
        "checkpoint is a FIFO": _fifo("checkpoint.pt"),
        "checkpoint is a symlink out": _symlink("checkpoint.pt", outside),
        "checkpoint missing": lambda r: (r / "checkpoint.pt").unlink(),
        # entropy.json, run.lock, recon.png
        "entropy is null": _write("entropy.json", "null"),
        "entropy std zero": _write("entropy.json", json.dumps({"mean": [0.0] * 64, "std": [0.0] * 64})),
        "entropy std NaN": _write("entropy.json", '{"mean": [0.0], "std": [NaN]}'),
        "entropy is a FIFO": _fifo("entropy.json"),
        "lock is a FIFO": _fifo("run.lock"),
        "lock is a symlink out": _symlink("run.lock", outside.parent / "created-through-lock"),
        "lock is a directory": _dir("run.lock"),
        "recon is a bomb": _bomb_png,
        "recon is garbage": _write("recon.png", os.urandom(300)),
        "recon is a FIFO": _fifo("recon.png"),
        # history.png
        "history is garbage": _write("history.png", os.urandom(300)),
        "history is a symlink out": _symlink("history.png", outside),
        "history is a FIFO": _fifo("history.png"),
        "history's epochs disagree with its rows": _history_claiming("1," * 40 + "41"),
    }


def probes(run_id: str, other_id: str, work: Path) -> dict[str, list[str]]:
    """Every command that reads a run, by name."""
    image = work / "image.png"
    return {
        "runs list": ["runs", "list"],
        "runs list --json": ["runs", "list", "--json"],
        "runs show": ["runs", "show", run_id],
        "runs compare": ["runs", "compare", run_id, other_id, "--width", "60", "--height", "10"],
        "runs export csv": ["runs", "export", str(work / "all.csv")],
        "runs export json": ["runs", "export", str(work / "all.json")],
        "eval": ["eval", run_id, "--dataset", "synthetic", "--device", "cpu"],
        "train --resume": ["train", "--resume", run_id],
        "reconstruct": ["reconstruct", run_id, str(image), "-o", str(work / "recon"), "--force", "--device", "cpu"],
        "compress": ["compress", run_id, str(image), "-o", str(work / "ncz"), "--force"],
    }


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def invoke(args: list[str]) -> tuple[str, int | None, str]:
    """Run the CLI in-process: (outcome, exit code, stderr). Outcomes: ok, error, traceback, hang."""
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    argv = sys.argv
    sys.argv = ["normcompress", *args]
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):  # the CLI's consoles write to sys.stdout/err
            cli.main()
        return "traceback", None, "main() returned without exiting"
    except SystemExit as exit_:
        code = exit_.code or 0
        text = stderr.getvalue()
        lines = [line for line in text.splitlines() if line.strip()]
        if code == 0:
            return "ok", 0, text
        if "Traceback" in text or not lines or not lines[-1].startswith(("normcompress: error:", "normcompress: ")):
            return "traceback", code, text
        return "error", code, text
    except Hang:
        return "hang", None, "no answer"
    except BaseException as exc:
        return "traceback", None, f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv = argv


def fingerprint(root: Path, skip: set[Path] = frozenset()) -> dict[str, str]:
    """Every file under root (not following symlinks, not reading FIFOs), with a hash of its bytes."""
    prints = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) in skip:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                prints[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                prints[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                prints[str(path)] = "special"
    return prints


def census(template_store: Path, work: Path, names: list[str] | None = None) -> tuple[Counter, list[str]]:
    """Every damage x every probe, each on a fresh copy of the template store. Returns the outcome counts
    and a line for each bad outcome (traceback, hang, data lost)."""
    from normcompress.runs import RunStore

    counts: Counter = Counter()
    bad: list[str] = []
    outside = work / "outside" / "keep.txt"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("outside the store\n")
    for name, damage in damages(outside).items():
        if names and name not in names:
            continue
        store = work / "store"
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(template_store, store, symlinks=True)
        target, other = (r.id for r in RunStore(store).runs())
        damage(store / target)
        for probe, args in probes(target, other, work).items():
            before = fingerprint(work, skip={store / target, work / "recon", work / "ncz", work / "scratch"})
            before.pop(str(work / "all.csv"), None), before.pop(str(work / "all.json"), None)
            os.environ["NORMCOMPRESS_RUNS_DIR"] = str(store)
            outcome, _code, text = invoke(args)
            after = fingerprint(work, skip={store / target, work / "recon", work / "ncz", work / "scratch"})
            lost = [p for p in before if after.get(p) != before[p]] + [
                p
                for p in after
                if p not in before and not p.endswith(("all.csv", "all.json")) and not Path(p).name.startswith(".")
            ]
            if outcome == "ok" and probe == "train --resume":
                lost = [p for p in lost if not p.startswith(str(store / target))]
            if lost:
                outcome = "data lost"
            counts[outcome] += 1
            if outcome in ("traceback", "hang", "data lost"):
                bad.append(f"{name} / {probe}: {outcome}: {(text or '').strip()[-300:]} {lost[:3]}")
            for leftover in ("all.csv", "all.json"):
                (work / leftover).unlink(missing_ok=True)
    return counts, bad


# -- the second pass: the app's own files, the store's folders, exports, concurrent writers --------------
# One JSON value of every kind; each key of the app's state file is given every kind but its own.
JSON_KINDS = {
    "null": None,
    "true": True,
    "an integer": 3,
    "a float": 2.5,
    "text": "L2",
    "a list": ["id"],
    "an object": {"sort": "id"},
    "a control sequence": "\x1b[2J\x1b]0;EVIL\x07ZAP",
    "a huge number": 1e300,
}
ESCAPES = "\x1b[2JZAP\x1b]0;EVIL\x07\n\r\x9b31m"  # erase the screen, retitle the terminal, a newline, CSI
RAW_ESCAPES = (b"\x1b[2JZAP", b"\x1b]0;EVIL", b"EVIL\x07", b"\xc2\x9b31m")  # what must never reach a terminal


def wrong_kinds(kind: str) -> dict[str, object]:
    """The JSON values that are not of a state key's kind ("text", "text?", "number", "flag", "texts")."""
    right = {
        "text": ("text",),
        "text?": ("text", "null"),
        "number": ("an integer", "a float"),
        "flag": ("true",),
        "texts": ("a list",),
    }[kind]
    wrong = {name: value for name, value in JSON_KINDS.items() if name not in right}
    if kind == "texts":
        wrong["a list holding a number"] = ["id", 3]
    return wrong


def hostile_states() -> dict[str, dict]:
    """App state files (as JSON objects) by name: every key of the schema holding every wrong kind at once."""
    from normcompress_tui.state import SCHEMA, VERSION

    states = {}
    for name in JSON_KINDS:
        state: dict = {"version": VERSION}
        for section, keys in SCHEMA.items():
            state[section] = {}
            for key, kind in keys.items():
                if name in wrong_kinds(kind):
                    state[section]["folder" if key == "*" else key] = wrong_kinds(kind)[name]
        states[f"every key {name}"] = state
    states["sections of the wrong kind"] = {"version": VERSION, "form": [], "chart": "x", "runs": 3}
    return states


# Every folder the project makes and writes inside a store, with what writes into it.
STORE_FOLDERS = (".baselines", "exports")


def with_payload(header, payload: bytes) -> bytes:
    """A well-formed RGB .ncz file of `header`'s fields with another latent payload (and no alpha or residual)."""
    from normcompress.codec.format import MODES, pack

    return pack(
        header.id_tail.encode(), header.weights, MODES["RGB"], header.width, header.height, header.tile,
        header.step, header.low, header.high, payload, None, b"",
    )  # fmt: skip
