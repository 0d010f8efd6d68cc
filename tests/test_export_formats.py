"""Runs that leave the project: `runs export --format csv` (one long table) and `--format tensorboard`, read
back by pandas-free csv and by TensorBoard's own event reader, each value checked against metrics.jsonl."""

import csv
import json

import pytest


def epochs_of(run) -> list[dict]:
    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_the_long_csv_holds_every_step_and_epoch_scalar(store_copy, run_cli, tmp_path):
    completed = store_copy.runs()[1]
    code, _, err = run_cli("runs", "export", str(tmp_path / "long.csv"), "--format", "csv", completed.id)
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "long.csv")))
    assert list(rows[0]) == ["run", "name", "step", "epoch", "time_s", "metric", "value"]
    assert {r["run"] for r in rows} == {completed.id}  # only the run named
    (record,) = epochs_of(completed)  # one epoch: its step losses, then its scalars at its last step
    steps = [r for r in rows if r["metric"] == "loss_step"]
    assert [float(r["value"]) for r in steps] == pytest.approx(record["step_losses"])
    assert [int(r["step"]) for r in steps] == list(range(1, len(record["step_losses"]) + 1))
    assert float(steps[-1]["time_s"]) == pytest.approx(record["epoch_time_s"], abs=1e-6)  # the epoch's end
    psnr = next(r for r in rows if r["metric"] == "psnr")
    assert float(psnr["value"]) == pytest.approx(record["psnr"]) and psnr["step"] == str(len(record["step_losses"]))
    scalars = {k for k, v in record.items() if k not in ("epoch", "step_losses", "epoch_time_s")}
    assert {r["metric"] for r in rows} == scalars | {"loss_step"}
    code, _, err = run_cli("runs", "export", str(tmp_path / "long.csv"), "--format", "csv")
    assert code == 2 and "already exists; pass --force" in err
    code, _, err = run_cli("runs", "export", str(tmp_path / "all"), "--format", "xml")
    assert code == 2 and "no export format 'xml'" in err
    code, _, err = run_cli("runs", "export", str(tmp_path / "all"))
    assert code == 2 and "cannot tell the format of all" in err


def test_a_tensorboard_export_reads_back_in_tensorboards_own_reader(store_copy, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    interrupted, completed = store_copy.runs()
    store_copy.get(completed.id).annotate(name="mine")
    out = tmp_path / "tb"
    code, _, err = run_cli("runs", "export", str(out), "--format", "tensorboard")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([interrupted.id, completed.id])  # nothing half-written
    for run in (interrupted, completed):
        events = EventAccumulator(str(out / run.id), size_guidance={"scalars": 0, "images": 0})
        events.Reload()
        records = epochs_of(run)
        steps = [loss for r in records for loss in r["step_losses"]]
        read = events.Scalars("train/loss_step")
        assert [e.step for e in read] == list(range(1, len(steps) + 1))
        assert [e.value for e in read] == pytest.approx(steps, rel=1e-6)  # float32 in the event file
        for key in ("psnr", "mse", "ssim", "maxabs_worst"):
            assert [e.value for e in events.Scalars(f"val/{key}")] == pytest.approx([r[key] for r in records], rel=1e-6)
        assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([r["lr"] for r in records], rel=1e-6)
        assert [e.value for e in events.Scalars("system/cpu_percent")] == pytest.approx(
            [r["cpu_percent"] for r in records], rel=1e-6
        )  # what the machine did, under its own heading
        ends = [sum(len(r["step_losses"]) for r in records[: i + 1]) for i in range(len(records))]
        assert [image.step for image in events.Images("reconstructions")] == ends  # the history, an image per epoch
    hparams = EventAccumulator(str(out / completed.id))
    hparams.Reload()
    assert "_hparams_/session_start_info" in hparams.summary_metadata  # the settings as hyperparameters
    code, _, err = run_cli("runs", "export", str(out), "--format", "tensorboard", completed.id)
    assert code == 2 and "already exists; pass --force" in err
    code, _, err = run_cli("runs", "export", str(out), "--format", "tensorboard", completed.id, "--force")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([interrupted.id, completed.id])


def test_an_export_into_the_store_is_refused(store_copy, run_cli):
    code, _, err = run_cli("runs", "export", str(store_copy.root / "tb"), "--format", "tensorboard")
    assert code == 2 and "is inside the run store" in err


def test_words_a_spreadsheet_would_run_as_a_formula_are_exported_as_text(store_copy, run_cli, tmp_path):
    """A run named =HYPERLINK("http://x","click") (a store copied from someone else) was written as is,
    a live formula in Excel or LibreOffice: CSV injection. The JSON keeps the words as they are."""
    completed = store_copy.runs()[1]
    assert run_cli("runs", "name", completed.id, '=HYPERLINK("http://x","click")')[0] == 0
    assert run_cli("runs", "note", completed.id, "+cmd|' /C calc'!A0")[0] == 0
    assert run_cli("runs", "tag", completed.id, "--", "@risky", "-minus", "plain")[0] == 0
    for fmt in ("table", "csv"):
        assert run_cli("runs", "export", str(tmp_path / f"{fmt}.csv"), "--format", fmt, completed.id)[0] == 0
        rows = list(csv.DictReader(open(tmp_path / f"{fmt}.csv")))
        assert {r["name"] for r in rows} == {'\'=HYPERLINK("http://x","click")'}, fmt
    (row,) = csv.DictReader(open(tmp_path / "table.csv"))
    assert row["note"] == "'+cmd|' /C calc'!A0" and row["tags"] == "'@risky -minus plain"
    assert run_cli("runs", "export", str(tmp_path / "all.json"), completed.id)[0] == 0
    (exported,) = json.loads((tmp_path / "all.json").read_text())
    assert exported["name"] == '=HYPERLINK("http://x","click")' and exported["tags"] == ["@risky", "-minus", "plain"]


def test_every_csv_the_project_writes_keeps_formulas_as_text_and_numbers_as_numbers():
    """The study's metrics.csv and rd.csv carry run labels, and a label carries a run's name: the one
    writer they share with the exports guards them too."""
    from normcompress.files import csv_bytes

    row = {"label": '=HYPERLINK("http://x") 2eb768', "negative": "-0.5", "none": "-", "number": -3.0}
    row |= {"at": "@SUM(A1)", "tab": "\tx", "plain": "L1 2eb768"}
    text = csv_bytes([row], list(row)).decode().splitlines()[1]
    assert text == '"\'=HYPERLINK(""http://x"") 2eb768",-0.5,-,-3.0,\'@SUM(A1),\'\tx,L1 2eb768'
