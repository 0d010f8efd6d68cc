"""A run's image history and the machine's figures per epoch: what training keeps beside its metrics."""

import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from normcompress.config import TrainConfig
from normcompress.history import MOST_ROWS, HistoryError, add_epoch, error_map, frame, read_history, strip
from normcompress.images import PADDING
from normcompress.runs import RunStore
from normcompress.train import train
from normcompress_tui.widgets.preview import grid_columns

from .hostile import TINY


def images(value: int, count: int = 3, side: int = 4) -> np.ndarray:
    return np.full((count, side, side, 3), value, np.uint8)


def test_each_epoch_adds_a_row_and_a_resumed_epoch_replaces_the_later_ones(tmp_path):
    path = tmp_path / "history.png"
    for epoch in (1, 2, 3):
        add_epoch(path, images(200), images(10 * epoch), epoch)
    history = read_history(path)
    assert history.epochs == [1, 2, 3] and history.originals.shape == (3, 4, 4, 3)
    assert [int(r[0, 0, 0, 0]) for r in history.reconstructions] == [10, 20, 30]  # each epoch's own pixels
    add_epoch(path, images(200), images(99), 2)  # resumed from epoch 1: its epochs 2 and 3 are trained again
    history = read_history(path)
    assert history.epochs == [1, 2] and int(history.reconstructions[1, 0, 0, 0, 0]) == 99
    add_epoch(path, images(7, count=2), images(8, count=2), 1)  # other images: the history starts again
    assert read_history(path).epochs == [1]


def test_a_long_run_keeps_a_bounded_evenly_spaced_history(tmp_path):
    path = tmp_path / "history.png"
    for epoch in range(1, 201):
        add_epoch(path, images(200, count=1), images(epoch, count=1), epoch)
    epochs = read_history(path).epochs
    # 200 epochs: a stride of 4 keeps 1, 4, 8, ..., 200 (51 rows); a stride of 2 would keep 102 > 64
    assert epochs == [1, *range(4, 201, 4)] and len(epochs) <= MOST_ROWS


def test_a_frame_is_laid_out_as_recon_png_and_its_error_map_is_on_the_same_scale(tmp_path):
    path = tmp_path / "history.png"
    add_epoch(path, images(100), images(100 + 16), 1)  # |error| 16/255 = 0.0627: a quarter of full scale
    picture = frame(read_history(path), 0)
    assert grid_columns(picture.size) == (3, 4)  # 3 columns of 4-pixel tiles, three rows: the preview's layout
    pixels = np.asarray(picture)
    error = pixels[PADDING + 2 * (4 + PADDING), PADDING]  # the first error map's corner pixel
    level = 16 / 255 / 0.25  # ERROR_MAP_FULL_SCALE = 0.25
    assert error.tolist() == [round(255 * min(3 * level, 1)), round(255 * max(min(3 * level - 1, 1), 0)), 0]
    assert error_map(images(0, 1, 1), images(255, 1, 1)).reshape(3).tolist() == [255, 255, 255]
    assert strip(read_history(path)).size == (picture.size[0], 2 * (4 + 2 * PADDING))  # originals, one epoch


@pytest.mark.parametrize(
    "damage",
    ["no text", "epochs out of order", "rows disagree", "not a png", "a symlink"],
)
def test_a_damaged_history_is_one_line_and_training_starts_it_again(tmp_path, damage):
    path = tmp_path / "history.png"
    add_epoch(path, images(1), images(2), 1)
    good = Image.open(path)
    info = PngImagePlugin.PngInfo()
    if damage == "no text":
        good.save(path)
    elif damage == "epochs out of order":
        info.add_text("epochs", "2,1")
        good.crop((0, 0, good.width, good.height)).save(path, pnginfo=info)
    elif damage == "rows disagree":
        info.add_text("epochs", "1,2,3")
        good.save(path, pnginfo=info)
    elif damage == "not a png":
        path.write_bytes(b"not an image")
    else:
        (tmp_path / "elsewhere.png").write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(HistoryError) as raised:
        read_history(path)
    assert "\n" not in str(raised.value)
    if damage != "a symlink":
        add_epoch(path, images(1), images(2), 4)
        assert read_history(path).epochs == [4]


def test_training_keeps_the_history_and_the_machines_figures_per_epoch(tmp_path, run_cli):
    store = RunStore(tmp_path / "store")
    run = train(TrainConfig(**TINY, epochs=2), store)
    history = read_history(run.path / "history.png")
    assert history.epochs == [1, 2] and history.originals.shape == (8, 32, 32, 3)  # the 8 preview images
    records = run.metrics()
    for record in records:
        assert 0 < record["cpu_percent"] < 100 * 64 and 0.05 < record["rss_gib"] < 24  # a process on this machine
        assert "gpu_percent" not in record and "gpu_memory_gib" not in record  # trained on the CPU
    summary = json.loads((run.path / "summary.json").read_text())
    assert "cpu_percent" not in summary["metrics"] and "psnr" in summary["metrics"]  # not a final metric
    code, out, _ = run_cli("runs", "show", run.id, "--runs-dir", str(store.root))
    assert code == 0 and "CPU %" in out and "RSS GiB" in out and "GPU" not in out


@pytest.mark.parametrize("damage", ["history is garbage", "history is a symlink out", "history is a FIFO"])
def test_a_hostile_history_is_said_in_the_app_and_skipped_by_the_export(store_copy, run_cli, tmp_path, damage):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from normcompress_tui.widgets.preview import ReconstructionPreview

    from .hostile import damages

    outside = tmp_path / "outside.png"
    outside.write_bytes(b"not yours")
    run = store_copy.runs()[1]
    damages(outside)[damage](run.path)
    preview = ReconstructionPreview()
    preview.shown = run.recon_path  # as show() leaves it, without a screen to draw on
    said = preview.step_history(-1)
    assert said.startswith("its image history cannot be shown: ") and "\n" not in said
    code, _, err = run_cli("runs", "export", str(tmp_path / "tb"), "--format", "tensorboard", run.id)
    assert code == 0, err
    events = EventAccumulator(str(tmp_path / "tb" / run.id), size_guidance={"images": 0})
    events.Reload()
    assert len(events.Images("reconstructions")) == 1  # recon.png stands in for the history
    assert outside.read_bytes() == b"not yours"  # nothing read or written through the link
