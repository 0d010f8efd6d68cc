"""The README and the docs cannot drift from the code: their runnable examples run, their links and
pages exist, and the README's picture is the current snapshot of the app."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_MARK = "<!-- run -->"
FENCE = re.compile(r"```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def runnable_blocks(path: Path) -> list[str]:
    """The shell blocks marked `<!-- run -->` on the line before their fence, in page order."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() == RUN_MARK:
            assert match["lang"] == "sh", f"{path.name}: a runnable block must be sh"
            blocks.append(match["body"])
    return blocks


def pages_with_examples() -> list[Path]:
    return [p for p in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))] if runnable_blocks(p)]


def test_the_readme_reads_in_two_minutes():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_links_only_to_files_that_exist():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    orphans = [p.name for p in DOCS.glob("*.md") if f": {p.name}" not in nav]
    assert not orphans, f"pages missing from mkdocs.yml's nav: {orphans}"


def test_the_readme_picture_is_the_current_snapshot_of_the_app():
    """scripts/readme_screenshot.py copies it; a snapshot update without the copy fails here."""
    snapshot = ROOT / "tests/__snapshots__/test_tui_snapshots/test_main_screen_after_a_run_160x48.svg"
    assert (DOCS / "images/app.svg").read_bytes() == snapshot.read_bytes()


def test_the_readme_tour_is_marked_runnable():
    """The tour's training and study commands are among the examples run below (a lost mark would
    silently stop testing them)."""
    commands = "\n".join(runnable_blocks(ROOT / "README.md"))
    assert "normcompress train" in commands and "normcompress study" in commands


@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda p: p.name)
def test_docs_examples_run_as_written(page, tmp_path):
    """Each page's examples run in order in an empty folder, as a reader would paste them, with the
    installed commands on PATH; every one exits 0 without a traceback."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "100",
        "NO_COLOR": "1",
    }
    env.pop("NORMCOMPRESS_RUNS_DIR", None)
    for block in runnable_blocks(page):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{page.name}:\n{block}\n{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
    assert (tmp_path / "runs").is_dir()
