"""The study report: tables with seed statistics and significance tests, the PCA reference, curves,
reconstructions, error maps, raw numbers.

Files written into the output directory: report.md, report.html (one self-contained file, images
embedded), curves.png, reconstructions.png, errors.png (each also as svg or pdf with --format),
metrics.csv, metrics.json.
"""

import base64
import html
import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch

from .baseline import Baseline, run_baseline
from .comparison import claim_lines, config_differences, group_labels, study_table, summarize_runs
from .data import load_run_data
from .errors import NormcompressError
from .figures import BASELINE_STYLE, DEFAULT_DPI, ERROR_COLOURMAP, integer_ticks, plt, save_figure, series_style
from .files import atomic_write, atomic_write_csv
from .metrics import METRICS, RATE_METRICS, TABLE_METRICS, per_image_errors, psnr_from_mse, to_float
from .runs import Run, RunStore, load_model
from .text import count

RANDOM_IMAGES, HARDEST_IMAGES = 4, 4


def write_report(
    runs: list[Run],
    out: Path,
    metric: str = "psnr",
    data_dir: str = "data",
    store: RunStore | None = None,
    fmt: str = "png",
    dpi: int = DEFAULT_DPI,
) -> tuple[list[Path], dict]:
    """Write every report file into `out`; return their paths and the study's summary. With a store, the
    PCA baseline at the runs' latent size is computed (or read from its cache) and reported."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NormcompressError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not runs:
        raise NormcompressError("the study has no completed runs to report")
    config = runs[0].train_config()
    data = load_run_data(runs[0], data_dir)
    images = data.val
    models = {run.id: load_model(run) for run in runs}
    errors = {run_id: per_image_errors(model, images) for run_id, model in models.items()}
    every_difference = config_differences(runs)
    groups, grouped = group_labels(
        runs, every_difference
    )  # a grid study: norm x its other settings, each a group of seeds
    baselines, missing = _baselines(runs, groups, data, store)
    summary = summarize_runs(runs, errors, baselines, missing, groups)
    norms = list(summary["table"])
    first_seed: dict[str, Run] = {}
    for run in runs:
        first_seed.setdefault(groups[run.id], run)
    mean_mse = torch.stack([errors[r.id]["mse"] for r in first_seed.values()]).mean(0)
    chosen_random = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:RANDOM_IMAGES]
    hardest = [i for i in mean_mse.argsort(descending=True).tolist() if i not in chosen_random.tolist()][
        :HARDEST_IMAGES
    ]
    picks = chosen_random.tolist() + hardest
    target = to_float(images[picks])
    with torch.no_grad():
        outputs = {norm: models[run.id](target).clamp(0, 1) for norm, run in first_seed.items()}
    first_errors = {norm: errors[run.id] for norm, run in first_seed.items()}
    figures = {
        "curves": _curves_figure(runs, groups, norms, metric, list({b.label: b for b in baselines.values()}.values())),
        "reconstructions": _grid_figure(target, outputs, picks, first_errors, "reconstructions"),
        "errors": _grid_figure(target, outputs, picks, first_errors, "errors"),
    }
    written = _save_figures(figures, out, fmt, dpi)
    rows = [{**row, "group": groups[row["run"]]} for row in _metric_rows(runs)]
    atomic_write_csv(out / "metrics.csv", rows, list(rows[0]))
    differences = {k: v for k, v in every_difference.items() if k not in grouped}  # beyond the grid
    everything = {
        "summary": {k: v for k, v in summary.items() if k != "per_image"},
        "differences": differences,
        "runs": [
            {**row, "config": asdict(run.train_config()), "epochs": run.metrics()}
            for row, run in zip(rows, runs, strict=False)
        ],
        "images": {"random": chosen_random.tolist(), "hardest": hardest, "data": data.source},
    }
    atomic_write(out / "metrics.json", json.dumps(everything, indent=2).encode())
    seeds = len(runs) // len(norms)
    title = _title(len(norms), grouped, seeds, config, data.source)
    recipe = f"{config.optimizer}, {config.schedule} learning rate {config.lr:g}, batch {config.batch_size}"
    atomic_write(out / "report.md", _markdown(title, recipe, summary, differences, metric).encode())
    atomic_write(out / "report.html", _html(title, recipe, summary, differences, metric, out).encode())
    return [out / "report.md", out / "report.html", *written, out / "metrics.csv", out / "metrics.json"], summary


def _baselines(
    runs: list[Run], groups: dict[str, str], data, store: RunStore | None
) -> tuple[dict[str, Baseline], str | None]:
    """Each group's reference, of its kind (baseline.run_baseline: PCA at the latent size, or quantised PCA
    at a codec model's λ), fitted once per kind; and why a group has none, if one has not."""
    if store is None:
        return {}, "no PCA reference: no run store to keep it in"
    found: dict[tuple, tuple[Baseline | None, str | None]] = {}
    baselines, reasons = {}, []
    for run in runs:
        config = run.train_config()
        kind = (config.model, config.rate_lambda, config.image_size)
        if kind not in found:
            found[kind] = run_baseline(store, run, data)
        baseline, reason = found[kind]
        if baseline is not None:
            baselines.setdefault(groups[run.id], baseline)
        elif reason and reason not in reasons:
            reasons.append(reason)
    return baselines, "; ".join(reasons) or None


def _title(groups: int, grouped: list[str], seeds: int, config, source: str) -> str:
    kinds = f"{groups} groups (norm x {' x '.join(grouped)})" if grouped else f"{groups} norms"
    return f"Norm study: {kinds} x {count(seeds, 'seed')}, {config.model} model, {count(config.epochs, 'epoch')} on {source}"


def _save_figures(figures: dict, out: Path, fmt: str, dpi: int) -> list[Path]:
    """Each figure as PNG (the report embeds it) and, for a paper, in the format asked for too."""
    written = []
    for name, figure in figures.items():
        if fmt != "png":
            save_figure(figure, out / name, fmt, dpi)
            written.append(out / f"{name}.{fmt}")
        written.append(save_figure(figure, out / name, "png", dpi))
    return written


def _metric_rows(runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        info = run.info()
        rows.append(
            {
                "run": info.id,
                "norm": info.norm,
                "seed": info.config.seed,
                "epochs": info.epochs_done,
                **{k: info.metrics.get(k) for k in TABLE_METRICS + RATE_METRICS},
                "wall_time_s": info.duration_s,
            }
        )
    return rows


def _curves_figure(runs: list[Run], groups: dict[str, str], norms: list[str], metric: str, baselines: list[Baseline]):
    figure, axis = plt.subplots(figsize=(8, 4.8))
    by_norm = defaultdict(list)
    for run in runs:
        by_norm[groups[run.id]].append([r[metric] for r in run.metrics()])
    for number, norm in enumerate(norms):
        curves = torch.tensor(by_norm[norm], dtype=torch.float64)  # seeds x epochs
        epochs = range(1, curves.shape[1] + 1)
        style = series_style(number)
        axis.plot(epochs, curves.mean(0), label=f"{norm} (n={len(curves)})", linewidth=2, markersize=4, **style)
        axis.fill_between(epochs, curves.min(0).values, curves.max(0).values, color=style["color"], alpha=0.2)
    for number, baseline in enumerate(baselines):
        if metric in baseline.metrics:
            style = BASELINE_STYLE if not number else {**BASELINE_STYLE, "linestyle": (":", "-.")[number % 2]}
            axis.axhline(baseline.metrics[metric], label=f"{baseline.label}, reference", **style)
    integer_ticks(axis)
    axis.set_xlabel("epoch")
    axis.set_ylabel(METRICS[metric].label)
    axis.set_title(f"{METRICS[metric].label}: mean over seeds, band from min to max")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the plot, never on the data
    return figure


def _grid_figure(target, outputs: dict, picks: list[int], errors: dict, kind: str):
    """Columns: the chosen test images; rows: the original, then one row per norm. Error maps share one
    scale in levels of 255, from 0 to the largest shown error, with a colourbar."""
    norms = list(outputs)
    columns = len(picks)
    figure, axes = plt.subplots(
        len(norms) + 1, columns, figsize=(1.45 * columns + 0.8, 1.7 * (len(norms) + 1)), squeeze=False
    )
    maps = {norm: (outputs[norm] - target).abs().mean(1) * 255 for norm in norms}  # levels, mean over RGB
    top = max(float(m.max()) for m in maps.values()) or 1.0
    shown = None
    for c, index in enumerate(picks):
        axes[0][c].imshow(target[c].permute(1, 2, 0).cpu().numpy())
        axes[0][c].set_title(("random" if c < RANDOM_IMAGES else "hardest") + f" #{index}", fontsize=7)
        for r, norm in enumerate(norms, 1):
            if kind == "reconstructions":
                axes[r][c].imshow(outputs[norm][c].permute(1, 2, 0).cpu().numpy())
            else:
                shown = axes[r][c].imshow(maps[norm][c].cpu().numpy(), cmap=ERROR_COLOURMAP, vmin=0, vmax=top)
            psnr = psnr_from_mse(errors[norm]["mse"][index].item())
            worst = errors[norm]["maxabs"][index].item() * 255
            axes[r][c].set_xlabel(f"{psnr:.1f} dB\nmax {worst:.0f}", fontsize=7)
    for r, norm in enumerate(["original", *norms]):
        axes[r][0].set_ylabel(norm, fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    if shown is not None:
        bar = figure.colorbar(shown, ax=axes[1:, :].ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label("|error|, levels of 255 (mean over R, G, B)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    scale = "; one colour scale for every norm" if kind == "errors" else ""
    figure.suptitle(
        f"{kind.capitalize()} of the same test images by each norm\n(under each: the image's PSNR "
        f"and its largest error over R, G, B in levels of 255{scale})",
        fontsize=9,
    )
    return figure


def _difference_lines(differences: dict) -> list[str]:
    if not differences:
        return ["The runs differ only in norm and seed."]
    return [
        "**Warning: these runs differ in more than norm and seed**, so a difference below is not the "
        "norm's alone: " + "; ".join(f"{key}: {', '.join(values)}" for key, values in differences.items()) + "."
    ]


def _markdown(title: str, recipe: str, summary: dict, differences: dict, metric: str) -> str:
    headers, rows = study_table(summary)
    lines = [
        f"# {title}",
        "",
        f"Recipe: {recipe}. " + " ".join(_difference_lines(differences)),
        "",
        "Final validation metrics, mean ± std over seeds (in bold: a best ahead of every other norm across "
        "seeds, Welch p < 0.05; — where one seed gives no spread).",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "## What the numbers say", ""]
    lines += [f"- {line}" for line in claim_lines(summary)]
    lines += [
        "",
        f"## Curves ({METRICS[metric].label})",
        "",
        "![curves](curves.png)",
        "",
        "## Reconstructions",
        "",
        "![reconstructions](reconstructions.png)",
        "",
        "## Error maps",
        "",
        "![errors](errors.png)",
        "",
        "Every run's numbers: `metrics.csv`, `metrics.json`.",
        "",
    ]
    return "\n".join(lines)


def _html(title: str, recipe: str, summary: dict, differences: dict, metric: str, out: Path) -> str:
    headers, rows = study_table(summary)

    def cell(text: str, tag: str = "td") -> str:
        bold = text.startswith("**")
        text = html.escape(text.strip("*"))
        return f"<{tag}>{'<b>' + text + '</b>' if bold else text}</{tag}>"

    def image(name: str) -> str:
        data = base64.b64encode((out / f"{name}.png").read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}">'

    def paragraph(line: str) -> str:
        return html.escape(line).replace("**", "")

    claims = "".join(f"<li>{paragraph(line)}</li>" for line in claim_lines(summary))
    table = "<tr>" + "".join(cell(h, "th") for h in headers) + "</tr>"
    table += "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    notes = " ".join(paragraph(line) for line in _difference_lines(differences))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1300px;margin:2em auto}}table{{font-size:90%}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td{{white-space:nowrap}}td:first-child{{text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Recipe: {html.escape(recipe)}. {notes}</p>
<p>Final validation metrics, mean ± std over seeds (in bold: a best ahead of every other norm across seeds, Welch p &lt; 0.05; — where one seed gives no spread).</p>
<table>{table}</table>
<h2>What the numbers say</h2><ul>{claims}</ul>
<h2>Curves ({html.escape(METRICS[metric].label)})</h2>{image("curves")}
<h2>Reconstructions</h2>{image("reconstructions")}
<h2>Error maps</h2>{image("errors")}
<p>Every run's numbers: metrics.csv, metrics.json.</p>
</body></html>
"""
