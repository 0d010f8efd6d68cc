"""Reports stress only what the seeds support: bold and stars where the seed-level test is significant,
one-seed per-image tests named as comparisons of two runs, the majority direction of a per-image share,
and p-values never rounded onto the threshold. Summaries are written by hand, so the expected text is
known without the code under test."""

import torch

from normcompress.comparison import claim_lines, study_table
from normcompress.stats import p_text


def result(p, test="Welch's t"):
    return {"test": test, "p": p, "reason": "", "significant": p is not None and p < 0.05}


def summary(seeds: int, seed_p: float, image_p: float | None = 0.00039, gradients=None) -> dict:
    values = {"L2": [12.233, 12.31, 12.16][:seeds], "L1": [12.230, 12.30, 12.17][:seeds]}
    table = {
        n: {"psnr": {"values": v, "mean": sum(v) / len(v), "std": None if seeds < 2 else 0.07}}
        for n, v in values.items()
    }
    against = {
        "L1": {"seeds": result(seed_p if seeds > 1 else None), "images": result(image_p, "Wilcoxon"), "better_on": 0.6}
    }
    winner = {"norm": "L2", "against": against, "significant_against": ["L1"] if seed_p < 0.05 and seeds > 1 else []}
    winner["supported"] = bool(winner["significant_against"])
    per_image = {}
    if gradients is not None:
        per_image = {"L1": {"gradient": torch.tensor(gradients[0])}, "L2": {"gradient": torch.tensor(gradients[1])}}
        for norm in ("L1", "L2"):
            table[norm]["sharpness"] = {"values": [0.8] * seeds, "mean": 0.8, "std": None}
    return {"table": table, "winners": {"psnr": winner}, "seeds": seeds, "per_image": per_image, "references": [],
            "no_baseline": None}  # fmt: skip


def test_a_lead_the_seeds_do_not_support_is_not_bold_nor_called_best():
    headers, rows = study_table(summary(3, seed_p=0.97))
    psnr = headers.index(next(h for h in headers if "PSNR" in h))
    assert not any("**" in row[psnr] for row in rows)
    line = next(line for line in claim_lines(summary(3, seed_p=0.97)) if "PSNR" in line)
    assert "best **" not in line and "best mean L2 (not ahead of every other norm" in line
    assert "p = 0.97" in line and "0.97*" not in line


def test_a_lead_the_seeds_support_is_bold_and_starred():
    headers, rows = study_table(summary(3, seed_p=0.003))
    psnr = headers.index(next(h for h in headers if "PSNR" in h))
    assert rows[0][psnr].startswith("**")
    line = next(line for line in claim_lines(summary(3, seed_p=0.003)) if "PSNR" in line)
    assert "best **L2**" in line and "seeds p = 0.003*" in line


def test_with_one_seed_a_per_image_test_compares_two_runs_and_carries_no_star():
    lines = claim_lines(summary(1, seed_p=1.0))
    line = next(line for line in lines if "PSNR" in line)
    assert "these two runs' images p = 0.00039 (60%)" in line and "0.00039*" not in line
    assert any("compares these two trained runs, not the two norms" in line for line in lines)


def test_a_per_image_share_is_said_in_its_majority_direction():
    # L1's reconstruction has more gradient (is sharper) than L2's on 6 of 7 images
    gradients = ([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.5], [1.0] * 7)
    line = next(line for line in claim_lines(summary(3, 0.5, gradients=gradients)) if line.startswith("Sharpness"))
    assert "L1 sharper than L2 on 86% of images" in line and "blurrier than L2 on 14%" not in line


def test_p_values_keep_the_digits_that_decide():
    assert p_text(0.0495) == "p = 0.0495" and p_text(0.0504) == "p = 0.0504"
    assert p_text(0.97) == "p = 0.97" and p_text(0.003) == "p = 0.003" and p_text(0.00001) == "p < 0.0001"
