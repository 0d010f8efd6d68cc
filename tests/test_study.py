import csv
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from normcompress.comparison import mean_std_text
from normcompress.errors import UsageError
from normcompress.files import atomic_write_json
from normcompress.metrics import evaluate
from normcompress.reconstruct import reconstruct_file, reconstruct_tensor
from normcompress.report import write_report
from normcompress.runs import RunStore
from normcompress.study import StudyConfig, run_study
from normcompress.train import EpochEnd, TrainConfig, train

REPORT_FILES = {
    "report.md",
    "report.html",
    "curves.png",
    "reconstructions.png",
    "errors.png",
    "metrics.csv",
    "metrics.json",
}


def tiny_study(**overrides):
    values = {
        "norms": ["L2", "0.5*L1+0.5*L2"],
        "seeds": 2,
        "epochs": 2,
        "dataset": "synthetic",
        "limit": 128,
        "devices": ["cpu"],
    }
    return StudyConfig.of_norms(**{**values, **overrides})


def test_study_trains_every_norm_and_seed_and_writes_the_report(tmp_path):
    store = RunStore(tmp_path / "runs")
    progress = []
    runs = run_study(tiny_study(limit=320), store, progress.append)  # 320 images: enough for a 256-value PCA
    assert [(r.train_config().norm, r.train_config().seed) for r in runs] == [
        ("L2", 0),
        ("L2", 1),
        ("0.5*L1+0.5*L2", 0),
        ("0.5*L1+0.5*L2", 1),
    ]
    assert progress[-1].done == progress[-1].total == 4
    files, _ = write_report(runs, tmp_path / "report", store=store)
    assert {f.name for f in files} == REPORT_FILES and all(f.stat().st_size > 100 for f in files)
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and 'src="curves.png"' not in html
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| L2 |" in markdown and "±" in markdown and "Welch's t, 2 vs 2 seeds" in markdown
    assert "| PCA (256 values), reference |" in markdown
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(data["summary"]["table"]) == {"L2", "0.5*L1+0.5*L2"}
    assert len(data["runs"]) == 4 and len(data["images"]["random"]) == 4 and len(data["images"]["hardest"]) == 4
    assert set(data["images"]["random"]).isdisjoint(data["images"]["hardest"])
    rows = (tmp_path / "report" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("run,norm,seed")


def test_a_second_study_reuses_completed_runs(tmp_path):
    store = RunStore(tmp_path)
    trained = []
    first = run_study(tiny_study(), store, trained.append)
    # Each finished run is named, so that the app can put it on its chart as it finishes.
    assert [p.run_id for p in trained if p.state == "finished"] == [r.id for r in first]
    older = json.loads((first[0].path / "config.json").read_text())
    atomic_write_json(first[0].path / "config.json", {**older, "channels_last": False})  # before the CPU default
    progress = []
    again = run_study(tiny_study(devices=["auto"]), store, progress.append)  # the device does not matter
    assert [r.id for r in again] == [r.id for r in first] and len(store.runs()) == 4
    assert [p.state for p in progress] == ["reused"] * 4 and [p.run_id for p in progress] == [r.id for r in first]
    more = run_study(tiny_study(seeds=3), store)  # one more seed trains only the two new runs
    assert len(more) == 6 and len(store.runs()) == 6


@pytest.mark.parametrize("change", [{"epochs": 1}, {"lr": 2e-3}, {"batch_size": 64}, {"limit": 96}])
def test_a_study_never_reuses_a_run_that_computed_something_else(tmp_path, change):
    store = RunStore(tmp_path)
    first = run_study(tiny_study(norms=["L2"], seeds=1), store)
    progress = []
    other = run_study(tiny_study(norms=["L2"], seeds=1, **change), store, progress.append)
    assert [p.state for p in progress] == ["training", "finished"] and other[0].id != first[0].id
    key, value = next(iter(change.items()))
    assert getattr(other[0].train_config(), key) == value


def test_an_interrupted_study_resumes_its_run(tmp_path):
    store = RunStore(tmp_path)
    cancel = threading.Event()
    epochs_seen = []

    def stop_in_the_second_run(event):
        if isinstance(event, EpochEnd):
            epochs_seen.append(event.epoch)
            if len(epochs_seen) == 3:  # the second run's first epoch
                cancel.set()

    partial = run_study(tiny_study(), store, on_event=stop_in_the_second_run, cancel=cancel)
    assert len(partial) == 1
    interrupted = [r for r in store.runs() if r.info().status == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].info().epochs_done == 1
    states = []
    runs = run_study(tiny_study(), store, lambda p: states.append(p.state))
    assert len(runs) == 4 and len(store.runs()) == 4 and interrupted[0].id in [r.id for r in runs]
    assert states.count("resuming") == 1 and states.count("reused") == 1


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"norms": ["L3"]}, "unknown norm"),
        ({"norms": []}, "at least one"),
        ({"norms": ["L1", "l1"]}, "twice"),
        ({"seeds": 0}, "seeds"),
        ({"epochs": 0}, "epochs"),
        ({"dataset": "mnist"}, "unknown dataset"),
    ],
)
def test_bad_study_configs(tmp_path, overrides, fragment):
    with pytest.raises(UsageError, match=fragment):
        run_study(tiny_study(**overrides), RunStore(tmp_path))


def test_mean_and_std_are_rounded_to_the_spread():
    assert mean_std_text(19.2149, 0.2749) == "19.21 ± 0.27"
    assert mean_std_text(0.012013, 0.0007495) == "0.01201 ± 0.00075"
    assert mean_std_text(11.970013, 1.7e-05) == "11.970 ± <0.001"  # a spread below the shown digits
    assert mean_std_text(0.5, 0.0) == "0.5 ± 0"
    assert mean_std_text(19.2149, None) == "19.21 ± —"  # one seed: no spread to show


def test_study_cli(run_cli, runs_dir, tmp_path):
    code, out, err = run_cli(
        "study",
        "--norms",
        "L2,Linf-image",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--dataset",
        "synthetic",
        "--limit",
        "128",
        "--devices",
        "cpu",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert "Linf-image" in out and "best" in out and str(tmp_path / "r" / "report.html") in out
    assert "finished  L2 seed 0" in err
    assert {p.name for p in (tmp_path / "r").iterdir()} == REPORT_FILES
    code, _, err = run_cli("study", "--norms", "L2,L3", "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown norm 'L3'" in err
    code, _, err = run_cli("study", "--metric", "loss", "--out", str(tmp_path / "x"))
    assert code == 2 and "validation metric" in err


class Identity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def test_tiling_stitches_odd_sizes_back_exactly():
    image = (torch.rand(3, 45, 71) * 255).to(torch.uint8)
    assert torch.equal(reconstruct_tensor(Identity(), image), image)


@pytest.mark.parametrize("mode, size", [("L", (50, 37)), ("RGBA", (33, 65)), ("RGB", (17, 23)), ("P", (40, 40))])
def test_reconstruct_keeps_mode_and_size(tmp_path, mode, size):
    rng = np.random.default_rng(0)
    source = tmp_path / f"in-{mode}.png"
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode).save(source)
    result = reconstruct_file(Identity(), source, tmp_path / f"{source.stem}.recon.png")
    with Image.open(result.output) as out:
        assert out.size == size
        assert out.mode == {"L": "L", "RGBA": "RGBA"}.get(mode, "RGB")
        if mode == "RGBA":
            assert np.array_equal(np.asarray(out)[..., 3], np.asarray(Image.open(source))[..., 3])
    assert result.max_error == 0 and result.psnr == 100.0  # the identity model reconstructs exactly


def test_reconstruct_cli(run_cli, runs_dir, tmp_path):
    code, out, _ = run_cli("train", "--dataset", "synthetic", "--limit", "128", "--epochs", "1", "-q")
    run_id = out.split()[0]
    Image.fromarray(np.zeros((40, 70), dtype=np.uint8), "L").save(tmp_path / "gray.png")
    (tmp_path / "bad.png").write_text("not an image")
    code, out, err = run_cli(
        "reconstruct", run_id, str(tmp_path / "gray.png"), str(tmp_path / "bad.png"), "-o", str(tmp_path / "out")
    )
    assert code == 1 and "gray.png  70x40  L" in out and "skipped: cannot read" in err
    assert "1 of 2 images could not be read" in err and (tmp_path / "out" / "gray.recon.png").exists()
    code, _, err = run_cli("reconstruct", run_id, str(tmp_path / "gray.png"), "-o", "/proc/no/such/dir")
    assert code == 1 and "cannot write to /proc/no/such/dir" in err


def test_ms_ssim_where_the_images_are_large_enough():
    model = Identity()
    large = evaluate(model, (torch.rand(2, 3, 176, 176) * 255).to(torch.uint8))
    small = evaluate(model, (torch.rand(2, 3, 32, 32) * 255).to(torch.uint8))
    assert large["ms_ssim"] == pytest.approx(1.0) and "ms_ssim" not in small


def test_a_study_at_a_rate_lambda_trains_codecs_and_is_told_apart_from_one_without(tmp_path):
    """One study per model and λ: the runs carry λ (a learned prior in their checkpoints), and a study
    without λ does not take them for its own."""
    store = RunStore(tmp_path)
    base = {"norms": ["L2"], "seeds": 1, "epochs": 1, "dataset": "synthetic", "limit": 64, "devices": ["cpu"]}
    (coded,) = run_study(StudyConfig.of_norms(**base, rate_lambda=0.01), store)
    assert coded.train_config().rate_lambda == 0.01 and "prior" in coded.load_checkpoint()
    (plain,) = run_study(StudyConfig.of_norms(**base), store)
    assert plain.id != coded.id and plain.train_config().rate_lambda == 0.0
    (again,) = run_study(StudyConfig.of_norms(**base, rate_lambda=0.01), store)
    assert again.id == coded.id and len(store.runs()) == 2


def test_a_grid_studys_report_keeps_each_setting_apart_and_never_pools_it_as_seeds(tmp_path):
    """Two learning rates x two seeds of one norm: four runs, two groups of two seeds each (pooled by norm
    they had read as four seeds of L2, with the learning rate's effect as seed noise)."""
    from normcompress.report import write_report

    store = RunStore(tmp_path / "runs")
    runs = [
        train(TrainConfig(norm="L2", dataset="synthetic", limit=128, epochs=1, device="cpu", lr=lr, seed=seed), store)
        for lr in (1e-3, 3e-3)
        for seed in (0, 1)
    ]
    _, summary = write_report(runs, tmp_path / "report", store=store)
    assert list(summary["table"]) == ["L2 lr=0.001", "L2 lr=0.003"]
    assert all(len(stats["psnr"]["values"]) == 2 for stats in summary["table"].values())
    report = (tmp_path / "report" / "report.md").read_text()
    assert "2 groups (norm x lr) x 2 seeds" in report and "differ in more than norm and seed" not in report
    rows = list(csv.DictReader((tmp_path / "report" / "metrics.csv").open()))
    assert sorted({r["group"] for r in rows}) == ["L2 lr=0.001", "L2 lr=0.003"]


def test_a_grid_may_give_the_base_what_it_needs():
    """The hyperprior needs a rate λ: given only by the grid, the study is valid (it was refused for the
    base's λ of 0, which no run of the study would have); with no λ anywhere it is refused."""
    from normcompress.errors import UsageError
    from normcompress.study_config import StudyConfig

    base = TrainConfig(model="hyperprior", dataset="sample", limit=800)
    study = StudyConfig(base, {"norm": ["L2"], "rate_lambda": [0.005, 0.05]}, seeds=1).validated()
    assert [c.rate_lambda for c in study.run_configs()] == [0.005, 0.05]
    with pytest.raises(UsageError, match="give --rate-lambda > 0"):
        StudyConfig(base, {"norm": ["L2"]}, seeds=1).validated()


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("lr=abc", "--grid lr: 'abc' is not a number"),
        ("epochs=2.5", "--grid epochs: '2.5' is not a whole number"),
        ("limit=many", "--grid limit: 'many' is not a whole number (or none)"),
    ],
)
def test_a_grid_value_of_the_wrong_kind_is_refused_in_words(item, words):
    from normcompress.study_config import parse_grid

    with pytest.raises(UsageError) as caught:
        parse_grid([item])
    assert str(caught.value) == words
    assert parse_grid(["limit=none,500"]) == {"limit": [None, 500]}
