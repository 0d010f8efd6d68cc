"""What the app keeps between launches: the Run form, the chart's view, the overlaid runs and the table's order.

One small JSON file in the run store (`.app-state.json`, which no run id can be), written by rename.
It is read through a typed layer, as the run files are: a file that cannot be read or is not what the app
wrote is ignored, and a value of the wrong type (or text holding control characters, which would reach
the terminal) is dropped, each with one notice; the widgets then see only values of the types they take.
"""

import json
from pathlib import Path

from normcompress.files import FileError, MissingFileError, atomic_write_json, read_regular
from normcompress.text import printable

STATE_FILE = ".app-state.json"
MAX_STATE_BYTES = 256 * 1024
MAX_TEXT = 1000  # characters of one saved text value
MAX_LIST = 100  # items of one saved list (the overlaid runs)
VERSION = 1

# Each section's keys and the JSON type each holds: "text", "text?" (text or null), "number", "flag", or
# "texts" (a list of text).
# A section named with "*" takes any key of that type (the form's fields, which grow with the form).
SCHEMA: dict[str, dict[str, str]] = {
    "form": {"*": "text"},
    "chart": {
        "metric": "text",
        "smoothing": "number",
        "log": "flag",
        "x_axis": "text",
        "zoom": "text",
        "group_by": "text?",  # null: not grouped
        "band": "text",
        "panels": "number",
    },
    "runs": {"sort": "text", "descending": "flag", "overlays": "texts"},
}


def state_path(store_root: Path) -> Path:
    return store_root / STATE_FILE


def _text_ok(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT and printable(value, keep_newlines=False) == value


def _fits(kind: str, value: object) -> bool:
    match kind:
        case "text":
            return _text_ok(value)
        case "text?":
            return value is None or _text_ok(value)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e9
        case "flag":
            return isinstance(value, bool)
        case "texts":
            return isinstance(value, list) and len(value) <= MAX_LIST and all(_text_ok(v) for v in value)
    return False


KIND_WORDS = {
    "text": "text without control characters",
    "text?": "text without control characters, or null",
    "number": "a number",
    "flag": "true or false",
    "texts": f"a list of at most {MAX_LIST} texts",
}


def checked(state: dict) -> tuple[dict[str, dict], list[str]]:
    """The state's sections with only the values of the schema's types, and a phrase for each dropped one."""
    sections: dict[str, dict] = {}
    dropped: list[str] = []
    for name, keys in SCHEMA.items():
        section = state.get(name, {})
        if not isinstance(section, dict):
            dropped.append(f"{name} (not an object)")
            section = {}
        kept = {}
        for key, value in section.items():
            kind = keys.get(key, keys.get("*"))
            if kind is None:
                continue  # a key this version does not read
            if _fits(kind, value):
                kept[key] = value
            else:
                shown = printable(str(key), keep_newlines=False)[:40]
                dropped.append(f"{name}.{shown} (not {KIND_WORDS[kind]})")
        sections[name] = kept
    return sections, dropped


def load_state(path: Path) -> tuple[dict[str, dict], str | None]:
    """The saved state, section by section ({} each when there is none), and one line saying what was
    ignored or dropped, or None."""
    empty: dict[str, dict] = {name: {} for name in SCHEMA}
    try:
        data = read_regular(path, MAX_STATE_BYTES, follow_symlinks=False, what=path.name)
    except MissingFileError:
        return empty, None
    except FileError as exc:
        return empty, f"the app's saved state was ignored: {exc}"
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return empty, f"the app's saved state was ignored: {path.name} is not valid JSON"
    if not isinstance(state, dict) or state.get("version") != VERSION:
        return empty, f"the app's saved state was ignored: {path.name} is not a state this app wrote"
    sections, dropped = checked(state)
    problem = None
    if dropped:
        more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
        problem = f"the app's saved state: dropped {', '.join(dropped[:5])}{more}"
    return sections, problem


def save_state(path: Path, state: dict) -> str | None:
    """Write the state; a reason (one line) when it could not be written. Nothing half-written is left."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"version": VERSION, **state})
    except (OSError, FileError, ValueError) as exc:
        return printable(f"cannot save the app's state: {exc}", keep_newlines=False)
    return None
