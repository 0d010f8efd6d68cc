"""What the app keeps between launches: the Run form, the chart's view, the overlaid runs and the table's order.

One small JSON file in the run store (`.app-state.json`, which no run id can be), written by rename.
A file that cannot be read or is not what the app wrote is ignored with a notice: the app starts as new.
"""

import json
from pathlib import Path

from normcompress.files import FileError, MissingFileError, atomic_write_json, read_regular
from normcompress.text import printable

STATE_FILE = ".app-state.json"
MAX_STATE_BYTES = 256 * 1024
VERSION = 1


def state_path(store_root: Path) -> Path:
    return store_root / STATE_FILE


def load_state(path: Path) -> tuple[dict, str | None]:
    """The saved state ({} when there is none), and why it was ignored when it could not be used."""
    try:
        data = read_regular(path, MAX_STATE_BYTES, follow_symlinks=False, what=path.name)
    except MissingFileError:
        return {}, None
    except FileError as exc:
        return {}, f"the app's saved state was ignored: {exc}"
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}, f"the app's saved state was ignored: {path.name} is not valid JSON"
    if not isinstance(state, dict) or state.get("version") != VERSION:
        return {}, f"the app's saved state was ignored: {path.name} is not a state this app wrote"
    return state, None


def save_state(path: Path, state: dict) -> str | None:
    """Write the state; a reason (one line) when it could not be written. Nothing half-written is left."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"version": VERSION, **state})
    except (OSError, FileError, ValueError) as exc:
        return printable(f"cannot save the app's state: {exc}", keep_newlines=False)
    return None


def section(state: dict, name: str) -> dict:
    """One part of the state as a dict ({} when it is missing or not a dict)."""
    value = state.get(name)
    return value if isinstance(value, dict) else {}
