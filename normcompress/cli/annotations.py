"""`normcompress runs tag`, `name` and `note`: a user's own words about a run, which filters find and
legends, tables and exports show (runs.py registers them in the group)."""

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..console import err, notice
from ..errors import UsageError
from ..runs import MAX_NAME, MAX_NOTE
from ..text import one_line
from .options import RunRef, RunsDir, store


def runs_tag(
    run_id: RunRef,
    tags: Annotated[
        list[str] | None,
        typer.Argument(metavar="TAG", help="Words to add (letters, digits, . : + = @ - _; 32 characters at most)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", "-r", help="Remove the given tags instead.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Make the given tags the run's only ones.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every tag of the run.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Tag a run with words of your own (`baseline`, `lr-sweep`), to find it again: the app's `/` filter
    searches them, `runs list` and `runs show` print them. The app's `t` edits the same tags.

    Tagging from several shells at once keeps every word. --replace and --clear also repair a damaged
    tags.json."""
    if sum((remove, replace, clear)) > 1:
        raise UsageError("give one of --remove, --replace and --clear")
    run = store(runs_dir).get(run_id)
    words = tags or []
    if clear or replace:
        new, dropped = api.tag_run(run, replace=[] if clear else words)
    else:
        new, dropped = api.tag_run(run, remove=words) if remove else api.tag_run(run, add=words)
    if dropped:
        notice(f"{run.id}: {one_line(dropped)}")
    err.print(f"{run.id}: {' '.join(new) or 'no tags'}")


def runs_name(
    run_id: RunRef,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help=f'The name: one line, at most {MAX_NAME} characters; "" removes it.')
    ],
    runs_dir: RunsDir = None,
) -> None:
    """Name a run: legends, tables and exports show the name instead of its norm, beside the end of its id.
    The app's `n` edits the same name."""
    run, annotations = _annotate(run_id, runs_dir, name=text)
    err.print(f"{run.id}: " + (f"named {one_line(annotations.name)}" if annotations.name else "no name"))


def runs_note(
    run_id: RunRef,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help=f'The note, at most {MAX_NOTE} characters; "" removes it.')
    ],
    runs_dir: RunsDir = None,
) -> None:
    """Keep a note with a run (what you tried, what you saw): runs show, the app's details and exports show
    it. The app's `N` edits the same note."""
    run, annotations = _annotate(run_id, runs_dir, note=text)
    err.print(f"{run.id}: " + ("note kept" if annotations.note else "no note"))


def _annotate(run_id: str, runs_dir: Path | None, **text: str):
    """Set a run's name or note; the run and its annotations. A damaged tags.json it replaced is said."""
    run = store(runs_dir).get(run_id)
    annotations, dropped = api.annotate_run(run, **text)
    if dropped:
        notice(f"{run.id}: {one_line(dropped)}")
    return run, annotations
