import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from normcompress.config import TrainConfig
from normcompress.events import EpochEnd
from normcompress.runs import RunStore
from normcompress.train import train

QUICK = ["--dataset", "sample", "--limit", "256", "--epochs", "1", "--device", "cpu"]


def assert_one_line_error(code, err, expected_code, fragment):
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("normcompress: error:"), err
    assert fragment in lines[0] and "Traceback" not in err


@pytest.fixture
def two_runs(run_cli, runs_dir):
    ids = []
    for norm in ("L1", "0.5*L1+0.5*L2"):
        code, out, err = run_cli("train", "--norm", norm, *QUICK)
        assert code == 0, err
        ids.append(out.split()[0])
    return ids


def test_train_prints_progress_and_the_run(run_cli, runs_dir):
    code, out, err = run_cli("train", "--norm", "L1", *QUICK)
    assert code == 0
    run_id, path = out.split()
    assert Path(path) == runs_dir / run_id and (runs_dir / run_id / "checkpoint.pt").exists()
    assert "L1 on sample (256 train / 1017 val images)" in err and "epoch   1/1" in err and "PSNR" in err
    assert "MSE" in err and "max-abs" in err  # not a terminal: every metric, however wide


def test_runs_list_on_a_narrow_terminal_is_in_blocks_that_fit_and_whole_in_a_pipe(run_cli, two_runs, monkeypatch):
    """Its 110-character lines each took two lines of an 80-column terminal, one cell broken in two."""
    from normcompress.cli import tables

    code, piped, _ = run_cli("runs", "list")
    assert code == 0 and len(piped.splitlines()) == 3  # the header and a line per run, for grep and awk
    assert max(map(len, piped.splitlines())) > 80
    monkeypatch.setattr(tables, "terminal_width", lambda: 80)
    code, shown, _ = run_cli("runs", "list")
    blocks = [block.splitlines() for block in shown.strip().split("\n\n")]
    assert code == 0 and len(blocks) >= 2 and max(map(len, shown.splitlines())) <= 80
    for block in blocks:  # each starts with the id, then the runs in the same order
        assert block[0].startswith("id ") and [line.split()[0] for line in block[1:]] == two_runs
    assert sorted(cell for block in blocks for cell in block[0].split()) == sorted(
        piped.splitlines()[0].split() + ["id"] * (len(blocks) - 1)
    )  # every header, the id's once a block
    code, shown, _ = run_cli("runs", "show", two_runs[0])  # its table of epochs is as wide
    table = shown.splitlines()[[line.split()[:2] for line in shown.splitlines()].index(["epoch", "loss"]) :]
    assert code == 0 and max(map(len, table)) <= 80 and "max|e| worst" in shown


def test_runs_list_sorts_by_a_metric_largest_first_with_a_minus(run_cli, two_runs):
    listed = {r["id"]: r["final_psnr"] for r in json.loads(run_cli("runs", "list", "--json")[1])}
    best_first = sorted(listed, key=listed.get, reverse=True)
    code, out, _ = run_cli("runs", "list", "--sort", "-psnr")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == best_first
    sorted_json = [r["id"] for r in json.loads(run_cli("runs", "list", "--sort", "psnr", "--json")[1])]
    assert sorted_json == best_first[::-1]
    assert_one_line_error(*run_cli("runs", "list", "--sort", "speed")[::2], 2, "unknown key 'speed'")


def shown_fact(out: str, key: str) -> str:
    """The value `runs show` gives a key."""
    (line,) = [line for line in out.splitlines() if line.startswith(f"  {key}  ")]
    return line[len(key) + 2 :].strip()


def test_runs_show_lines_up_its_facts_and_names_the_device_it_trained_on(run_cli):
    """The keys were padded to 12 characters: channels_last (13) pushed its value a column right. An unset
    setting read "None", and the device asked for and the one trained on were both called "device"."""
    run_id = run_cli("train", "--norm", "L1", *QUICK, "--device", "auto")[1].split()[0]  # the last --device wins
    code, out, _ = run_cli("runs", "show", run_id)
    facts = [line for line in out.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    starts = {len(line) - len(line[2:].split("  ", 1)[1].lstrip()) for line in facts}
    assert code == 0 and len(facts) > 20 and len(starts) == 1  # every value in one column
    assert shown_fact(out, "channels_last") == "-" and "None" not in out
    assert shown_fact(out, "device") == "auto" and shown_fact(out, "trained on").startswith(("cpu", "cuda"))


def test_an_epoch_table_column_shares_its_decimals():
    """Four significant digits each printed an MSE of 0.051 over 0.04077, the smaller value the longer."""
    from normcompress.metrics import epoch_table

    records = [{"epoch": 1, "loss": 0.2169, "psnr": 12.92, "mse": 0.051}, {"epoch": 2, "loss": 0.152, "mse": 0.04077}]
    headers, rows = epoch_table(records)
    mse, loss, psnr = (headers.index(column) for column in ("MSE", "loss", "PSNR dB"))
    assert [row[mse] for row in rows] == ["0.05100", "0.04077"]
    assert [row[loss] for row in rows] == ["0.2169", "0.1520"]
    assert [row[psnr] for row in rows] == ["12.92", "-"]  # a fixed format stays; a missing value is "-"
    assert [row[0] for row in rows] == ["1", "2"] and "img/s" not in headers  # no machine figures kept


def test_an_epoch_line_on_a_narrow_terminal_keeps_what_fits():
    """Every metric made a line of 104-113 characters, broken mid-word at 80 columns."""
    from normcompress.console import epoch_line

    record = {"epoch": 1, "loss": 0.19467, "psnr": 14.67, "mse": 0.03414, "mae": 0.1452, "ssim": 0.198}
    record |= {"maxabs_mean": 0.586, "maxabs_worst": 0.911, "images_per_s": 12974}
    head, tail = "epoch   1/10  loss 0.19467  PSNR 14.67 dB", "max-abs 0.586/0.911  12,974 img/s"
    assert epoch_line(record, 10) == f"{head}  MSE 0.03414  MAE 0.1452  SSIM 0.198  {tail}"
    assert epoch_line(record, 10, 120) == epoch_line(record, 10)
    assert epoch_line(record, 10, 100) == f"{head}  SSIM 0.198  {tail}"  # 88 characters
    assert epoch_line(record, 10, 80) == f"{head}  {tail}"  # 76
    assert epoch_line(record, 10, 30) == f"{head}  12,974 img/s"  # the least it says, wrapped by the terminal


def test_quiet_prints_only_the_run(run_cli, runs_dir):
    code, out, err = run_cli("train", "-q", *QUICK)
    assert code == 0 and err == "" and len(out.split()) == 2
    assert RunStore(runs_dir).get(out.split()[0]).train_config().channels_last is None  # auto: decided by the device
    code, out, _ = run_cli("train", "-q", "--no-channels-last", *QUICK)
    assert code == 0 and RunStore(runs_dir).get(out.split()[0]).train_config().channels_last is False


def test_offline_cifar10_falls_back_with_a_notice(run_cli, runs_dir, tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    code, out, err = run_cli("train", "--limit", "128", "--epochs", "1", "--data-dir", str(tmp_path))
    assert code == 0 and "notice: CIFAR-10 is not in" in err and "embedded sample" in err
    assert RunStore(runs_dir).get(out.split()[0]).summary().data == "sample"


def test_runs_list_show_compare(run_cli, two_runs):
    code, out, _ = run_cli("runs", "list")
    assert code == 0 and all(i in out for i in two_runs) and "0.5*L1+0.5*L2" in out and "completed" in out
    code, out, _ = run_cli("runs", "list", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == two_runs and rows[0]["status"] == "completed" and rows[0]["final_psnr"] > 5
    assert rows[0]["best_psnr"] >= rows[0]["final_psnr"]
    config = RunStore(os.environ["NORMCOMPRESS_RUNS_DIR"]).get(two_runs[0]).train_config()
    assert rows[0]["settings"] == {  # what makes runs incomparable is listed with them
        "data": "sample", "limit": 256, "model": "seed", "lr": config.lr, "optimizer": config.optimizer,
        "schedule": config.schedule, "batch_size": config.batch_size, "epochs": config.epochs, "rate_lambda": 0.0,
        "image_size": 32,
    }  # fmt: skip
    header = run_cli("runs", "list")[1].splitlines()[0].split()
    assert {"final", "PSNR", "data", "model", "lr", "recipe"} <= set(header)
    code, out, _ = run_cli("runs", "show", two_runs[0][:-1])
    assert code == 0 and shown_fact(out, "norm") == "L1" and "max|e| worst" in out
    code, out, _ = run_cli("runs", "compare", *two_runs, "--metric", "mae", "--log", "--width", "60")
    assert code == 0 and "val MAE (log scale)" in out and "one run each (untested: --paired" in out
    table = [line for line in out.splitlines() if line.startswith("val ")]
    assert len(table) >= 6 and not any("*" in line for line in table)  # one seed each: no run is marked best
    assert "L1 " + two_runs[0][-6:] in out and "0.5*L1+0.5*L2 " + two_runs[1][-6:] in out
    lines = out.splitlines()
    bottom = max(i for i, line in enumerate(lines) if "└" in line)
    legend = [i for i, line in enumerate(lines) if "L1 " + two_runs[0][-6:] in line and "│" not in line]
    assert legend and max(legend) > bottom  # the legend is under the plot, not drawn on its data
    assert not any("L1 " + two_runs[0][-6:] in line for line in lines if "│" in line)  # nor inside it
    code, out, _ = run_cli("runs", "compare", *two_runs, "--metric", "loss", "--smooth", "0.9")
    assert code == 0 and f"L1 {two_runs[0][-6:]} (smoothed 0.9)" in out
    code, _, err = run_cli("runs", "compare", *two_runs, "--smooth", "1.5")
    assert code == 2 and "--smooth" in err


def test_tags_are_saved_listed_shown_and_exported(run_cli, two_runs, runs_dir, tmp_path):
    first, second = two_runs
    assert run_cli("runs", "tag", first, "baseline", "lr-sweep")[0] == 0
    assert run_cli("runs", "tag", second, "lr-sweep")[0] == 0
    assert json.loads((runs_dir / first / "tags.json").read_text()) == {"tags": ["baseline", "lr-sweep"]}
    code, out, _ = run_cli("runs", "list")
    line = next(line for line in out.splitlines() if line.startswith(first))
    assert line.endswith("baseline lr-sweep")
    assert [r["tags"] for r in json.loads(run_cli("runs", "list", "--json")[1])] == [
        ["baseline", "lr-sweep"],
        ["lr-sweep"],
    ]
    assert shown_fact(run_cli("runs", "show", first)[1], "tags") == "baseline lr-sweep"
    run_cli("runs", "tag", first, "baseline", "--remove")
    assert shown_fact(run_cli("runs", "show", first)[1], "tags") == "lr-sweep"
    run_cli("runs", "export", str(tmp_path / "all.csv"))
    assert [r["tags"] for r in csv.DictReader(open(tmp_path / "all.csv"))] == ["lr-sweep", "lr-sweep"]
    code, _, err = run_cli("runs", "tag", first, "[bold]x")  # not a word: refused, nothing written
    assert_one_line_error(code, err, 2, "is not a tag")
    assert json.loads((runs_dir / first / "tags.json").read_text()) == {"tags": ["lr-sweep"]}
    run_cli("runs", "tag", first, "--clear")
    assert shown_fact(run_cli("runs", "show", first)[1], "tags") == "-"
    (runs_dir / second / "tags.json").write_text('{"tags": "not a list"}')  # damaged: the run is still listed
    code, out, _ = run_cli("runs", "list")
    assert code == 0 and second in out
    code, out, err = run_cli("runs", "show", second)
    assert code == 0 and "tags.json: tags must be a list of words" in err


def test_runs_export_every_run(run_cli, two_runs, tmp_path):
    code, _, err = run_cli("runs", "export", str(tmp_path / "all.csv"))
    assert code == 0 and "exported 2 runs (2 epoch rows)" in err
    rows = list(csv.DictReader(open(tmp_path / "all.csv")))
    assert [r["run"] for r in rows] == two_runs and float(rows[0]["psnr"]) > 5
    assert "step_losses" not in rows[0]  # one row per epoch; the JSON export has every step
    run_cli("runs", "export", str(tmp_path / "all.json"))
    exported = json.loads((tmp_path / "all.json").read_text())
    assert [r["id"] for r in exported] == two_runs and len(exported[0]["epochs"][0]["step_losses"]) > 1


def test_runs_rm_asks_first(run_cli, two_runs, runs_dir, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, _ = run_cli("runs", "rm", two_runs[0])
    assert code == 1 and (runs_dir / two_runs[0]).exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, _, _ = run_cli("runs", "rm", two_runs[0])
    assert code == 0 and not (runs_dir / two_runs[0]).exists()
    code, _, err = run_cli("runs", "rm", "--yes", two_runs[1])
    assert code == 0 and f"removed {two_runs[1]}" in err and not any(runs_dir.iterdir())


def test_runs_rm_where_removes_the_runs_the_filter_keeps_after_naming_them(run_cli, two_runs, runs_dir, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = run_cli("runs", "rm", "--where", "norm=L1")
    assert code == 1 and f"remove 1 run: {two_runs[0]}?" in out and (runs_dir / two_runs[0]).exists()
    code, _, err = run_cli("runs", "rm", "--where", "norm=L1", "--yes")
    assert code == 0 and f"removed {two_runs[0]}" in err
    assert sorted(p.name for p in runs_dir.iterdir()) == [two_runs[1]]  # the hybrid norm's run is kept
    assert_one_line_error(*run_cli("runs", "rm", "--yes")[::2], 2, "name the runs to remove")
    code, _, err = run_cli("runs", "rm", "--where", "norm=L1", "--yes")  # none left: nothing removed
    assert code == 1 and "holds norm=L1" in err and (runs_dir / two_runs[1]).exists()


def test_eval_on_another_dataset(run_cli, two_runs):
    code, out, _ = run_cli("eval", two_runs[0], "--dataset", "synthetic", "--json")
    result = json.loads(out)
    assert code == 0 and result["data"] == "synthetic" and result["images"] == 512 and 5 < result["psnr"] < 40
    code, out, _ = run_cli("eval", two_runs[0])
    assert code == 0 and "val PSNR (dB)" in out and "on sample (1017 test images)" in out


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["train", "--norm", "L3"], 2, "unknown norm 'L3'; valid forms"),
        (["train", "--norm", "0.5*L1+"], 2, "malformed norm"),
        (["train", "--epochs", "0"], 2, "--epochs"),
        (["train", "--bogus"], 2, "No such option: --bogus"),
        (["train", "--device", "tpu"], 2, "unknown device"),
        (["train", "--dataset", "mnist"], 2, "unknown dataset"),
        (["train", "--dataset", "folder:/no/such/dir"], 1, "/no/such/dir does not exist"),
        (["train", "--resume", "nope"], 1, "no run 'nope'"),
        (["eval", "nope"], 1, "no run 'nope'"),
        (["runs", "show", "nope"], 1, "no run 'nope'"),
        (["runs", "compare"], 2, "name the runs to compare (ids, or unique prefixes or suffixes), or give --where"),
        (["runs", "compare", "abc", "--where", "norm=L1"], 2, "or give --where TERMS, not both"),
        (["runs", "compare", "--where", "psnr>"], 2, "the filter term 'psnr>' has no value after >"),
        (["runs", "export", "out.txt"], 2, "name a .csv or .json file, or give --format"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(run_cli, runs_dir, args, code, fragment):
    assert_one_line_error(*run_cli(*args)[::2], code, fragment)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # nothing half-made


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_an_error_not_a_fallback(run_cli, runs_dir):
    assert_one_line_error(*run_cli("train", *QUICK, "--device", "cuda")[::2], 1, "asked for CUDA")


def test_damaged_runs(run_cli, two_runs, runs_dir):
    checkpoint = runs_dir / two_runs[0] / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    assert_one_line_error(*run_cli("eval", two_runs[0])[::2], 1, "checkpoint.pt cannot be read")
    (runs_dir / two_runs[1] / "summary.json").write_text("{")
    code, out, err = run_cli("runs", "list")
    assert code == 0 and "damaged" in out and "summary.json is not valid JSON" in err
    (runs_dir / two_runs[1] / "config.json").write_text("{")
    code, out, err = run_cli("runs", "compare", two_runs[1], "--no-baseline")  # an empty table and chart, exit 0
    assert code == 1 and err.splitlines()[-1] == "normcompress: error: nothing to compare: every run named is damaged"
    assert "config.json is not valid JSON" in err and out == ""


def test_counts_read_in_the_right_number(run_cli, two_runs, tmp_path):
    code, _, err = run_cli("runs", "export", str(tmp_path / "one.csv"), two_runs[0])
    assert code == 0 and "exported 1 run (1 epoch row)" in err  # was "1 runs (1 epoch rows)"
    code, _, err = run_cli("runs", "list", "--where", "norm=L2")
    assert code == 0 and "none of the 2 runs" in err


def test_ambiguous_prefix(run_cli, two_runs):
    assert_one_line_error(*run_cli("runs", "show", two_runs[0][:4])[::2], 2, "matches 2 runs")


def test_ctrl_c_mid_epoch_keeps_the_run_and_resume_finishes_it(runs_dir):
    """Started with SIGINT ignored, as a job runner or `cmd &` in a script starts it: Ctrl-C still keeps
    the run. The signal goes after the first epoch line; seven more epochs take far longer than its
    delivery, on any machine, and the resume is small enough for a loaded one."""
    epochs = 8
    command = [
        sys.executable,
        "-m",
        "normcompress",
        "train",
        "--dataset",
        "synthetic",
        "--limit",
        "512",
        "--epochs",
        str(epochs),
        "--device",
        "cpu",
        "--batch-size",
        "64",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    for line in process.stderr:
        if f"epoch   1/{epochs}" in line:
            break
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=600)  # only a guard: a SIGINT that is ignored fails on the code
    assert process.returncode == 130, err
    assert "Traceback" not in err and "resume with: normcompress train --resume" in err
    (run,) = RunStore(runs_dir).runs()
    info = run.info()
    assert info.status == "interrupted" and 1 <= info.epochs_done < epochs
    assert len(run.metrics()) == info.epochs_done == run.load_checkpoint()["epoch"]
    resumed = subprocess.run(
        [sys.executable, "-m", "normcompress", "train", "--resume", run.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr  # on to the run's own target
    assert run.info().status == "completed" and len(run.metrics()) == epochs


def test_help_and_argument_errors_do_not_wait_for_torch():
    """--help, an argument error and the app's first screen must not import torch (1.7 s here): the
    registries of norms, metrics, models, datasets and devices are read without it."""
    probe = (
        "import sys, normcompress.cli, normcompress.config, normcompress_tui.app; "
        "from normcompress.config import TrainConfig; TrainConfig(norm='0.5*L1+0.5*L2').validated(); "
        "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "normcompress", "train", "--norm", "L7x", "--epochs", "0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["study", "--ray"], ["study", "--ray", "local"]),
        (["study", "--ray", "--seeds", "2"], ["study", "--ray", "local", "--seeds", "2"]),
        (["study", "--ray", "auto", "--seeds", "2"], ["study", "--ray", "auto", "--seeds", "2"]),
        (["study", "--ray", "10.0.0.5:6379"], ["study", "--ray", "10.0.0.5:6379"]),
        (["study", "--", "--ray"], ["study", "--", "--ray"]),
    ],
)
def test_a_bare_ray_option_means_a_local_ray_instance(args, expected):
    from normcompress.cli import _bare_ray_is_local

    assert _bare_ray_is_local(args) == expected


def test_ray_refuses_several_devices_and_a_missing_extra_in_one_line(run_cli, runs_dir, tmp_path, monkeypatch):
    code, _, err = run_cli("study", "--ray", "--devices", "cpu,cpu", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, 2, "on Ray the cluster places each run")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the cluster extra were not installed
    code, _, err = run_cli(
        "study", "--ray", "--norms", "L2", "--seeds", "1", "--dataset", "synthetic", "--out", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, 2, "--ray needs Ray, an optional extra: pip install -e '.[cluster]'")
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_the_study_help_names_the_cluster_extra_as_it_must_be_typed(run_cli):
    code, out, _ = run_cli("study", "--help")
    assert code == 0 and "Needs the extra: pip install -e '.[cluster]'." in " ".join(out.split())


def every_command():
    """(path, click command) of each command the CLI has, groups left out."""
    import typer.main

    from normcompress.cli import app

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")
        if not hasattr(command, "commands"):
            yield path, command

    return list(walk(typer.main.get_command(app), "normcompress"))


def test_every_help_fits_an_80_column_terminal_with_room_to_read(run_cli, monkeypatch, capsys):
    """Rich's boxed help left `train --help` a 20-character column for the descriptions at 80 columns
    (one word a line), and `--metric` printed its 15 choices on a line of 142 characters."""
    monkeypatch.setenv("COLUMNS", "80")
    for path, _ in every_command():
        code, out, _ = run_cli(*path.split()[1:], "--help")
        assert code == 0 and out.startswith(f"Usage: {path} ")
        assert max(map(len, out.splitlines())) <= 80, path
        assert "│" not in out, path  # no box whose columns squeeze the descriptions
        options = [line.split()[1 if line.lstrip().startswith("-o,") else 0 :][:2] for line in out.splitlines()]
        typed = [o for o in options if o and o[0].startswith("--") and len(o) > 1 and o[1].startswith("<")]
        assert typed == [], path  # DIR, NORM, N: not Python's <str>, <path>
    for group in ([], ["runs"]):  # each command's line in the list whole: it ended "...", cut at 80 columns
        code, out, _ = run_cli(*group, "--help")
        listed = out[out.index("Commands:") :]
        assert code == 0 and "..." not in listed and max(map(len, out.splitlines())) <= 80
    from normcompress_tui import app as tui

    monkeypatch.setattr(sys, "argv", ["normcompress-tui", "-h"])  # the app's command: the same layout, and -h
    with pytest.raises(SystemExit) as done:
        tui.main()
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("Usage: normcompress-tui ") and "│" not in out
    assert max(map(len, out.splitlines())) <= 80 and "--runs-dir" in out


@pytest.mark.parametrize("where", ["a-file", "a-file/report"])
def test_a_study_whose_out_is_a_file_is_refused_before_it_trains(run_cli, runs_dir, tmp_path, where):
    """--out naming a file (or a path under one) was found out only after every run had trained."""
    (tmp_path / "a-file").write_text("not a folder")
    out = str(tmp_path / where)
    code, _, err = run_cli("study", "--norms", "L2", "--seeds", "1", *QUICK[:-2], "--out", out)
    assert_one_line_error(code, err, 2, "a-file")
    assert "give a directory" in err and not RunStore(runs_dir).runs()  # refused before any run
    code, _, err = run_cli("compress", "some-run", "image.png", "--out", out)
    assert_one_line_error(code, err, 2, "give a directory")


def test_no_command_gives_one_short_option_to_two_options():
    """`runs export` gave -f to both --format and --force: `-f json` forced, then read json as a run."""
    for path, command in every_command():
        flags = [flag for param in command.params for flag in (*param.opts, *param.secondary_opts) if flag[0] == "-"]
        assert len(flags) == len(set(flags)), f"{path}: {sorted(f for f in flags if flags.count(f) > 1)}"


def test_runs_export_with_a_run_where_the_output_goes_says_which_comes_first(run_cli, two_runs, tmp_path, monkeypatch):
    """`runs export RUN OTHER --format tensorboard` exported OTHER into a folder named after RUN."""
    monkeypatch.chdir(tmp_path)
    first, second = (run_id[-6:] for run_id in two_runs)
    code, _, err = run_cli("runs", "export", first, second, "--format", "tensorboard")
    assert_one_line_error(code, err, 2, "the first argument is the output")
    assert not (tmp_path / first).exists()
    code, _, err = run_cli("runs", "export", "out.json", second, "--format", "json")
    assert code == 0 and (tmp_path / "out.json").exists(), err


def test_a_setting_given_beside_resume_is_refused_not_ignored(run_cli, runs_dir):
    """`train --resume RUN --epochs 20` (to train it longer) went on for the run's own epochs, silently."""
    store = RunStore(runs_dir)
    stop = threading.Event()
    config = TrainConfig(norm="L1", epochs=3, dataset="synthetic", limit=128, device="cpu")
    run = train(config, store, lambda e: stop.set() if isinstance(e, EpochEnd) else None, stop)
    assert run.info().status == "interrupted"
    code, _, err = run_cli("train", "--resume", run.id[-6:], "--epochs", "20", "--no-cuda-graph")
    assert_one_line_error(code, err, 2, "leave out --epochs, --cuda-graph/--no-cuda-graph")
    assert RunStore(runs_dir).get(run.id).info().epochs_done == 1  # nothing trained
    code, out, err = run_cli("train", "--resume", run.id[-6:], "--quiet")
    assert out.startswith(run.id)
    assert code == 0 and RunStore(runs_dir).get(run.id).info().epochs_done == 3, err


def test_a_run_asked_for_cuda_resumes_on_the_cpu_with_device(run_cli, runs_dir):
    """A run started with --device cuda (on a GPU box) could not be resumed anywhere else: its own device
    was used, and a --device beside --resume was ignored."""
    store = RunStore(runs_dir)
    stop = threading.Event()
    config = TrainConfig(norm="L1", epochs=2, dataset="synthetic", limit=128, device="cpu")
    run = train(config, store, lambda e: stop.set() if isinstance(e, EpochEnd) else None, stop)
    stored = json.loads((run.path / "config.json").read_text())
    (run.path / "config.json").write_text(json.dumps({**stored, "device": "cuda"}))  # as on the GPU box
    if not torch.cuda.is_available():
        code, _, err = run_cli("train", "--resume", run.id)
        assert_one_line_error(code, err, 1, "no CUDA device is visible")
    code, _, err = run_cli("train", "--resume", run.id, "--device", "cpu", "--quiet")
    info = RunStore(runs_dir).get(run.id).info()
    assert code == 0 and info.status == "completed" and info.epochs_done == 2, err
    assert info.summary.device == "cpu" and info.config.device == "cuda"  # where it went on; what it asked
