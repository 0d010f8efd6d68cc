"""Significance tests for comparing runs (scipy.stats), so that no table claims more than its data shows.

Two questions, two tests:
- across seeds: would another seed change the ranking? Welch's t-test on the final metric of each
  seed's run (unequal variances); it needs at least two seeds per side.
- per image: on these validation images, does run A do better than run B? The Wilcoxon signed-rank
  test on the paired per-image values (the same images under both runs); it says nothing about seeds.
"""

import math
import statistics
from dataclasses import dataclass

ALPHA = 0.05
MIN_SEEDS = 2
NO_SPREAD = "fewer than 2 seeds: no spread to test against"


@dataclass(frozen=True)
class TestResult:
    test: str  # the test's name, as the report prints it
    p: float | None  # None: not tested, for `reason`
    reason: str = ""

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < ALPHA

    def text(self) -> str:
        return "—" if self.p is None else p_text(self.p)


def p_text(p: float) -> str:
    """The p-value with the digits that decide: never rounded onto or across the 0.05 threshold
    (0.0495 is not "0.05", 0.0504 is not "0.05" either)."""
    if p < 1e-4:
        return "p < 0.0001"
    text = f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
    digits = 2
    while (float(text) < ALPHA) != (p < ALPHA) or float(text) == ALPHA:
        digits += 1
        text = f"{p:.{digits}g}"
        if digits > 8:
            break
    return f"p = {text}"


def spread(values: list[float]) -> float | None:
    """The sample standard deviation over seeds; None with fewer than two."""
    return statistics.stdev(values) if len(values) >= MIN_SEEDS else None


def across_seeds(a: list[float], b: list[float]) -> TestResult:
    """Welch's t-test of two sets of per-seed values (two-sided)."""
    name = f"Welch's t, {len(a)} vs {len(b)} seeds"
    if min(len(a), len(b)) < MIN_SEEDS:
        return TestResult(name, None, NO_SPREAD)
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return TestResult(name, None, "every seed gave the same value: no spread to test against")
    from scipy import stats  # loaded by the tests, not by a table of final metrics

    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return TestResult(name, p if math.isfinite(p) else None, "" if math.isfinite(p) else "the test is undefined")


def paired_images(a: list[float], b: list[float]) -> TestResult:
    """The Wilcoxon signed-rank test of per-image values of two runs on the same images (two-sided)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same images: {len(a)} against {len(b)}")
    name = f"Wilcoxon signed-rank, {len(a)} images"
    if len(a) < 2:
        return TestResult(name, None, "fewer than 2 images")
    if all(x == y for x, y in zip(a, b, strict=False)):
        return TestResult(name, 1.0)
    from scipy import stats

    return TestResult(name, float(stats.wilcoxon(a, b).pvalue))
