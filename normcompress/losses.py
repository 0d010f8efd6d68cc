"""Norms: the loss a run is trained under, parsed from one string shared by CLI, TUI and run store.

Grammar (names are case-insensitive, the canonical spelling is stored):
    L2 | L1 | Linf | Linf-image | SSIM      a registered base norm
    Lp:<p>                                 general Lp for a real p >= 1
    Linf-smooth:<t>                        each image's smooth maximum error at temperature t > 0
    <w>*<term> + <w>*<term> ...            a weighted hybrid of the above, e.g. 0.5*L1+0.5*L2
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:  # the losses use tensor methods only: parsing a norm (and --help) does not import torch
    import torch

Loss = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def l2(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return (output - target).pow(2).mean()


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (output - target).abs().mean()


def linf(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The largest absolute error over the whole batch: the original study's definition, kept as is.

    Its gradient reaches a single pixel of a single image per step, which is why it stalls.
    """
    return (output - target).abs().amax()


def linf_image(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of each image's largest absolute error: every image gets a gradient."""
    return (output - target).abs().flatten(1).amax(dim=1).mean()


def linf_smooth(temperature: float) -> Loss:
    """Each image's smooth maximum of |error|, t * log(mean(exp(|e| / t))), averaged over the batch.

    It lies between the image's mean and maximum absolute error: near L1 for a large t, near Linf-image
    as t -> 0. Unlike the maximum, every pixel gets a gradient, weighted by exp(|e| / t), so the worst
    pixels lead without the rest being ignored. t is in intensity units (0.02 is about 5 levels of 255).
    """

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scaled = (output - target).abs().flatten(1) / temperature
        return temperature * (scaled.logsumexp(dim=1) - math.log(scaled.shape[1])).mean()

    return loss


def ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - SSIM (pytorch-msssim, Gaussian window 11, data range 1); needs images of at least 11x11."""
    from pytorch_msssim import ssim

    return 1 - ssim(output.float(), target.float(), data_range=1.0, size_average=True)


def lp(p: float) -> Loss:
    """(mean |e|^p)^(1/p); the root's argument is floored so a perfect fit keeps a finite gradient."""

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).abs().pow(p).mean().clamp_min(1e-12).pow(1 / p)

    return loss


BASE_NORMS: dict[str, Loss] = {"L2": l2, "L1": l1, "Linf": linf, "Linf-image": linf_image, "SSIM": ssim_loss}
VALID_FORMS = (
    "L2, L1, Linf, Linf-image, SSIM, Lp:<p> with p >= 1, Linf-smooth:<t> with t > 0, "
    "or a weighted sum such as 0.5*L1+0.5*L2"
)
PARAMETRIC = {"Lp": lp, "Linf-smooth": linf_smooth}  # name:<number> forms

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_EXPONENT_PLUS = re.compile(r"(?<=[0-9.][eE])\+")  # the '+' of an exponent (1e+06), not one between terms
_TERM = re.compile(rf"^(?:(?P<weight>{_NUMBER})\s*\*\s*)?(?P<name>[A-Za-z][A-Za-z0-9.:\-]*)$")


@dataclass(frozen=True)
class Norm:
    """A parsed norm: its canonical name and the (weight, base name) terms it sums."""

    name: str
    terms: tuple[tuple[float, str], ...]

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        for weight, term in self.terms:
            value = _base_loss(term)(output, target)
            total = value * weight if total is None else total + value * weight
        return total


def _base_loss(name: str) -> Loss:
    family, _, number = name.partition(":")
    return PARAMETRIC[family](float(number)) if number else BASE_NORMS[name]


def _canonical_term(text: str) -> str:
    for name in BASE_NORMS:
        if text.lower() == name.lower():
            return name
    family, colon, number = text.partition(":")
    if family.lower() == "lp" and colon:
        p = _parameter(text, number, "the p of Lp:<p>")
        if not (math.isfinite(p) and p >= 1):
            raise UsageError(f"invalid norm {text!r}: Lp needs a finite p >= 1 (use Linf for the maximum)")
        return f"Lp:{_number(p)}"
    if family.lower() == "linf-smooth" and colon:
        t = _parameter(text, number, "the t of Linf-smooth:<t>")
        if not (math.isfinite(t) and 1e-4 <= t <= 100):
            raise UsageError(f"invalid norm {text!r}: Linf-smooth needs a temperature t from 0.0001 to 100")
        return f"Linf-smooth:{_number(t)}"
    raise UsageError(f"unknown norm {text!r}; valid forms: {VALID_FORMS}")


def parse_norm(text: str) -> Norm:
    """Parse and validate a norm string; raise UsageError naming the valid forms when it is not one."""
    if not text or not text.strip():
        raise UsageError(f"empty norm; valid forms: {VALID_FORMS}")
    terms: list[tuple[float, str]] = []
    for part in _EXPONENT_PLUS.sub("", text.replace(" ", "")).split("+"):
        match = _TERM.match(part)
        if not match:
            raise UsageError(f"malformed norm {text!r}: cannot read {part!r}; valid forms: {VALID_FORMS}")
        weight = float(_number(float(match["weight"]))) if match["weight"] else 1.0  # as the name will say
        if weight <= 0 or not math.isfinite(weight):
            raise UsageError(f"malformed norm {text!r}: weights must be positive numbers")
        name = _canonical_term(match["name"])
        if any(existing == name for _, existing in terms):
            raise UsageError(f"malformed norm {text!r}: {name} appears twice")
        terms.append((weight, name))
    if len(terms) == 1 and terms[0][0] == 1.0:
        return Norm(terms[0][1], tuple(terms))
    return Norm("+".join(f"{_number(w)}*{n}" for w, n in terms), tuple(terms))


def _parameter(text: str, number: str, what: str) -> float:
    try:
        return float(_number(float(number)))
    except ValueError:
        raise UsageError(f"invalid norm {text!r}: {what} must be a number") from None


def _number(value: float) -> str:
    """A number as a canonical name spells it, short and without '+' (1e+06 -> 1e06), so that the name
    parses back to itself."""
    return f"{value:g}".replace("e+", "e")


def norm_names() -> list[str]:
    """The registered base norms, in the order a selector should list them."""
    return list(BASE_NORMS)
