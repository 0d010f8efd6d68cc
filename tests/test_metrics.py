"""The validation metrics, against values computed by hand: the numbers norms are compared by."""

import math

import pytest
import torch
from torch import nn

from normcompress.losses import parse_norm
from normcompress.metrics import per_image_errors, psnr_from_mse, summarize, validation_batch

SIDE = 16  # SSIM's 11-pixel window needs at least 11


class FixedOutput(nn.Module):
    """A 'model' that returns a fixed picture, whatever it is given."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # per_image_errors asks a model for its device
        self.output = output

    def forward(self, images):
        return self.output[: len(images)]


def two_images():
    """Targets all 0. Image 0: error 0.1 everywhere but one pixel of 0.5; image 1: error 0.2 everywhere."""
    output = torch.full((2, 3, SIDE, SIDE), 0.1)
    output[0, 1, 4, 7] = 0.5
    output[1] = 0.2
    return FixedOutput(output), torch.zeros(2, 3, SIDE, SIDE, dtype=torch.uint8)


def test_psnr_is_ten_log10_of_one_over_the_mse():
    assert psnr_from_mse(0.01) == pytest.approx(20.0)  # 20*log10(0.01) would be -40
    assert psnr_from_mse(0.001) == pytest.approx(30.0)
    assert psnr_from_mse(0.0) == 100.0


def test_per_image_errors_and_their_summary_by_hand():
    model, images = two_images()
    n = 3 * SIDE * SIDE
    errors = per_image_errors(model, images)
    mse0 = ((n - 1) * 0.01 + 0.25) / n
    mae0 = ((n - 1) * 0.1 + 0.5) / n
    assert errors["mse"].tolist() == pytest.approx([mse0, 0.04], rel=1e-5)
    assert errors["mae"].tolist() == pytest.approx([mae0, 0.2], rel=1e-5)  # MAE, not MSE
    assert errors["maxabs"].tolist() == pytest.approx([0.5, 0.2], rel=1e-5)
    summary = summarize(errors)
    mse = (mse0 + 0.04) / 2
    assert summary["mse"] == pytest.approx(mse, rel=1e-5)
    assert summary["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)  # from the split's mean MSE
    assert summary["mae"] == pytest.approx((mae0 + 0.2) / 2, rel=1e-5)
    assert summary["maxabs_mean"] == pytest.approx(0.35, rel=1e-5)
    assert summary["maxabs_worst"] == pytest.approx(0.5, rel=1e-5)  # the worst image, not the mean (0.35)


def test_a_gpu_validates_in_batches_of_a_fixed_number_of_values():
    assert validation_batch((3, 32, 32), "cpu") == 128  # measured fastest there
    assert validation_batch((3, 32, 32), "cuda") == 1024  # 1024 * 3,072 values
    assert validation_batch((3, 256, 256), "cuda") == 16  # 3,145,728 // 196,608
    assert validation_batch((3, 4096, 4096), "cuda") == 1  # never none


def test_each_images_errors_do_not_depend_on_the_batch_it_was_in():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 3, padding=1)  # each output image depends on its own input only
    images = torch.randint(0, 256, (10, 3, SIDE, SIDE), dtype=torch.uint8)
    in_threes, all_at_once = per_image_errors(model, images, batch_size=3), per_image_errors(model, images, 10)
    assert in_threes.keys() == all_at_once.keys()
    for key in in_threes:
        assert torch.allclose(in_threes[key], all_at_once[key], rtol=1e-5, atol=1e-7), key


def test_ssim_of_a_perfect_reconstruction_is_one_and_of_a_flat_one_is_lower():
    images = (torch.rand(2, 3, SIDE, SIDE) * 255).to(torch.uint8)
    perfect = per_image_errors(FixedOutput(images.float() / 255), images)["ssim"]
    flat = per_image_errors(FixedOutput(torch.full((2, 3, SIDE, SIDE), 0.5)), images)["ssim"]
    assert perfect.tolist() == pytest.approx([1.0, 1.0], abs=1e-4) and (flat < 0.2).all()


def test_linf_image_takes_each_images_maximum_over_all_its_channels():
    """One image whose channels peak at 0.4 and 0.1: its maximum is 0.4. A maximum per channel,
    averaged (0.25), or the batch's mean error would differ; with one channel they would not."""
    output = torch.zeros(2, 2, 2, 2)
    output[0, 0, 0, 0], output[0, 1, 1, 1] = 0.4, 0.1
    output[1, 0, 1, 0], output[1, 1, 0, 1] = 0.2, 0.3
    target = torch.zeros_like(output)
    assert parse_norm("Linf-image")(output, target).item() == pytest.approx((0.4 + 0.3) / 2)
    assert parse_norm("Linf")(output, target).item() == pytest.approx(0.4)
