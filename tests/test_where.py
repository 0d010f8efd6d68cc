"""The run filter (`runs list --where`, the app's `/`): numbers compare as numbers, words as words, and a
bad term is one line naming it. The runs are built by hand, so the expected lists are known."""

from pathlib import Path

import pytest

from normcompress.config import TrainConfig
from normcompress.errors import UsageError
from normcompress.runs import RunInfo, Status
from normcompress.runs.records import Summary
from normcompress.runs.where import RunFilter


def info(run_id: str, psnr: float | None, tags=(), status=Status.COMPLETED, **config) -> RunInfo:
    metrics = {} if psnr is None else {"psnr": psnr, "best_psnr": psnr + 0.5}
    summary = Summary(status, epochs_done=2, metrics=metrics, data="sample")
    return RunInfo(run_id, Path(run_id), status, TrainConfig(**config), summary, None, tuple(tags))


RUNS = [
    info("a", 24.0, norm="L2", lr=1e-3, model="seed"),
    info("b", 25.5, norm="L1", lr=3e-3, model="pca-refine", tags=["sweep"]),
    info("c", 26.0, norm="L2", lr=0.01, model="pca-refine", seed=2),
    info("d", None, norm="Linf", lr=1e-3, status=Status.RUNNING),
    RunInfo("e", Path("e"), Status.DAMAGED, None, None, "config.json is not JSON"),
]


def kept(text: str) -> list[str]:
    chosen = RunFilter.parse(text)
    return [i.id for i in RUNS if chosen.matches(i)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("psnr>25", ["b", "c"]),
        ("psnr>=25.5", ["b", "c"]),
        ("psnr>25.5", ["c"]),  # b is 25.5 exactly: a strict bound leaves it out
        ("psnr<24", []),  # ... and a is 24.0 exactly
        ("psnr<=24", ["a"]),
        ("psnr<25.5", ["a"]),  # d has no PSNR yet, e no summary: neither holds a comparison
        ("lr<0.01", ["a", "b", "d"]),
        ("lr=0.001", ["a", "d"]),  # 1e-3 as written in another spelling
        ("lr!=0.001", ["b", "c"]),
        ("model=pca-refine", ["b", "c"]),
        ("MODEL=PCA-Refine psnr>25.9", ["c"]),  # keys and words case-insensitive; every term must hold
        ("norm=l2 seed=2", ["c"]),
        ("best_psnr>=26", ["b", "c"]),  # best = final + 0.5 here: 26.0 and 26.5
        ("status=running", ["d"]),
        ("tag=sweep", ["b"]),
        ("tag!=sweep", ["a", "c", "d", "e"]),
        ("L2 psnr>25", ["c"]),  # a plain word searches the id, norm, tags and settings as before
        ("sweep", ["b"]),
        ("", ["a", "b", "c", "d", "e"]),
    ],
)
def test_a_filter_keeps_exactly_the_runs_that_hold_every_term(text, expected):
    assert kept(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("psnr>>3", "cannot read the filter term 'psnr>>3'"),
        ("colour=red", "unknown key 'colour'"),
        ("psnr>", "has no value after >"),
        ("model>seed", "compares with >, which needs a finite number"),
        ("psnr>1e999", "compares with >, which needs a finite number"),
        ("3<psnr", "cannot read the filter term '3<psnr'"),
    ],
)
def test_a_bad_term_is_one_line_naming_it(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as error:
        RunFilter.parse(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "order, expected",
    [
        ("psnr", ["a", "b", "c", "d", "e"]),  # 24.0, 25.5, 26.0; d has no PSNR yet, e is damaged: last
        ("-psnr", ["c", "b", "a", "d", "e"]),  # the largest first, the runs without a value still last
        ("lr", ["a", "d", "b", "c", "e"]),  # 1e-3 twice (in the order given), 3e-3, 0.01: numbers, not text
        ("-lr", ["c", "b", "a", "d", "e"]),
        ("norm", ["b", "a", "c", "d", "e"]),  # L1, L2, L2, Linf: words
        ("-NORM", ["d", "a", "c", "b", "e"]),  # the key in any case
        ("tag", ["b", "a", "c", "d", "e"]),  # only b has a tag; no tags is no value
        ("seed", ["a", "b", "d", "c", "e"]),  # 0, 0, 0, 2
    ],
)
def test_runs_sort_by_any_key_with_the_runs_without_it_last(order, expected):
    """`runs list --sort KEY` (-KEY for the largest first): a tracker's list sorted by a metric."""
    from normcompress.runs.where import sorted_runs

    assert [i.id for i in sorted_runs(RUNS, order)] == expected


def test_a_sort_by_a_key_no_filter_takes_names_the_keys():
    from normcompress.runs.where import sorted_runs

    with pytest.raises(UsageError, match="unknown key 'speed'; keys: amp"):
        sorted_runs(RUNS, "-speed")
