"""Copy the app's 160x48 snapshot (tests/__snapshots__) to docs/images/app.svg, the README's picture.

Run after `pytest tests/test_tui_snapshots.py --snapshot-update`; tests/test_docs.py fails until the
copy matches, so the picture never shows an old screen.
"""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests/__snapshots__/test_tui_snapshots/test_main_screen_after_a_run_160x48.svg"

if __name__ == "__main__":
    target = ROOT / "docs/images/app.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SNAPSHOT, target)
    print(f"{SNAPSHOT.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
