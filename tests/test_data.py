import numpy as np
import pytest
import torch
from PIL import Image

from normcompress import data as data_module
from normcompress.data import DataError, load_data, synthetic_images
from normcompress.errors import UsageError

from .conftest import SHARED_SUBSET


def test_sample_holds_real_cifar10_splits_as_uint8():
    data = load_data("sample")
    assert data.train.shape == (5170, 3, 32, 32) and data.val.shape == (1017, 3, 32, 32)
    assert data.train.dtype == torch.uint8 and data.source == "sample"
    with data_module.SAMPLE.open("rb") as file:
        assert len(file.read()) < 20_000_000


@pytest.mark.skipif(not SHARED_SUBSET.exists(), reason="needs ../shared/datasets/cifar10-subset")
def test_sample_pixels_equal_the_shared_pngs():
    with data_module.SAMPLE.open("rb") as file, np.load(file) as npz:
        names, images = npz["test_names"], npz["test_images"]
        for index in (0, 500, 1016):
            png = np.asarray(Image.open(SHARED_SUBSET / "test" / str(names[index])).convert("RGB"))
            assert (images[index].transpose(1, 2, 0) == png).all()
        assert len(npz["train_labels"]) == 5170 and set(npz["train_labels"].tolist()) == set(range(10))


def test_limit_takes_the_first_training_images():
    full, limited = load_data("sample"), load_data("sample", limit=100)
    assert torch.equal(limited.train, full.train[:100]) and len(limited.val) == len(full.val)


def test_cifar10_falls_back_to_the_sample_with_a_notice(tmp_path, monkeypatch):
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    notices = []
    data = load_data("cifar10", tmp_path, notify=notices.append)
    assert data.source == "sample" and len(data.train) == 5170
    assert len(notices) == 1 and "using the embedded sample" in notices[0] and "\n" not in notices[0]


def test_synthetic_is_deterministic_and_varied():
    a, b = synthetic_images(64, seed=3), synthetic_images(64, seed=3)
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == (64, 3, 32, 32)
    assert not torch.equal(a, synthetic_images(64, seed=4))
    assert a.float().std() > 30  # not a flat field


def test_synthetic_images_are_drawn_once_but_each_caller_owns_its_copy():
    first = load_data("synthetic").train
    expected = first.clone()
    first.zero_()  # a caller that writes into its images
    assert torch.equal(load_data("synthetic").train, expected)


def test_folder_converts_modes_and_skips_bad_files(image_folder):
    notices = []
    data = load_data(f"folder:{image_folder}", notify=notices.append)
    assert data.train.shape[1:] == (3, 32, 32) and len(data.train) + len(data.val) == 6
    assert len(data.val) == 1  # 10% held out, at least one
    assert len(notices) == 1
    assert "skipped 2" in notices[0] and "notes.png" in notices[0] and "corrupt.png" in notices[0]


def test_folder_image_size_and_fixed_split(image_folder):
    a = load_data(f"folder:{image_folder}", image_size=64)
    b = load_data(f"folder:{image_folder}", image_size=64)
    assert a.train.shape[2:] == (64, 64) and torch.equal(a.val, b.val)


def test_folder_gray_image_becomes_three_equal_channels(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((32, 32), 40 * i, dtype=np.uint8), mode="L").save(tmp_path / f"g{i}.png")
    data = load_data(f"folder:{tmp_path}")
    images = torch.cat([data.train, data.val])
    assert (images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all()


@pytest.mark.parametrize("make", ["missing", "empty", "only_bad"])
def test_folder_errors_are_clear(tmp_path, make):
    root = tmp_path / "imgs"
    if make != "missing":
        root.mkdir()
    if make == "only_bad":
        (root / "a.png").write_text("nope")
    with pytest.raises(DataError) as info:
        load_data(f"folder:{root}")
    assert str(root) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["cifar100", "folder:", "imagenet"])
def test_unknown_dataset_is_a_usage_error(spec):
    with pytest.raises(UsageError, match="unknown dataset"):
        load_data(spec)


def test_image_size_needs_a_folder():
    with pytest.raises(UsageError, match="folder"):
        load_data("sample", image_size=64)
