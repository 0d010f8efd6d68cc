"""Names, notes, `runs diff` and `runs list --where`, from the CLI (in-process) and the app (Pilot), on
copies of the template store (two real runs: one interrupted after epoch 1, one completed)."""

import csv
import json
import os
import subprocess
import sys

import pytest


def test_a_name_and_a_note_are_kept_with_the_tags_and_shown_everywhere(store_copy, run_cli, tmp_path):
    interrupted, completed = store_copy.runs()
    assert run_cli("runs", "tag", completed.id, "keep")[0] == 0
    code, _, err = run_cli("runs", "name", completed.id, "  wide lr  ")
    assert code == 0 and "named wide lr" in err
    code, _, err = run_cli("runs", "note", completed.id, "first try\n[bold]not markup[/bold]")
    assert code == 0 and "note kept" in err
    saved = json.loads((completed.path / "tags.json").read_text())
    assert saved == {"tags": ["keep"], "name": "wide lr", "note": "first try\n[bold]not markup[/bold]"}
    assert run_cli("runs", "tag", completed.id, "more")[0] == 0  # tagging keeps the name and the note
    info = completed.info()
    assert (info.tags, info.name, info.label) == (("keep", "more"), "wide lr", f"wide lr {completed.id[-6:]}")
    code, out, _ = run_cli("runs", "show", completed.id)
    assert "wide lr" in out and "[bold]not markup[/bold]" in out  # as text: the brackets are shown
    code, out, _ = run_cli("runs", "list")
    assert out.splitlines()[0].split()[:2] == ["id", "name"] and "wide lr" in out
    listed = {r["id"]: r for r in json.loads(run_cli("runs", "list", "--json")[1])}
    assert listed[completed.id]["name"] == "wide lr" and listed[interrupted.id]["note"] == ""
    assert run_cli("runs", "export", str(tmp_path / "all.csv"))[0] == 0
    assert "wide lr" in (tmp_path / "all.csv").read_text()
    code, _, err = run_cli("runs", "name", completed.id, "")
    assert code == 0 and "no name" in err and completed.info().name == "" and completed.info().tags == ("keep", "more")


@pytest.mark.parametrize(
    "command, text, message",
    [
        ("name", "x" * 61, "a name has at most 60 characters, not 61"),
        ("name", "two\nlines", "a name cannot hold control characters or line breaks"),
        ("note", "bell\x07", "a note cannot hold control characters"),
        ("note", "y" * 2001, "a note has at most 2000 characters"),
    ],
)
def test_a_bad_name_or_note_is_one_line_and_writes_nothing(store_copy, run_cli, command, text, message):
    run = store_copy.runs()[1]
    code, _, err = run_cli("runs", command, run.id, text)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (run.path / "tags.json").exists()


def test_a_damaged_tags_file_is_one_reason_and_naming_the_run_replaces_it(store_copy, run_cli):
    run = store_copy.runs()[1]
    (run.path / "tags.json").write_text('{"tags": [], "name": 7}')
    assert run.info().tags_problem == "tags.json: a name must be text"
    code, _, err = run_cli("runs", "name", run.id, "fresh")
    assert code == 0 and "its contents were dropped" in err and run.info().name == "fresh"


def test_diff_shows_the_differing_keys_first(store_copy, run_cli):
    interrupted, completed = store_copy.runs()
    run_cli("runs", "name", completed.id, "mine")
    code, out, err = run_cli("runs", "diff", interrupted.id, completed.id)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[0] == "key" and f"mine {completed.id[-6:]}" in lines[0]
    keys = [line.split()[1] for line in lines[1:]]
    assert (
        {"name", "status", "epochs"} <= set(keys) and "norm" not in keys and "epochs_done" not in keys
    )  # the same norm: not shown
    assert all(line.startswith("≠") for line in lines[1:])
    assert "of" in err and "keys differ" in err
    everything = json.loads(run_cli("runs", "diff", interrupted.id, completed.id, "--json")[1])
    rows = {r["key"]: r for r in everything["keys"]}
    assert rows["status"]["values"] == ["interrupted", "completed"] and rows["status"]["differs"]
    assert rows["norm"]["values"] == ["L2", "L2"] and not rows["norm"]["differs"]
    flags = [r["differs"] for r in everything["keys"]]
    assert flags == sorted(flags, reverse=True)  # every differing key before every equal one
    code, _, err = run_cli("runs", "diff", interrupted.id, "../outside")
    assert code != 0 and "Traceback" not in err


def test_diff_on_a_narrow_terminal_sets_each_key_over_its_two_values(store_copy, run_cli, monkeypatch):
    """Its two value columns ran past 80 columns (a long note, the versions) and the terminal broke each
    row over lines, the values of one key apart; blocks of columns would part them too."""
    from normcompress.cli import tables

    interrupted, completed = store_copy.runs()
    run_cli("runs", "note", completed.id, "a note long enough to push the diff's second column past forty columns")
    piped = run_cli("runs", "diff", interrupted.id, completed.id)[1].splitlines()
    assert max(map(len, piped)) > 80 and piped[0].startswith("key")  # in a pipe: a line per key, for grep
    monkeypatch.setattr(tables, "terminal_width", lambda: 80)
    code, out, _ = run_cli("runs", "diff", interrupted.id, completed.id)
    lines = out.splitlines()
    at = lines.index("≠ note")
    assert code == 0 and lines[at + 1].split() == [interrupted.info().label.split()[0], interrupted.id[-6:], "-"]
    assert lines[at + 2].endswith("  a note long enough to push the diff's second column past forty columns")
    assert lines[at + 2].lstrip().startswith(completed.info().label)
    assert len([line for line in lines if line.startswith("≠ ")]) == len(piped) - 1  # every key, once


def test_runs_list_where_keeps_the_runs_a_hand_count_says(store_copy, run_cli):
    interrupted, completed = store_copy.runs()
    assert completed.info().epochs == 1 and interrupted.info().epochs == 2  # the template, as built

    def listed(*terms: str) -> set[str]:
        code, out, err = run_cli("runs", "list", "--json", "--where", " ".join(terms))
        assert code == 0, err
        return {r["id"] for r in json.loads(out)}

    assert listed("epochs=1") == {completed.id}
    assert listed("epochs>=1", "status=interrupted") == {interrupted.id}
    assert listed("psnr>0") == {interrupted.id, completed.id}
    assert listed("psnr>100") == set()
    code, _, err = run_cli("runs", "list", "--where", "psnr>>1")
    assert code == 2 and "cannot read the filter term 'psnr>>1'" in err


def test_where_is_refused_in_one_line_by_the_installed_command(store_copy):
    result = subprocess.run(
        [sys.executable, "-m", "normcompress", "runs", "list", "--where", "colour=red"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert result.returncode == 2 and "unknown key 'colour'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.usefixtures("in_process_probes")
async def test_the_app_names_a_run_and_filters_by_numbers(store_copy, tmp_path):
    from textual.widgets import Input

    from normcompress_tui.app import NormcompressApp
    from normcompress_tui.widgets.runs_table import RunsTable

    completed = store_copy.runs()[1]
    app = NormcompressApp(store_copy)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        while table.row_count < 2:
            await pilot.pause(0.1)
        table.focus()
        table.move_cursor(row=[i.id for i in table.visible_infos()].index(completed.id))
        await pilot.press("n")
        field = app.screen.query_one("#prompt-input", Input)
        field.value = "[red]my run[/red]"
        await pilot.press("enter")
        while "name" not in [c.key for c in table.shown_columns]:
            await pilot.pause(0.1)
        assert completed.info().name == "[red]my run[/red]"
        row = [str(table.get_cell(completed.id, c.key)) for c in table.shown_columns]
        assert "[red]my run[/red]" in row  # text, never markup
        await pilot.press("slash")
        app.query_one("#filter", Input).value = "epochs=1 psnr>0"
        await pilot.pause()
        assert [i.id for i in table.visible_infos()] == [completed.id]
        app.query_one("#filter", Input).value = "psnr>"
        await pilot.pause()
        assert table.query_problem and "has no value after >" in str(table.border_subtitle)
    app = NormcompressApp(store_copy)  # a restart: the name is the store's
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(RunsTable)
        while table.row_count < 2:
            await pilot.pause(0.1)
        assert table.infos[completed.id].name == "[red]my run[/red]"


def test_runs_compare_groups_runs_by_a_setting(store_copy, run_cli, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    interrupted, completed = store_copy.runs()
    code, out, err = run_cli("runs", "compare", interrupted.id, completed.id, "--no-baseline", "--group-by", "norm")
    assert code == 0, err
    assert "norm=L2 (n=2, band min–max)" in out  # both template runs are L2: one group of two
    code, out, err = run_cli(
        "runs", "compare", interrupted.id, completed.id, "--no-baseline", "-g", "epochs", "--band", "sd"
    )
    assert code == 0 and "epochs=2 (n=1, band ±1 sd)" in out and "epochs=1 (n=1, band ±1 sd)" in out
    code, out, err = run_cli("runs", "compare", "--where", "norm=L2", "--no-baseline", "-g", "epochs", "--band", "sd")
    assert code == 0 and "epochs=2 (n=1, band ±1 sd)" in out and "epochs=1 (n=1, band ±1 sd)" in out  # the same two
    code, out, err = run_cli("runs", "compare", "-w", "epochs=1", "--no-baseline")  # the completed run alone
    assert code == 0 and completed.id[-6:] in out.splitlines()[2] and interrupted.id[-6:] not in out
    code, _, err = run_cli("runs", "compare", "--where", "norm=L1")
    assert code == 1 and "none of the 2 runs in" in err and "holds norm=L1" in err


def test_runs_export_where_exports_the_runs_the_filter_keeps(store_copy, run_cli, tmp_path):
    interrupted, completed = store_copy.runs()
    code, _, err = run_cli("runs", "export", str(tmp_path / "one.csv"), "--where", "epochs=1")
    assert code == 0 and "exported 1 run" in err, err
    assert {row["run"] for row in csv.DictReader(open(tmp_path / "one.csv"))} == {completed.id}
    code, _, err = run_cli("runs", "export", str(tmp_path / "two.csv"), interrupted.id, "-w", "epochs=1")
    assert code == 2 and "name the runs to export or give --where TERMS, not both" in err
    code, _, err = run_cli("runs", "export", str(tmp_path / "none.csv"), "--where", "norm=L1")
    assert code == 1 and "holds norm=L1" in err and not (tmp_path / "none.csv").exists()
    code, _, err = run_cli("runs", "compare", interrupted.id, completed.id, "--group-by", "colour")
    assert code == 2 and "unknown key 'colour'" in err
    code, _, err = run_cli("runs", "compare", interrupted.id, completed.id, "--band", "iqr")
    assert code == 2 and "no band 'iqr'" in err
