"""Comparisons worth trusting: the PCA floor, the model above it, the recipe, honest statistics, the
sharpness metric, the smooth-max norm and figures fit for a paper."""

import json
import math
from dataclasses import asdict

import matplotlib.pyplot as plt
import pytest
import torch

from normcompress.baseline import pca_baseline
from normcompress.comparison import claim_lines, config_differences, study_table, summarize_runs
from normcompress.config import TrainConfig
from normcompress.data import ImageData, load_sample
from normcompress.figures import save_figure
from normcompress.files import atomic_write_json
from normcompress.losses import parse_norm
from normcompress.metrics import gradient_magnitude, per_image_errors, summarize
from normcompress.model import build_model
from normcompress.pca import PcaModel, fit_pca
from normcompress.recipe import build_optimizer
from normcompress.report import _grid_figure
from normcompress.runs import RunStore, Summary, load_model
from normcompress.stats import across_seeds, paired_images
from normcompress.study import StudyConfig, run_study
from normcompress.train import train


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def hand_pca_psnr(train: torch.Tensor, val: torch.Tensor, components: int) -> float:
    """PCA by a full SVD of the centred training matrix, reconstructions clamped to [0, 1] as a model's are."""
    x = train.flatten(1).double() / 255
    mean = x.mean(0)
    basis = torch.linalg.svd(x - mean, full_matrices=False).Vh[:components]
    v = val.flatten(1).double() / 255
    recon = ((v - mean) @ basis.T @ basis + mean).clamp(0, 1)
    return 10 * math.log10(1 / (recon - v).pow(2).mean().item())


def test_the_pca_baseline_matches_a_direct_svd_and_is_cached_in_the_store(tmp_path, sample):
    data = ImageData(sample.train[:800], sample.val[:200], "sample")
    store = RunStore(tmp_path)
    baseline = pca_baseline(store, data, 48)
    assert baseline.metrics["psnr"] == pytest.approx(hand_pca_psnr(data.train, data.val, 48), abs=0.01)
    (cached,) = (tmp_path / ".baselines").iterdir()
    assert store.runs() == []  # the cache is not a run
    stored = json.loads(cached.read_text())
    atomic_write_json(cached, {**stored, "metrics": {**stored["metrics"], "psnr": 99.5}})
    assert pca_baseline(store, data, 48).metrics["psnr"] == 99.5  # read back, not fitted again
    cached.write_text('{"metrics": "damaged"')
    assert pca_baseline(store, data, 48).metrics["psnr"] == pytest.approx(baseline.metrics["psnr"])
    assert json.loads(cached.read_text())["metrics"]["psnr"] == pytest.approx(baseline.metrics["psnr"])  # replaced
    other = ImageData(sample.train[800:1600], sample.val[:200], "sample")
    assert pca_baseline(store, other, 48).metrics["psnr"] != pytest.approx(baseline.metrics["psnr"], abs=1e-6)


def test_pca_of_tiles_spans_the_svd_subspace(sample):
    train = sample.train[:600]
    pca = fit_pca(train, 32)
    x = train.flatten(1).double() / 255
    exact = torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh[:32]
    ours = pca.basis.double()
    assert torch.allclose(ours @ ours.T, torch.eye(32, dtype=torch.float64), atol=1e-4)  # orthonormal
    assert (ours.T @ ours - exact.T @ exact).norm() / math.sqrt(32) < 0.05  # the same subspace
    big = torch.cat([torch.cat([train[:4], train[4:8]], 3), torch.cat([train[8:12], train[12:16]], 3)], 2)
    tiles = PcaModel(pca)(big.float() / 255)  # a 64x64 image is four tiles, each coded on its own
    alone = PcaModel(pca)(train[:4].float() / 255)
    assert torch.allclose(tiles[:, :, :32, :32], alone, atol=1e-5)


@pytest.mark.slow
def test_pca_refine_beats_pca_where_the_seed_model_does_not(tmp_path):
    """The issue's goal at a test's budget: 2,500 real images, 3 epochs (measured: +0.15 dB over PCA, the seed
    model 10 dB below it; the full goal, 26.0 dB in 10 epochs on all 5,170, is measured in the README)."""
    store = RunStore(tmp_path)
    psnr = {}
    for model in ("pca-refine", "seed"):
        run = train(TrainConfig(model=model, dataset="sample", limit=2500, epochs=3, device="cpu"), store)
        psnr[model] = run.info().metrics["psnr"]
    data = load_sample()
    data.train = data.train[:2500]
    floor = pca_baseline(store, data, 256).metrics["psnr"]
    assert psnr["pca-refine"] > floor + 0.05 > psnr["seed"]


def test_a_checkpoint_of_pca_refine_holds_its_pca(tmp_path):
    run = train(
        TrainConfig(model="pca-refine", dataset="synthetic", limit=256, epochs=1, device="cpu"), RunStore(tmp_path)
    )
    model = load_model(run)
    assert model.encoder.mean.abs().sum() > 0  # the fitted mean, not the zeros a fresh model starts with
    images = load_sample().val[:64]
    assert summarize(per_image_errors(model, images))["psnr"] > 10


def one_cycle(step: int, peak: float, total: int) -> float:
    """One cycle by hand: from peak/25 up to the peak over the first 30% of the steps, then down along a
    cosine to peak/25/1e4."""
    warm_end, start, end = 0.3 * total - 1, peak / 25, peak / 25 / 1e4
    if step <= warm_end:
        return peak + (start - peak) / 2 * (math.cos(math.pi * step / warm_end) + 1)
    return end + (peak - end) / 2 * (math.cos(math.pi * (step - warm_end) / (total - 1 - warm_end)) + 1)


def test_the_schedule_sets_the_learning_rate_as_specified(tmp_path):
    """A trained run records one cycle's learning rate at each epoch's end; constant: the peak throughout."""
    peak, steps_per_epoch, epochs = 2e-3, 4, 10
    config = TrainConfig(dataset="synthetic", limit=256, batch_size=64, epochs=epochs, lr=peak, device="cpu")
    records = train(config, RunStore(tmp_path / "one")).metrics()
    for epoch in (1, 2, 5, 9):
        assert records[epoch - 1]["lr"] == pytest.approx(one_cycle(epoch * steps_per_epoch, peak, 40), rel=1e-6)
    constant = train(TrainConfig(**{**asdict(config), "schedule": "constant", "epochs": 2}), RunStore(tmp_path / "c"))
    assert [r["lr"] for r in constant.metrics()] == [peak, peak]


def test_a_model_with_its_own_rates_follows_the_schedule_in_each_group():
    """pca-refine's PCA bases learn at a hundredth of the rate: each parameter group follows one cycle from
    its own peak (the scheduler stepped as training steps it, without the training)."""
    peak, total = 2e-3, 40
    config = TrainConfig(model="pca-refine", lr=peak, epochs=10)
    optimizer, scheduler = build_optimizer(config, build_model("pca-refine"), None, steps_per_epoch=4)
    for step in range(1, total):
        optimizer.step()
        scheduler.step()
        if step in (4, 8, 20, 36):
            rates = [group["lr"] for group in optimizer.param_groups]
            assert rates == pytest.approx([one_cycle(step, peak / 100, total), one_cycle(step, peak, total)], rel=1e-6)


def test_optimizer_choice_and_the_models_own_rates():
    config = TrainConfig(lr=1e-3, optimizer="adamw")
    optimizer, _scheduler = build_optimizer(config, build_model("pca-refine"), None, steps_per_epoch=10)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == 0.01
    assert [g["max_lr"] for g in optimizer.param_groups] == pytest.approx([1e-5, 1e-3])  # PCA bases slower
    adam, none = build_optimizer(TrainConfig(optimizer="adam", schedule="constant"), build_model("seed"), None, 10)
    assert type(adam) is torch.optim.Adam and none is None


def test_configs_written_before_the_recipe_fields_read_as_the_recipe_they_used():
    old = {"norm": "L2", "epochs": 10, "batch_size": 128, "lr": 1e-3, "dataset": "sample", "seed": 0}
    config = TrainConfig.from_json(old)
    assert (config.schedule, config.optimizer) == ("constant", "adam")
    assert TrainConfig().schedule == "onecycle"  # today's default, for new runs only


def test_welch_and_wilcoxon_against_textbook_values():
    # t = -5 with 8 degrees of freedom: two-sided p = 0.00105
    assert across_seeds([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p == pytest.approx(0.001053, rel=1e-3)
    assert across_seeds([1.0], [2.0, 3.0]).p is None  # one seed: no test
    # all 10 differences positive and distinct: exact p = 2 / 2**10
    result = paired_images([float(i) for i in range(11, 21)], [0.0] * 10)
    assert result.p == pytest.approx(2 / 1024) and result.significant
    assert paired_images([1.0, 2.0], [1.0, 2.0]).p == 1.0


def test_a_one_seed_study_shows_no_spread_and_claims_nothing(tmp_path):
    runs = run_study(
        StudyConfig.of_norms(norms=["L2", "L1"], seeds=1, epochs=1, dataset="synthetic", limit=128, devices=["cpu"]),
        RunStore(tmp_path),
    )
    summary = summarize_runs(runs)
    _, rows = study_table(summary)
    assert all("± —" in cell for row in rows for cell in row[1:] if cell != "-")
    lines = claim_lines(summary)
    assert lines[0].startswith("No claims across seeds: fewer than 2 seeds")
    text = "\n".join(lines)
    assert "vs L1: seeds —" in text or "vs L2: seeds —" in text
    assert "seeds p" not in text


@pytest.mark.slow
def test_a_two_seed_study_flags_batch_linf_as_worse(tmp_path, sample):
    runs = run_study(
        StudyConfig.of_norms(
            norms=["L2", "Linf"], seeds=2, epochs=4, dataset="sample", limit=2048, devices=["cpu"], model="seed"
        ),
        RunStore(tmp_path),
    )
    errors = {run.id: per_image_errors(load_model(run), sample.val[:300]) for run in runs}
    summary = summarize_runs(runs, errors)
    psnr = summary["winners"]["psnr"]
    assert psnr["norm"] == "L2" and psnr["significant_against"] == ["Linf"]
    assert psnr["against"]["Linf"]["seeds"]["p"] < 0.05
    assert psnr["against"]["Linf"]["images"]["p"] < 0.05 and psnr["against"]["Linf"]["better_on"] > 0.5
    (line,) = [line for line in claim_lines(summary) if line.startswith("val PSNR (dB): best **L2**")]
    assert "vs Linf: seeds p = " in line and "*, images p " in line


def test_compare_names_every_differing_config_key(tmp_path, run_cli, runs_dir):
    store = RunStore(runs_dir)
    first = train(TrainConfig(norm="L2", dataset="synthetic", limit=300, epochs=1, device="cpu"), store)
    second = train(TrainConfig(norm="L1", dataset="synthetic", limit=300, epochs=2, lr=1e-3, device="cpu"), store)
    assert config_differences([first, second]) == {"epochs": ["1", "2"], "lr": ["0.003", "0.001"]}
    code, out, err = run_cli("runs", "compare", first.id, second.id, "--paired")
    assert code == 0, err
    assert "warning: the runs differ in epochs (1, 2)" in err and "lr (0.003, 0.001)" in err
    assert "epochs trained" not in err  # each trained what it asked: said once, not twice
    cut_short = store.create(
        TrainConfig(norm="L1", dataset="synthetic", limit=300, epochs=2, lr=1e-3).validated(),
        Summary.from_json({"status": "interrupted", "epochs_done": 1, "data": "synthetic"}),
    )
    assert config_differences([second, cut_short]) == {"epochs trained": ["2", "1"]}  # same asked, not trained
    assert config_differences([]) == {}  # runs compare of damaged runs only: no run left to differ
    assert "PCA (256 values)" in out and "per-image PSNR against" in out and "Wilcoxon" in out
    same = train(TrainConfig(norm="L1", dataset="synthetic", limit=300, epochs=1, device="cpu", seed=3), store)
    code, out, err = run_cli("runs", "compare", first.id, same.id, "--no-baseline", "--paired")
    assert code == 0 and "warning" not in err
    assert "per-image PSNR against" in out and "PCA" not in out  # --paired does not bring the baseline back


def test_gradient_magnitude_by_hand_and_sharpness_ranks_a_blur_below_the_original(sample):
    image = torch.tensor([[0.0, 1.0], [1.0, 1.0]]).expand(1, 3, 2, 2)
    # across: |1-0| + |1-1|, down: |1-0| + |1-1|, per channel; 4 differences per channel
    assert gradient_magnitude(image).item() == pytest.approx(0.5)

    class Blur(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    class Identity(Blur):
        def forward(self, x):
            return x

    images = sample.val[:64]
    assert summarize(per_image_errors(Identity(), images))["sharpness"] == pytest.approx(1.0)
    assert summarize(per_image_errors(Blur(), images))["sharpness"] < 0.8


def test_smooth_max_by_hand_and_in_hybrids():
    output, target = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2), torch.zeros(1, 1, 1, 2)
    assert parse_norm("Linf-smooth:1")(output, target).item() == pytest.approx(math.log((1 + math.e) / 2))
    errors = torch.rand(4, 3, 8, 8)
    sharp = parse_norm("Linf-smooth:0.001")(errors, torch.zeros_like(errors))
    assert sharp.item() == pytest.approx(errors.flatten(1).amax(1).mean().item(), abs=0.01)  # t -> 0: the max
    hybrid = parse_norm("0.5*L2 + 0.5*linf-smooth:5e-2")
    assert hybrid.name == "0.5*L2+0.5*Linf-smooth:0.05" and parse_norm(hybrid.name) == hybrid


def test_a_hybrid_with_the_smooth_max_trains(tmp_path):
    run = train(
        TrainConfig(norm="0.5*L2+0.5*Linf-smooth:0.05", dataset="synthetic", limit=128, epochs=1, device="cpu"),
        RunStore(tmp_path),
    )
    assert run.info().status == "completed" and math.isfinite(run.info().metrics["loss"])


def test_error_maps_share_one_scale_in_levels_with_a_colourbar(sample):
    target = sample.val[:3].float() / 255
    outputs = {"L2": target * 0.9, "L1": (target + 0.3).clamp(0, 1)}
    errors = {norm: {"mse": torch.full((3,), 0.01), "maxabs": torch.full((3,), 0.1)} for norm in outputs}
    figure = _grid_figure(target, outputs, [0, 1, 2], errors, "errors")
    images = [a.images[0] for a in figure.axes if a.images and a.images[0].get_cmap().name == "magma"]
    assert len(images) == 6 and {im.get_clim() for im in images} == {images[0].get_clim()}  # one scale
    low, high = images[0].get_clim()
    assert low == 0 and high == pytest.approx(76.5, abs=0.5)  # 0.3 of 255 levels: L1's error, the largest
    (_bar,) = [a for a in figure.axes if "levels of 255" in a.get_ylabel()]
    plt.close(figure)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_figures_in_every_format(tmp_path, fmt, magic):
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3], [3, 1, 2])
    path = save_figure(figure, tmp_path / "curves", fmt, dpi=72)
    assert path == tmp_path / f"curves.{fmt}" and path.read_bytes().startswith(magic)


def test_a_pca_of_the_same_images_is_fitted_once_and_each_caller_gets_its_own(sample, monkeypatch):
    """A study's runs and their baseline fit the PCA of one dataset once per process; other images, or
    another number of components, are fitted anew, and changing one returned basis changes no other."""
    from normcompress import pca as pca_module

    fits = []
    real = pca_module._fit_pca
    monkeypatch.setattr(pca_module, "_fit_pca", lambda *args: fits.append(args[1:]) or real(*args))
    monkeypatch.setattr(pca_module, "_kept_fits", type(pca_module._kept_fits)())
    train = sample.train[:300].clone()
    first = fit_pca(train, 16)
    first.basis.zero_()
    again = fit_pca(train.clone(), 16)
    assert len(fits) == 1 and again.basis.abs().sum() > 0
    assert torch.allclose(again.basis.norm(dim=1), torch.ones(16), atol=1e-4)
    fit_pca(train, 8)
    train[0, 0, 0, 0] ^= 1  # one pixel's lowest bit
    fit_pca(train, 16)
    assert len(fits) == 3
