import math

import pytest
import torch

from normcompress.errors import UsageError
from normcompress.losses import parse_norm

TARGET = torch.zeros(2, 1, 1, 2)
OUTPUT = torch.tensor([[[[0.1, -0.2]]], [[[0.4, 0.0]]]])  # errors 0.1, 0.2 | 0.4, 0.0


@pytest.mark.parametrize(
    "norm, expected",
    [
        ("L2", (0.01 + 0.04 + 0.16 + 0) / 4),
        ("L1", (0.1 + 0.2 + 0.4 + 0) / 4),
        ("Linf", 0.4),  # over the whole batch
        ("Linf-image", (0.2 + 0.4) / 2),  # mean of each image's max
        ("Lp:3", ((0.001 + 0.008 + 0.064) / 4) ** (1 / 3)),
        ("Lp:1", 0.175),
        ("0.5*L1+0.5*L2", 0.5 * 0.175 + 0.5 * 0.0525),
        ("0.7*L1+0.3*Linf-image", 0.7 * 0.175 + 0.3 * 0.3),
    ],
)
def test_norm_values_on_hand_computed_tensors(norm, expected):
    assert parse_norm(norm)(OUTPUT, TARGET).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("norm", ["L2", "L1", "Linf", "Linf-image", "Lp:3", "SSIM", "0.84*SSIM+0.16*L1"])
def test_gradients_flow(norm):
    output = torch.rand(2, 3, 16, 16, requires_grad=True)
    parse_norm(norm)(output, torch.rand(2, 3, 16, 16)).backward()
    assert output.grad is not None and torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


def test_linf_reaches_one_pixel_and_linf_image_one_per_image():
    output = torch.rand(3, 3, 8, 8, requires_grad=True)
    parse_norm("Linf")(output, torch.zeros_like(output)).backward()
    assert (output.grad != 0).sum() == 1
    output.grad = None
    parse_norm("Linf-image")(output, torch.zeros_like(output)).backward()
    assert (output.grad != 0).flatten(1).sum(1).tolist() == [1, 1, 1]


def test_ssim_term_is_zero_for_identical_images_and_grows_with_noise():
    x = torch.rand(2, 3, 32, 32)
    ssim = parse_norm("SSIM")
    assert ssim(x, x).item() == pytest.approx(0, abs=1e-5)
    assert ssim((x + 0.3 * torch.randn_like(x)).clamp(0, 1), x).item() > 0.3


def test_lp_keeps_a_finite_gradient_at_a_perfect_fit():
    output = torch.zeros(1, 3, 4, 4, requires_grad=True)
    parse_norm("Lp:2.5")(output, torch.zeros(1, 3, 4, 4)).backward()
    assert torch.isfinite(output.grad).all()


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("l1", "L1"),
        ("LINF-IMAGE", "Linf-image"),
        ("lp:2.50", "Lp:2.5"),
        (" 0.5 * L1 + 0.5*l2 ", "0.5*L1+0.5*L2"),
        ("1*L2", "L2"),
        ("2*L1", "2*L1"),
        ("0.84*SSIM+0.16*L1", "0.84*SSIM+0.16*L1"),
        ("1e-1*L1+L2", "0.1*L1+1*L2"),
    ],
)
def test_parser_canonical_names(text, canonical):
    assert parse_norm(text).name == canonical
    assert parse_norm(canonical).name == canonical


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("L3", "unknown norm"),
        ("", "empty norm"),
        ("0.5*L1+", "cannot read ''"),
        ("Lp:0.5", "p >= 1"),
        ("Lp:inf", "p >= 1"),
        ("Lp:abc", "must be a number"),
        ("-1*L1", "cannot read"),
        ("0*L2", "positive"),
        ("L1+l1", "appears twice"),
        ("0.5**L1", "cannot read"),
        ("L1;rm", "cannot read"),
    ],
)
def test_parser_rejects_with_the_valid_forms(text, fragment):
    with pytest.raises(UsageError) as info:
        parse_norm(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2
    if fragment in ("unknown norm", "cannot read"):
        assert "Linf-image" in str(info.value) and "Lp:<p>" in str(info.value)


def test_lp_with_p_1_equals_l1_and_large_p_approaches_the_max():
    e = torch.rand(4, 3, 8, 8)
    z = torch.zeros_like(e)
    assert math.isclose(parse_norm("Lp:1")(e, z).item(), parse_norm("L1")(e, z).item(), rel_tol=1e-5)
    assert parse_norm("Lp:200")(e, z).item() == pytest.approx(e.max().item(), rel=0.05)
