"""Comparing norms: per-norm statistics over seeds, significance tests, the PCA reference, and the
sentences a report may say. Shared by `study`, the report and `runs compare`.

No claim without the data to back it: spread needs two seeds (one seed prints "—"), a difference across
seeds needs Welch's t-test below ALPHA, and a per-image difference is tested on the same images
(stats.py says which test answers which question).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict
from typing import TYPE_CHECKING

from .baseline import Baseline
from .losses import parse_norm
from .metrics import METRICS, RATE_METRICS, TABLE_METRICS
from .runs import Run
from .stats import ALPHA, NO_SPREAD, TestResult, across_seeds, p_text, paired_images, spread

if TYPE_CHECKING:  # torch for the per-image series only: a table of final metrics needs none (runs compare)
    import torch

# The per-image values (from metrics.per_image_errors) whose mean over images is each table metric, or
# near it; maxabs_worst is one image's value, so it has no paired test.
PER_IMAGE = {
    "psnr": "psnr",
    "mse": "mse",
    "mae": "mae",
    "ssim": "ssim",
    "maxabs_mean": "maxabs",
    "sharpness": "gradient_deficit",
    "bpp": "bpp",
}
SMOOTH_MAX_GOAL = (0.20, 0.5)  # worst max-abs error at least 20% below L2's, at most 0.5 dB of PSNR lost


def per_image_values(errors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-image series the paired tests compare, from one run's per_image_errors."""
    import torch

    mse = errors["mse"].double()
    return {
        "psnr": 10 * torch.log10(1 / mse.clamp_min(1e-10)),
        "mse": mse,
        "mae": errors["mae"].double(),
        "ssim": errors["ssim"].double(),
        "maxabs": errors["maxabs"].double(),
        "gradient": errors["gradient"].double(),
        "gradient_deficit": (errors["gradient"] - errors["target_gradient"]).abs().double(),
        **({"bpp": errors["bpp"].double()} if "bpp" in errors else {}),
    }


# What may differ between compared runs without a warning: what is being compared, and what does not change
# what a run computes beyond float rounding (the device and memory layout; data_dir says where the data is,
# the "data" fact below says which data was used).
NOT_DIFFERENCES = ("norm", "seed", "data_dir", "dataset", "device", "channels_last", "compile")


def config_differences(runs: list[Run]) -> dict[str, list[str]]:
    """Every configuration key (and the data really used, and the epochs really trained) on which the runs
    disagree, with the values seen, in run order: what a comparison must name."""
    seen: dict[str, list[str]] = defaultdict(list)
    infos = [run.info() for run in runs]
    for info in infos:
        facts = {k: v for k, v in asdict(info.config).items() if k not in NOT_DIFFERENCES} if info.config else {}
        facts |= {"data": info.data_source, "epochs trained": info.epochs_done}
        for key, value in facts.items():
            if str(value) not in seen[key]:
                seen[key].append(str(value))
    if all(info.config and info.epochs_done == info.config.epochs for info in infos):
        seen.pop("epochs trained", None)  # each trained what it asked for: the epochs' difference says it once
    return {key: values for key, values in seen.items() if len(values) > 1}


NOT_SETTINGS = ("data", "epochs trained")  # differences that no study sets: warned about, never grouped by


def group_labels(runs: list[Run], differences: dict[str, list[str]] | None = None) -> tuple[dict[str, str], list[str]]:
    """Each run's group: its norm and every setting on which the runs differ (a study's grid: `L2
    lr=0.001`), so that runs of other settings are never pooled as if they were seeds of one norm; and
    those settings. Runs that differ only in norm and seed are grouped by norm alone. `differences`: the
    runs' config_differences, when the caller has them already."""
    differences = config_differences(runs) if differences is None else differences
    keys = [key for key in differences if key not in NOT_SETTINGS]
    labels = {}
    for run in runs:
        info = run.info()
        config = asdict(info.config) if info.config else {}
        labels[run.id] = " ".join([info.norm, *(f"{key}={config.get(key)}" for key in keys)])
    return labels, keys


def mean_std_text(mean: float, std: float | None) -> str:
    """`mean ± std` with std to two significant digits and the mean to the same decimal (at most five
    significant digits): 19.21 ± 0.27, 0.01201 ± 0.00075, 11.970 ± <0.001; `mean ± —` without a spread."""
    if std is None or not math.isfinite(std):
        return f"{mean:.4g} ± —"
    if std <= 0:
        return f"{mean:.4g} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    if mean:
        decimals = min(decimals, max(0, 4 - math.floor(math.log10(abs(mean)))))
    shown = f"{std:.{decimals}f}"
    if float(shown) == 0:
        shown = f"<{10**-decimals:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {shown}"


def _result(test: TestResult | None) -> dict | None:
    return (
        None
        if test is None
        else {"test": test.test, "p": test.p, "reason": test.reason, "significant": test.significant}
    )


def summarize_runs(
    runs: list[Run],
    per_image: dict[str, dict[str, torch.Tensor]] | None = None,
    baselines: dict[str, Baseline] | None = None,
    no_baseline: str | None = None,
    groups: dict[str, str] | None = None,
) -> dict:
    """Per norm (or group, given `groups`: run id -> label) and metric: the values over seeds, mean and std
    (None with one seed); per metric the best norm and, against each other norm, Welch's t over seeds and
    (given per-image errors by run id) the Wilcoxon test over the same images; the references (`baselines`:
    group -> the baseline of its kind), each with the groups it is the reference of, or why there is none."""
    import torch

    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    images: dict[str, dict[str, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        info = run.info()
        group = groups[run.id] if groups else info.norm  # a grid study's group: norm and settings
        for key in TABLE_METRICS + RATE_METRICS:
            if key in info.metrics:  # runs saved before a metric existed lack it (and only codecs have a rate)
                values[group][key].append(info.metrics[key])
        if per_image and run.id in per_image:
            for key, series in per_image_values(per_image[run.id]).items():
                images[group][key].append(series)
    per_norm_images = {norm: {k: torch.stack(v).mean(0) for k, v in by_key.items()} for norm, by_key in images.items()}
    table = {
        norm: {k: {"values": v, "mean": statistics.fmean(v), "std": spread(v)} for k, v in by_metric.items()}
        for norm, by_metric in values.items()
    }
    winners = {}
    for key in TABLE_METRICS + RATE_METRICS:
        having = [n for n in table if key in table[n]]
        if not having:
            continue
        metric = METRICS[key]
        best = max(having, key=lambda n: metric.score(table[n][key]["mean"]))
        against = {}
        for other in having:
            if other == best:
                continue
            seeds = across_seeds(table[best][key]["values"], table[other][key]["values"])
            paired, better_on = None, None
            series = PER_IMAGE.get(key)
            if series and best in per_norm_images and other in per_norm_images:
                a, b = per_norm_images[best][series], per_norm_images[other][series]
                paired = paired_images(a.tolist(), b.tolist())
                sign = -1 if key in ("mse", "mae", "maxabs_mean", "sharpness", "bpp") else 1  # lower is better
                better_on = ((a - b) * sign > 0).double().mean().item()
            against[other] = {"seeds": _result(seeds), "images": _result(paired), "better_on": better_on}
        significant_against = [n for n, t in against.items() if t["seeds"]["significant"]]
        winners[key] = {
            "norm": best,
            "against": against,
            "significant_against": significant_against,
            # the best in bold only where the seeds say so: significantly ahead of every other norm
            "supported": bool(against) and len(significant_against) == len(against),
        }
    seeds = min((len(v) for by_metric in values.values() for v in by_metric.values()), default=0)
    return {
        "table": table,
        "winners": winners,
        "seeds": seeds,
        "per_image": per_norm_images,
        "references": _references(baselines or {}),
        "no_baseline": no_baseline,
    }


def _references(baselines: dict[str, Baseline]) -> list[dict]:
    """One entry per distinct baseline, with the groups it is the reference of, in the groups' order."""
    references: dict[str, dict] = {}
    for group, base in baselines.items():
        entry = references.setdefault(base.label, {"label": base.label, "metrics": base.metrics, "groups": []})
        entry["groups"].append(group)
    return list(references.values())


def table_keys(summary: dict) -> tuple[str, ...]:
    """The table's metric columns: every table metric, and bits per pixel where a codec model is in it."""
    rated = [*summary["table"].values(), *(r["metrics"] for r in summary["references"])]
    return TABLE_METRICS + tuple(k for k in RATE_METRICS if any(k in m for m in rated))


def study_table(summary: dict, mark_best: bool = True, short: bool = False) -> tuple[list[str], list[list[str]]]:
    """The study's table, for the report and the CLI alike: a row per norm of mean ± std over seeds, the
    best of each column in **bold** (mark_best) where the seed-level test supports it (ahead of every other
    norm, p < 0.05 across seeds), or named in a last row, and a row per reference (PCA of each group's kind)."""
    keys = table_keys(summary)
    headers = ["norm", *(METRICS[k].column if short else METRICS[k].label for k in keys)]
    rows = []
    for norm, stats in summary["table"].items():
        cells = []
        for key in keys:
            if key not in stats:
                cells.append("-")
                continue
            text = mean_std_text(stats[key]["mean"], stats[key]["std"])
            winner = summary["winners"].get(key, {})
            best = winner.get("norm") == norm and winner.get("supported", False)
            cells.append(f"**{text}**" if mark_best and best else text)
        rows.append([norm, *cells])
    for base in summary["references"]:
        rows.append([f"{base['label']}, reference", *(METRICS[k].text(base["metrics"].get(k)) for k in keys)])
    if not mark_best:
        rows.append(["best", *(_best_cell(summary["winners"].get(k)) for k in keys)])
    return headers, rows


def _best_cell(winner: dict | None) -> str:
    """The best norm of a column, with "n.s." where the seeds do not set it apart from every other."""
    if not winner:
        return "-"
    return winner["norm"] if winner.get("supported") or not winner["against"] else f"{winner['norm']} (n.s.)"


def claim_lines(summary: dict) -> list[str]:
    """What the numbers say, sentence by sentence: the winner of each metric and how sure that is, the PCA
    floor, the original study's sharpness claim and the smooth-max goal."""
    lines = []
    if summary["seeds"] < 2:
        lines.append(f"No claims across seeds: {NO_SPREAD} (train with --seeds 2 or more).")
    tests = next((t for w in summary["winners"].values() for t in w["against"].values()), None)
    if tests:
        images = (
            (
                f"; images: {tests['images']['test']}, the same validation images under both (in brackets: "
                "the share of images where the best is better)"
            )
            if tests["images"]
            else ""
        )
        one_seed = summary["seeds"] < 2
        lines.append(
            f"Each best norm against the others, two-sided, * where p < {ALPHA:g}. seeds: "
            f"{tests['seeds']['test']}{images}."
            + (
                " With one seed a per-image test compares these two trained runs, not the two norms: it "
                "carries no star and supports no claim about a norm."
                if one_seed and tests["images"]
                else ""
            )
        )
    one_seed = summary["seeds"] < 2
    for key, winner in summary["winners"].items():
        parts = []
        for other, tests in winner["against"].items():
            text = f"vs {other}: seeds {_short(tests['seeds'])}"
            if tests["images"]:
                which = "these two runs' images" if one_seed else "images"
                text += f", {which} {_short(tests['images'], star=not one_seed)} ({tests['better_on'] * 100:.0f}%)"
            parts.append(text)
        name = f"best **{winner['norm']}**" if winner.get("supported") else f"best mean {winner['norm']}"
        if winner["against"] and not winner.get("supported"):
            name += " (not ahead of every other norm across seeds)"
        lines.append(f"{METRICS[key].label}: {name}" + (f"; {'; '.join(parts)}" if parts else ""))
    lines += _baseline_lines(summary) + _sharpness_lines(summary) + _smooth_max_lines(summary)
    return lines


def _short(result: dict, star: bool = True) -> str:
    """A test's p-value and a star when significant (and `star`); — when there is no test."""
    return "—" if result["p"] is None else p_text(result["p"]) + ("*" if star and result["significant"] else "")


def _test_text(result: dict) -> str:
    if result["p"] is None:
        return f"— ({result['reason']})"
    verdict = "significant" if result["significant"] else "not significant"
    return f"{p_text(result['p'])} ({result['test']}), {verdict}"


def _baseline_lines(summary: dict) -> list[str]:
    """Each group against the reference of its kind: PSNR above the linear floor, and for a codec the rate
    it spends against the quantised PCA's (a codec is ahead only with more dB for fewer bits)."""
    if not summary["references"]:
        return [f"{summary['no_baseline'].capitalize()}."] if summary["no_baseline"] else []
    lines = []
    table = summary["table"]
    for base in summary["references"]:
        floor, rate = base["metrics"]["psnr"], base["metrics"].get("bpp")
        groups = [g for g in base["groups"] if g in table and "psnr" in table[g]]
        if rate is None:
            above = [g for g in groups if table[g]["psnr"]["mean"] > floor]
            lines.append(
                f"PSNR against the linear floor, {base['label']} at {floor:.2f} dB: "
                + (f"above it: {', '.join(above)}" if above else "no norm's mean reaches it")
                + "."
            )
            continue
        parts = []
        for g in groups:
            psnr, bpp = table[g]["psnr"]["mean"], table[g].get("bpp", {}).get("mean")
            spent = "" if bpp is None else f" at {bpp:.3f} bpp ({(bpp / rate - 1) * 100:+.0f}% bits)"
            parts.append(f"{g} {psnr - floor:+.2f} dB{spent}")
        lines.append(
            f"Against {base['label']} ({floor:.2f} dB at {rate:.3f} bpp, the entropy estimate of each): "
            + "; ".join(parts)
            + "."
        )
    return lines


def _sharpness_lines(summary: dict) -> list[str]:
    """The original study's 'L1 is blurrier, L2 sharper', tested where both were trained."""
    table = summary["table"]
    if not all(n in table and "sharpness" in table[n] for n in ("L1", "L2")):
        return []
    l1, l2 = table["L1"]["sharpness"], table["L2"]["sharpness"]
    test = across_seeds(l1["values"], l2["values"])
    text = (
        f"Sharpness (reconstruction's gradient over the original's; 1 = as sharp): L1 {l1['mean']:.3f}, "
        f"L2 {l2['mean']:.3f}; across seeds {_test_text(_result(test))}"
    )
    images = summary["per_image"]
    if "L1" in images and "L2" in images:
        a, b = images["L1"]["gradient"], images["L2"]["gradient"]
        paired = paired_images(a.tolist(), b.tolist())
        blurrier = (a < b).double().mean().item()  # L1's reconstruction has less gradient than L2's
        majority = f"L1 blurrier than L2 on {blurrier * 100:.0f}%" if blurrier >= 0.5 else (
            f"L1 sharper than L2 on {(a > b).double().mean().item() * 100:.0f}%"
        )  # fmt: skip
        which = "these two runs' images" if summary["seeds"] < 2 else "per image"
        text += f"; {which} {_test_text(_result(paired))}, {majority} of images"
    if test.significant:
        verdict = "L1 is blurrier than L2" if l1["mean"] < l2["mean"] else "L1 is sharper than L2"
        text += f". The claim 'L1 blurrier, L2 sharper' is {'supported' if l1['mean'] < l2['mean'] else 'contradicted'}: {verdict}."
    else:
        text += ". Across seeds these runs cannot tell L1 and L2 apart in sharpness."
    return [text]


def _smooth_max_lines(summary: dict) -> list[str]:
    """For each norm with a smooth maximum: is the worst pixel bounded without wrecking the rest?"""
    table = summary["table"]
    if "L2" not in table or "maxabs_worst" not in table["L2"]:
        return []
    lines = []
    reduction_goal, cost_goal = SMOOTH_MAX_GOAL
    for norm, stats in table.items():
        if not any(term.startswith("Linf-smooth") for _, term in parse_norm(norm).terms) or "maxabs_worst" not in stats:
            continue
        reduction = 1 - stats["maxabs_worst"]["mean"] / table["L2"]["maxabs_worst"]["mean"]
        cost = table["L2"]["psnr"]["mean"] - stats["psnr"]["mean"]
        met = reduction >= reduction_goal and cost <= cost_goal
        lines.append(
            f"Smooth-max goal ({norm}, {len(stats['psnr']['values'])} seeds): worst max-abs error "
            f"{reduction * 100:.0f}% below L2's (goal ≥ {reduction_goal * 100:.0f}%), PSNR {cost:+.2f} dB below "
            f"L2's (goal ≤ {cost_goal:g} dB): {'met' if met else 'not met'}."
        )
    return lines


def paired_against_first(runs: list[Run], data) -> list[str]:
    """Each run against the first, image by image on the first run's validation images (Wilcoxon on PSNR)."""
    from .metrics import per_image_errors
    from .runs import load_model

    psnr = [per_image_values(per_image_errors(load_model(run), data.val))["psnr"] for run in runs]
    labels = [run.info().label for run in runs]
    lines = [f"per-image PSNR against {labels[0]} on the same {len(data.val)} {data.source} images:"]
    for label, values in zip(labels[1:], psnr[1:], strict=True):
        test = paired_images(values.tolist(), psnr[0].tolist())
        better = (values > psnr[0]).double().mean().item() * 100
        lines.append(
            f"  {label}: better on {better:.0f}% of images, mean difference "
            f"{(values - psnr[0]).mean().item():+.3f} dB, {test.text()} ({test.test})"
        )
    return lines
