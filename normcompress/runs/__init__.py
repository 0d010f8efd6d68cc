"""The run store: one directory per run, the contract between the engine, the CLI and the TUI.
A run trained elsewhere (a Ray worker's private store) arrives as its files and is added in one rename.

    <root>/<run id>/
        config.json     the TrainConfig, written once
        metrics.jsonl   one JSON line per completed epoch, appended and flushed
        checkpoint.pt   model, optimizer, epoch and RNG state (and the learned prior of a run trained
                        with --rate-lambda), replaced atomically each epoch
        summary.json    status, final metrics, wall time, device, data really used, versions
        recon.png       fixed validation images, their reconstructions and error maps
        entropy.json    the codec's entropy model, fitted the first time the run compresses a file
        tags.json       the words a user tagged the run with (`runs tag`, `t` in the app), if any
        run.lock        held (flock) by the process training the run
        edit.lock       held (flock) for the moment of a read-modify-write of the user's files (tags.json),
                        so that two writers at once both keep their words

A run id is `<date>-<time>.<ms>-<norm slug>-<6 hex>`; nothing else in the root is a run, and a run
reference (an id, or a unique prefix or suffix of one) resolves only among those entries, so no
reference can reach outside the store. Every file except metrics.jsonl is written to a temporary file
and renamed, so a crash, Ctrl-C or a full disk leaves the previous version intact; leftovers of a
process that died are removed later. A run whose summary says `running` but whose lock is free was
killed (kill -9, power loss) and is reported as `interrupted`.

The store's own folders (`.baselines/`, `exports/`) are used only when they are real folders directly
in the root, never through a symbolic link, so no write of the project lands outside the store.

Every file is read through one validating layer (TrainConfig.from_json, Summary.from_json,
check_epoch_record): a run whose files fail it is listed as `damaged` with the reason.
"""

from ..errors import MissingRunFile, StoreError
from .checkpoint import load_model
from .records import (
    MAX_CHECKPOINT_BYTES,
    MAX_JSON_BYTES,
    MAX_METRICS_BYTES,
    MAX_NAME,
    MAX_NOTE,
    MAX_TAGS,
    RUN_FILES,
    RUN_ID,
    TAG,
    Annotations,
    RecordError,
    RunInfo,
    Status,
    Summary,
    check_epoch_record,
    check_tags,
    run_label,
)
from .run import Run, remove_stale
from .store import RUNS_DIR_ENV, RunStore, default_runs_dir

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_JSON_BYTES",
    "MAX_METRICS_BYTES",
    "MAX_NAME",
    "MAX_NOTE",
    "MAX_TAGS",
    "RUNS_DIR_ENV",
    "RUN_FILES",
    "RUN_ID",
    "TAG",
    "Annotations",
    "MissingRunFile",
    "RecordError",
    "Run",
    "RunInfo",
    "RunStore",
    "Status",
    "StoreError",
    "Summary",
    "check_epoch_record",
    "check_tags",
    "default_runs_dir",
    "load_model",
    "remove_stale",
    "run_label",
]
