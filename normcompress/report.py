"""The study report: tables with seed statistics, curves, reconstructions, error maps, raw numbers.

Files written into the output directory: report.md, report.html (one self-contained file, images
embedded), curves.png, reconstructions.png, errors.png, metrics.csv, metrics.json.
"""

import base64
import csv
import html
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .data import load_data  # noqa: E402
from .errors import NormcompressError  # noqa: E402
from .images import error_map  # noqa: E402
from .metrics import METRICS, TABLE_METRICS, per_image_errors, psnr_from_mse, to_float  # noqa: E402
from .files import atomic_write  # noqa: E402
from .model import load_model  # noqa: E402
from .runs import Run  # noqa: E402

RANDOM_IMAGES, HARDEST_IMAGES = 4, 4
NOISE_RULE = "the two norms' mean ± 2 std intervals over seeds do not overlap"


def mean_std_text(mean: float, std: float) -> str:
    """`mean ± std` with std to two significant digits and the mean to the same decimal (at most five
    significant digits): 19.21 ± 0.27, 0.01201 ± 0.00075, 11.970 ± <0.001."""
    if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
        return f"{mean:.4g} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    if mean:
        decimals = min(decimals, max(0, 4 - math.floor(math.log10(abs(mean)))))
    spread = f"{std:.{decimals}f}"
    if float(spread) == 0:
        spread = f"<{10 ** -decimals:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {spread}"


def summarize_runs(runs: list[Run]) -> dict:
    """Per norm and metric: values over seeds, mean and std; the winner of each metric."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        info = run.info()
        for key in TABLE_METRICS:
            values[info.norm][key].append(info.metrics[key])
    table = {
        norm: {k: {"values": v, "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
               for k, v in by_metric.items()}
        for norm, by_metric in values.items()
    }
    winners = {}
    for key in TABLE_METRICS:
        pick = max if METRICS[key].higher_is_better else min
        best = pick(table, key=lambda n: table[n][key]["mean"])
        winners[key] = {
            "norm": best,
            "beyond_noise_against": [n for n in table if n != best and _separated(table[best][key], table[n][key])],
        }
    return {"table": table, "winners": winners}


def _separated(a: dict, b: dict) -> bool:
    return a["mean"] - 2 * a["std"] > b["mean"] + 2 * b["std"] or b["mean"] - 2 * b["std"] > a["mean"] + 2 * a["std"]


def write_report(runs: list[Run], out: Path, metric: str = "psnr", data_dir: str = "data") -> list[Path]:
    """Write every report file into `out`; return their paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NormcompressError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not runs:
        raise NormcompressError("the study has no completed runs to report")
    summary = summarize_runs(runs)
    norms = list(summary["table"])
    first_seed = {}
    for run in runs:
        first_seed.setdefault(run.info().norm, run)
    config = runs[0].train_config()
    data = load_data(runs[0].data_source, data_dir, image_size=config.image_size)
    images = data.val
    models = {norm: load_model(run) for norm, run in first_seed.items()}
    errors = {norm: per_image_errors(model, images) for norm, model in models.items()}
    mean_mse = torch.stack([e["mse"] for e in errors.values()]).mean(0)
    chosen_random = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:RANDOM_IMAGES]
    hardest = [i for i in mean_mse.argsort(descending=True).tolist() if i not in chosen_random.tolist()][:HARDEST_IMAGES]
    picks = chosen_random.tolist() + hardest
    files = {
        "curves": out / "curves.png",
        "reconstructions": out / "reconstructions.png",
        "errors": out / "errors.png",
    }
    _save(_curves_figure(runs, norms, metric), files["curves"])
    target = to_float(images[picks])
    outputs = {norm: model(target).detach().clamp(0, 1) for norm, model in models.items()}
    _save(_grid_figure(target, outputs, picks, errors, "reconstructions"), files["reconstructions"])
    _save(_grid_figure(target, outputs, picks, errors, "errors"), files["errors"])
    rows = _metric_rows(runs)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "metrics.csv", buffer.getvalue().encode())
    everything = {
        "summary": summary,
        "runs": [{**row, "epochs": run.metrics()} for row, run in zip(rows, runs)],
        "images": {"random": chosen_random.tolist(), "hardest": hardest, "data": data.source},
        "noise_rule": NOISE_RULE,
    }
    atomic_write(out / "metrics.json", json.dumps(everything, indent=2).encode())
    title = f"Norm study: {len(norms)} norms x {len(runs) // len(norms)} seeds, {config.epochs} epochs on {data.source}"
    atomic_write(out / "report.md", _markdown(title, summary, metric).encode())
    atomic_write(out / "report.html", _html(title, summary, metric, files).encode())
    return [out / n for n in ("report.md", "report.html", "curves.png", "reconstructions.png", "errors.png",
                              "metrics.csv", "metrics.json")]


def _metric_rows(runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        info = run.info()
        rows.append({"run": info.id, "norm": info.norm, "seed": info.config.seed, "epochs": info.epochs_done,
                     **{k: info.metrics[k] for k in TABLE_METRICS}, "wall_time_s": info.duration_s})
    return rows


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write(path, buffer.getvalue())


def _curves_figure(runs: list[Run], norms: list[str], metric: str):
    figure, axis = plt.subplots(figsize=(8, 4.8))
    by_norm = defaultdict(list)
    for run in runs:
        by_norm[run.info().norm].append([r[metric] for r in run.metrics()])
    for norm in norms:
        curves = torch.tensor(by_norm[norm], dtype=torch.float64)  # seeds x epochs
        epochs = range(1, curves.shape[1] + 1)
        mean = curves.mean(0)
        line, = axis.plot(epochs, mean, label=f"{norm} (n={len(curves)})", linewidth=2)
        axis.fill_between(epochs, curves.min(0).values, curves.max(0).values, color=line.get_color(), alpha=0.2)
    axis.set_xlabel("epoch")
    axis.set_ylabel(METRICS[metric].label)
    axis.set_title(f"{METRICS[metric].label}: mean over seeds, band from min to max")
    axis.grid(alpha=0.3)
    axis.legend()
    return figure


def _grid_figure(target, outputs: dict, picks: list[int], errors: dict, kind: str):
    """Columns: the chosen test images; rows: the original, then one row per norm."""
    norms = list(outputs)
    columns = len(picks)
    figure, axes = plt.subplots(len(norms) + 1, columns, figsize=(1.45 * columns, 1.7 * (len(norms) + 1)),
                                squeeze=False)
    for c, index in enumerate(picks):
        axes[0][c].imshow(target[c].permute(1, 2, 0).cpu().numpy())
        axes[0][c].set_title(("random" if c < RANDOM_IMAGES else "hardest") + f" #{index}", fontsize=7)
        for r, norm in enumerate(norms, 1):
            output = outputs[norm][c : c + 1]
            picture = output if kind == "reconstructions" else error_map(output, target[c : c + 1])
            axes[r][c].imshow(picture[0].permute(1, 2, 0).cpu().numpy())
            psnr = psnr_from_mse(errors[norm]["mse"][index].item())
            axes[r][c].set_xlabel(f"{psnr:.1f} dB, max {errors[norm]['maxabs'][index].item() * 255:.0f}", fontsize=7)
    for r, norm in enumerate(["original", *norms]):
        axes[r][0].set_ylabel(norm, fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    scale = "" if kind == "reconstructions" else " (|error| averaged over channels; black 0, white >= 0.25)"
    figure.suptitle(f"{kind.capitalize()} of the same test images by each norm{scale}", fontsize=9)
    return figure


def study_table(summary: dict, mark_best: bool = True, short: bool = False) -> tuple[list[str], list[list[str]]]:
    """The study's table, for the report and the CLI alike: a row per norm of mean ± std over seeds, the
    best of each column in **bold** (mark_best), or a last row naming it (mark_best=False)."""
    headers = ["norm", *(METRICS[k].column if short else METRICS[k].label for k in TABLE_METRICS)]
    rows = []
    for norm, stats in summary["table"].items():
        cells = []
        for key in TABLE_METRICS:
            text = mean_std_text(stats[key]["mean"], stats[key]["std"])
            cells.append(f"**{text}**" if mark_best and summary["winners"][key]["norm"] == norm else text)
        rows.append([norm, *cells])
    if not mark_best:
        rows.append(["best", *(summary["winners"][k]["norm"] for k in TABLE_METRICS)])
    return headers, rows


def _winner_lines(summary: dict) -> list[str]:
    lines = []
    for key in TABLE_METRICS:
        w = summary["winners"][key]
        beyond = ", ".join(w["beyond_noise_against"]) or "none"
        lines.append(f"{METRICS[key].label}: **{w['norm']}**; beyond seed noise against: {beyond}")
    return lines


def _markdown(title: str, summary: dict, metric: str) -> str:
    headers, rows = study_table(summary)
    lines = [f"# {title}", "", "Final validation metrics, mean ± std over seeds (best in bold).", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", f"## Winners (a difference exceeds seed noise when {NOISE_RULE})", ""]
    lines += [f"- {line}" for line in _winner_lines(summary)]
    lines += ["", f"## Curves ({METRICS[metric].label})", "", "![curves](curves.png)", "",
              "## Reconstructions", "", "![reconstructions](reconstructions.png)", "",
              "## Error maps", "", "![errors](errors.png)", "",
              "Every run's numbers: `metrics.csv`, `metrics.json`.", ""]
    return "\n".join(lines)


def _html(title: str, summary: dict, metric: str, files: dict[str, Path]) -> str:
    headers, rows = study_table(summary)

    def cell(text: str, tag: str = "td") -> str:
        bold = text.startswith("**")
        text = html.escape(text.strip("*"))
        return f"<{tag}>{'<b>' + text + '</b>' if bold else text}</{tag}>"

    def image(name: str) -> str:
        data = base64.b64encode(files[name].read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}">'

    winners = "".join(f"<li>{html.escape(line).replace('**', '')}</li>" for line in _winner_lines(summary))
    table = "<tr>" + "".join(cell(h, "th") for h in headers) + "</tr>"
    table += "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Final validation metrics, mean ± std over seeds (best in bold).</p>
<table>{table}</table>
<h2>Winners</h2><p>A difference exceeds seed noise when {html.escape(NOISE_RULE)}.</p><ul>{winners}</ul>
<h2>Curves ({html.escape(METRICS[metric].label)})</h2>{image("curves")}
<h2>Reconstructions</h2>{image("reconstructions")}
<h2>Error maps</h2>{image("errors")}
<p>Every run's numbers: metrics.csv, metrics.json.</p>
</body></html>
"""
