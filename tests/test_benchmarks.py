"""The benchmarks still run against today's engine and app: nothing in the test suite calls them, so a
renamed attribute broke tui_overhead.py (it imported TRAINING_ENV from the app, read app.training)
without a test failing."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_every_benchmark_loads(path):
    """Its imports resolve (a module loaded under its own name runs everything above its main)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # a benchmark may import another (the original pipeline)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    assert callable(getattr(module, "main", None)) or path.stem == "original_pipeline"


@pytest.mark.slow
def test_the_app_overhead_benchmark_measures_the_app_and_the_engine():
    """One short round: the headless run and the app's, each in a fresh process, both measured."""
    script = Path(__file__).parent.parent / "benchmarks" / "tui_overhead.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--epochs", "2"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "app, child process: overhead median" in done.stdout and "UI CPU while training" in done.stdout
