"""Rate-distortion: runs as codecs against WebP, JPEG and a PCA floor, on a test split.

Every image is its own file, so bpp counts whole files; the container's share (our header, JPEG's
markers before the scan, WebP's RIFF and frame headers) is reported apart, because at 32x32 a JPEG
header alone costs several bits per pixel. A run gives one point per quantisation step.
"""

import io
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ssim

from .codec import coder_for, encode_many, parse
from .data import load_data
from .errors import NormcompressError
from .figures import BASELINE_STYLE, plt, save_figure, series_style
from .files import atomic_write, atomic_write_csv
from .metrics import psnr_from_mse, to_float
from .model import CODEC_MODELS
from .pca import TILE, PcaModel, fit_pca
from .runs import Run, load_model, run_label
from .style import DEFAULT_DPI

RUN_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0)
QUALITIES = (1, 5, 10, 30, 50, 70, 90)  # 1 and 5: WebP reaches down to the rates of our curves
PCA_COMPONENTS = 256  # the seed model's latent size
CODEC_NAMES = {"webp": "WebP", "jpeg": "JPEG"}  # as their makers write them, in tables, legends and rd.csv
WEBP_CONTAINER = 30  # RIFF header (12) + VP8 chunk header (8) + VP8 frame header (10)


def _distortion(decoded: list[np.ndarray], originals: list[np.ndarray]) -> dict:
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2)
    ref = torch.from_numpy(np.stack(originals)).permute(0, 3, 1, 2)
    out_f, ref_f = to_float(out), to_float(ref)
    per_image_max = (out.int() - ref.int()).abs().flatten(1).amax(1).float()
    return {
        "psnr": psnr_from_mse((out_f - ref_f).pow(2).mean().item()),
        "ssim": ssim(out_f, ref_f, data_range=1.0).item(),
        "max_error_mean": per_image_max.mean().item(),
        "max_error_worst": per_image_max.max().item(),
    }


def _jpeg_container(data: bytes) -> int:
    """Bytes before the entropy-coded scan (through the SOS segment), plus the 2-byte end marker."""
    start = data.find(b"\xff\xda")
    if start < 0:
        return len(data)
    return start + 2 + int.from_bytes(data[start + 2 : start + 4], "big") + 2


def pillow_points(originals: list[np.ndarray], fmt: str) -> list[dict]:
    points = []
    for quality in QUALITIES:
        decoded, sizes, containers = [], [], []
        for pixels in originals:
            buffer = io.BytesIO()
            if fmt == "jpeg":
                Image.fromarray(pixels).save(buffer, format="jpeg", quality=quality, optimize=True, subsampling=0)
            else:
                Image.fromarray(pixels).save(buffer, format="webp", quality=quality, method=6)
            data = buffer.getvalue()
            decoded.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            sizes.append(len(data))
            containers.append(_jpeg_container(data) if fmt == "jpeg" else WEBP_CONTAINER)
        name = CODEC_NAMES[fmt]
        points.append(_point(f"{name} q{quality}", name, sizes, containers, decoded, originals))
    return points


def _point(label, codec, sizes, containers, decoded, originals) -> dict:
    pixels = originals[0].shape[0] * originals[0].shape[1]
    return {
        "codec": codec,
        "point": label,
        "bpp": float(np.mean(sizes)) * 8 / pixels,
        "container_bpp": float(np.mean(containers)) * 8 / pixels,
        **_distortion(decoded, originals),
    }


def write_pngs(images: list[np.ndarray], folder: Path) -> list[Path]:
    """Each HxWx3 image as folder/<index>.png: the codec, like a user, compresses files."""
    paths = [folder / f"{i}.png" for i in range(len(images))]
    for pixels, path in zip(images, paths, strict=False):
        Image.fromarray(pixels).save(path)
    return paths


@torch.no_grad()
def run_points(run: Run, originals: list[np.ndarray], data_dir: str, steps=None) -> list[dict]:
    """A run's points, one per quantisation step (RUN_STEPS by default). A codec model's run is one point
    (at the step it was trained for) of the curve its norm and model draw over λ, so runs that differ
    only in λ share a codec name (and a BD-rate)."""
    model = load_model(run)
    coder = coder_for(run, model, data_dir)
    config = run.train_config()
    rate_lambda = config.rate_lambda
    if config.model in CODEC_MODELS:
        codec = f"{config.norm} {config.model}"
        name, steps = f"{codec} λ={rate_lambda:g} {run.id[-6:]}", steps or (coder.default_step,)
    else:
        codec = name = run_label(f"{config.norm}{f' λ={rate_lambda:g}' if rate_lambda else ''}", run.id)
        steps = steps or RUN_STEPS
    labels = [f"{name} step {step:g}" for step in steps]
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(originals, Path(tmp))
        for step, label in zip(steps, labels, strict=False):
            encoded = list(encode_many(run, model, coder, paths, step))
            failed = next((e for e in encoded if isinstance(e, NormcompressError)), None)
            if failed is not None:
                raise failed
            containers = [len(e.data) - len(parse(e.data).payload) for e in encoded]
            decoded = [np.asarray(e.reconstruction.convert("RGB")) for e in encoded]
            points.append(_point(label, codec, [len(e.data) for e in encoded], containers, decoded, originals))
    return points


def pca_floor(train: torch.Tensor, originals: list[np.ndarray], components: int = PCA_COMPONENTS) -> dict | None:
    """PCA with `components` values per 32x32 tile, unquantised: what a linear model with that budget
    reaches (None for images that are not whole tiles)."""
    if train.shape[-1] % TILE or train.shape[-2] % TILE:
        return None
    test = to_float(torch.from_numpy(np.stack(originals)).permute(0, 3, 1, 2))
    with torch.no_grad():
        recon = PcaModel(fit_pca(train, components))(test)
    decoded = [(r.permute(1, 2, 0) * 255).round().byte().numpy() for r in recon]
    return {
        "codec": "PCA",
        "point": f"PCA {components} values (unquantised)",
        "bpp": float("nan"),
        "container_bpp": float("nan"),
        **_distortion(decoded, originals),
    }


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """Bjøntegaard delta rate of `test` against `anchor`, each a curve of (bpp, PSNR dB) points: the mean
    difference in rate at equal PSNR, in percent (negative: `test` needs fewer bits), over the PSNR range
    both curves cover, with that range. log10(rate) is interpolated as a function of PSNR piecewise-cubic
    and monotone (PCHIP, as in the current VCEG/JVET practice; the 2001 original fitted one cubic), then
    integrated. None when the curves share no PSNR range or have fewer than 2 distinct points each."""
    from scipy.integrate import quad
    from scipy.interpolate import PchipInterpolator

    curves = []
    for points in (anchor, test):
        clean = sorted({(d, math.log10(r)) for r, d in points if r > 0 and math.isfinite(r) and math.isfinite(d)})
        distortions = [d for d, _ in clean]
        if len(set(distortions)) < 2 or len(set(distortions)) != len(distortions):
            return None
        curves.append(clean)
    low = max(curves[0][0][0], curves[1][0][0])
    high = min(curves[0][-1][0], curves[1][-1][0])
    if high <= low:
        return None
    fits = [PchipInterpolator([d for d, _ in c], [r for _, r in c]) for c in curves]
    areas = [quad(fit, low, high, limit=200)[0] for fit in fits]
    return (10 ** ((areas[1] - areas[0]) / (high - low)) - 1) * 100, low, high


def write_rd(
    runs: list[Run],
    out: Path,
    dataset: str | None = None,
    data_dir: str = "data",
    images: int | None = None,
    steps=None,
    fmt: str = "png",
    dpi: int = DEFAULT_DPI,
) -> list[Path]:
    if not runs:
        raise NormcompressError("rd needs at least one run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NormcompressError(f"cannot create {out}: {exc.strerror or exc}") from None
    first = runs[0]
    source = dataset or first.data_source
    data = load_data(source, data_dir, image_size=first.train_config().image_size)
    val = data.val if images is None else data.val[torch.linspace(0, len(data.val) - 1, images).long()]
    originals = [image.permute(1, 2, 0).numpy() for image in val]
    points = [p for run in runs for p in run_points(run, originals, data_dir, steps)]
    points += pillow_points(originals, "webp") + pillow_points(originals, "jpeg")
    floor = pca_floor(data.train, originals)
    points += [floor] if floor else []
    columns = ["codec", "point", "bpp", "container_bpp", "psnr", "ssim", "max_error_mean", "max_error_worst"]
    atomic_write_csv(out / "rd.csv", points, columns)
    atomic_write(out / "rd.md", _markdown(points, data.source, len(originals)).encode())
    return [out / "rd.csv", out / "rd.md", save_figure(_plot(points), out / "rd", fmt, dpi)]


def _markdown(points: list[dict], source: str, images: int) -> str:
    """rd.md: one row per codec and setting, then each learned codec's BD-rate against WebP."""
    shown = {
        "bpp": ("bpp (whole file)", "{:.3f}"),
        "container_bpp": ("of it container", "{:.3f}"),
        "psnr": ("PSNR dB", "{:.2f}"),
        "ssim": ("SSIM", "{:.3f}"),
        "max_error_mean": ("max error, mean", "{:.1f}"),
        "max_error_worst": ("max error, worst", "{:.0f}"),
    }
    lines = [
        f"# Rate-distortion on {source} ({images} test images, one file each)",
        "",
        "| codec, setting | " + " | ".join(label for label, _ in shown.values()) + " |",
        "|---|" + "---:|" * len(shown),
    ]
    lines += [
        "| "
        + " | ".join(
            [p["point"], *("–" if math.isnan(p[key]) else form.format(p[key]) for key, (_, form) in shown.items())]
        )
        + " |"
        for p in points
    ]
    lines += [
        "",
        "BD-rate against WebP (Bjøntegaard, on PSNR: the mean change in whole-file bits at equal PSNR "
        "over the range both curves cover; negative means fewer bits than WebP):",
        "",
    ]
    webp = [(p["bpp"], p["psnr"]) for p in points if p["codec"] == "WebP"]
    for codec in dict.fromkeys(p["codec"] for p in points if p["codec"] not in ("WebP", "PCA")):
        delta = bd_rate(webp, [(p["bpp"], p["psnr"]) for p in points if p["codec"] == codec])
        lines.append(
            f"- {codec}: "
            + (
                "no PSNR range in common with WebP"
                if delta is None
                else f"{delta[0]:+.1f}% over {delta[1]:.2f}–{delta[2]:.2f} dB"
            )
        )
    return "\n".join(lines) + "\n"


def _plot(points: list[dict]):
    """Three panels against whole-file bpp; one legend for all of them, below."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    codecs = list(dict.fromkeys(p["codec"] for p in points if p["codec"] != "PCA"))
    pca = next((p for p in points if p["codec"] == "PCA"), None)
    for axis, key, label in zip(
        axes,
        ("psnr", "ssim", "max_error_mean"),
        ("PSNR (dB)", "SSIM (1 = identical)", "mean per-image max error (levels of 255)"),
        strict=False,
    ):
        for number, codec in enumerate(codecs):
            mine = sorted((p for p in points if p["codec"] == codec), key=lambda p: p["bpp"])
            axis.plot([p["bpp"] for p in mine], [p[key] for p in mine], label=codec, **series_style(number))
        if pca:
            axis.axhline(pca[key], label=pca["point"], **BASELINE_STYLE)
        axis.set_xlabel("bits per pixel (whole files)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(len(labels), 4),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.08 - 0.04 * (len(labels) // 4)),
    )
    figure.suptitle(
        "Rate-distortion: every image its own file; upper left is better for PSNR and SSIM, lower left for max error"
    )
    return figure
