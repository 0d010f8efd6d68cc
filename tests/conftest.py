import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from normcompress import cli
from normcompress.events import EpochEnd
from normcompress.runs import RunStore
from normcompress.train import TrainConfig, train

from .hostile import TINY

SHARED_SUBSET = Path(__file__).resolve().parents[1] / "../shared/datasets/cifar10-subset"

torch.set_num_threads(2)


@pytest.fixture
def in_process_probes(monkeypatch):
    """The app's answers from torch (the device list, a run's PCA baseline) from this process, where torch
    is loaded anyway: each app would otherwise start a child to import torch again (1.6 s of CPU each, and
    a test's teardown waited for the baseline child). The same answers, through the same JSON. The child's
    own path is tested where it is the subject (test_the_app_never_loads_torch, the probe tests)."""
    import json

    from normcompress import probe
    from normcompress.errors import NormcompressError
    from normcompress.text import one_line

    def ask_here(*args: str):
        try:
            return json.loads(json.dumps(probe._answer(list(args))))
        except NormcompressError as exc:
            raise probe.ProbeError(one_line(exc)) from None

    monkeypatch.setattr(probe, "_ask", ask_here)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    path = tmp_path / "runs"
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(path))
    return path


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run the console entry point in-process: returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["normcompress", *args])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return invoke


@pytest.fixture
def image_folder(tmp_path):
    """A folder of mixed images: RGB and gray PNG, RGBA, palette, a JPEG, an odd size, and two bad files."""
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8), mode="L").save(root / "gray.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 4), dtype=np.uint8), mode="RGBA").save(root / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).convert("P").save(root / "sub/palette.png")
    Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(root / "sub/photo.jpg")
    Image.fromarray(rng.integers(0, 255, (17, 23, 3), dtype=np.uint8)).save(root / "sub/odd.png")
    (root / "notes.png").write_text("this is text, not a PNG")
    (root / "corrupt.png").write_bytes((root / "rgb.png").read_bytes()[:60])
    return root


@pytest.fixture(scope="session")
def template_store(tmp_path_factory):
    """Two small runs, trained once for every test that reads a store (each copies it before harming it): one interrupted after its first epoch (so it can be resumed), one completed."""
    root = tmp_path_factory.mktemp("template") / "store"
    store = RunStore(root)
    cancel = threading.Event()
    train(TrainConfig(**TINY, epochs=2), store, lambda e: isinstance(e, EpochEnd) and cancel.set(), cancel)
    train(TrainConfig(**TINY, epochs=1), store)
    return root


@pytest.fixture
def store_copy(template_store, tmp_path, monkeypatch):
    """A copy of the template store (to harm at will), as the commands' default store."""
    root = tmp_path / "store"
    shutil.copytree(template_store, root)
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(root))
    return RunStore(root)


@pytest.fixture
def work(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "image.png")
    return tmp_path
