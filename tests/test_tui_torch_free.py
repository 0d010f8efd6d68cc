"""The app's own process never loads torch, on every path: a study (its runs train in child processes)
and the exports of the chart and the runs. torch in the app was 0.5 GiB and a garbage collector walking
160,000 of its objects on the UI thread."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_study_and_exports_leave_the_app_process_without_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.app_without_torch", str(tmp_path / "runs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "runs: 2 exports: 3" in result.stdout, result.stdout + result.stderr[-2000:]
    heavy = result.stdout.split("heavy:")[1].split()
    assert "torch" not in heavy[0].split(","), result.stdout
