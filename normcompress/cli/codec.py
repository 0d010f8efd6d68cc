"""`normcompress reconstruct`, `compress` and `decompress`: images through a run's model, as pictures
and as .ncz files, each file reported in a row (or a line when it fails)."""

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..config import DEFAULTS
from .options import CodecDataDir, Device, Force, RunRef, RunsDir, out_dir, report_files, store

app = typer.Typer()
Images = Annotated[list[Path], typer.Argument(metavar="IMAGE", help="Image files of any size and mode.")]


@app.command(short_help="Reconstruct images of any size through a run's model.")
def reconstruct(
    run_id: RunRef,
    images: Images,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Directory for the reconstructions.")],
    device: Device = DEFAULTS.device,
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Reconstruct images of any size through a run's model, tile by tile, and report PSNR and max error.

    Gray images come back gray, RGBA images keep their alpha; unreadable files are reported and skipped.
    Images over 4096x4096 pixels are refused before they are decoded.
    """
    results = api.reconstruct_files(store(runs_dir), run_id, images, out_dir(out), device, force)
    report_files(
        results,
        len(images),
        ["image", "size", "mode", "PSNR dB", "max err", "reconstruction"],
        lambda r: [str(r.source), f"{r.size[0]}x{r.size[1]}", r.mode, f"{r.psnr:.2f}", str(r.max_error), str(r.output)],
        "read",
    )


@app.command(short_help="Compress images into .ncz files with a run's model.")
def compress(
    run_id: RunRef,
    images: Images,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Directory for the .ncz files.")],
    step: Annotated[
        float | None,
        typer.Option(
            metavar="STEP",
            min=0.01,
            max=4.0,
            help="Quantisation step (x each latent channel's "
            "std; 1 for runs trained with --rate-lambda): larger is smaller "
            "and worse.",
            show_default="0.25, or 1",
        ),
    ] = None,
    max_error: Annotated[
        int | None,
        typer.Option(
            metavar="LEVELS",
            min=0,
            max=255,
            help="Near-lossless: every pixel within this many "
            "levels of the original (0: lossless), by a coded residual; the "
            "latents are left out of a file where the residual alone is "
            "smaller.",
        ),
    ] = None,
    data_dir: CodecDataDir = Path(DEFAULTS.data_dir),
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Compress images into .ncz files with a run's model: bytes, bits per pixel, PSNR and max error."""
    results = api.compress_files(store(runs_dir), run_id, images, out_dir(out), step, max_error, str(data_dir), force)

    def row(c: api.Compressed) -> list[str]:
        return [
            str(c.source),
            str(c.bytes),
            f"{c.bytes * 8 / c.pixels:.3f}",
            f"{c.payload_bytes * 8 / c.pixels:.3f}",
            f"{c.residual_bytes * 8 / c.pixels:.3f}",
            f"{c.psnr:.2f}",
            str(c.max_error),
            str(c.output),
        ]

    report_files(
        results,
        len(images),
        ["image", "bytes", "bpp", "latent bpp", "residual bpp", "PSNR dB", "max err", "file"],
        row,
        "compressed",
    )


@app.command(short_help="Decompress .ncz files into PNG images.")
def decompress(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help=".ncz files.")],
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Directory for the PNG images.")],
    data_dir: CodecDataDir = Path(DEFAULTS.data_dir),
    force: Force = False,
    runs_dir: RunsDir = None,
) -> None:
    """Decompress .ncz files into PNG images; each file names the run (and weights) it needs.

    Files over 64 MiB, or claiming more pixels than a .ncz file holds, are refused before decoding.
    """
    results = api.decompress_files(store(runs_dir), files, out_dir(out), str(data_dir), force)
    report_files(
        results,
        len(files),
        ["file", "size", "mode", "image"],
        lambda d: [str(d.source), f"{d.size[0]}x{d.size[1]}", d.mode, str(d.output)],
        "decompressed",
        "file",
    )
