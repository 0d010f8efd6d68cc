"""Data-parallel training: torchrun with 2 CPU processes (gloo) on one node and across two, and studies on
several devices."""

import os
import socket
import subprocess
import sys

import pytest

from normcompress.runs import RunStore
from normcompress.study import StudyConfig, run_study
from normcompress.train import TrainConfig, train

ARGS = ["--dataset", "synthetic", "--limit", "512", "--epochs", "2", "--device", "cpu", "--batch-size", "64"]


def single_process_run(tmp_path):
    return train(
        TrainConfig(norm="L2", epochs=2, dataset="synthetic", limit=512, device="cpu", batch_size=64),
        RunStore(tmp_path / "single"),
    )


def assert_metrics_match(ddp_run, single) -> None:
    """Not bit-equal: two processes sum the gradients in another order (gloo's all-reduce), and 16 steps
    carry the float32 rounding forward. Means over 512 images stay within 0.1%; the worst single pixel
    of them (maxabs_worst, one value, not a mean) moves more, so it gets 0.01 (2.5 of 255 levels):
    a bug (each rank training on all the data, or on half of it) moves every value far more than that."""
    for ddp_epoch, one_epoch in zip(ddp_run.metrics(), single.metrics(), strict=True):
        for key in ("loss", "psnr", "mse", "mae", "ssim", "maxabs_mean"):
            assert ddp_epoch[key] == pytest.approx(one_epoch[key], rel=1e-3), key
        assert ddp_epoch["maxabs_worst"] == pytest.approx(one_epoch["maxabs_worst"], abs=0.01)


def test_torchrun_two_processes_match_one(tmp_path):
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path / "ddp")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",  # a free port
            "-m",
            "normcompress",
            "train",
            *ARGS,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (run,) = RunStore(tmp_path / "ddp").runs()  # only rank 0 wrote to the store
    assert result.stdout.split()[0] == run.id  # and only rank 0 printed
    assert run.info().status == "completed"
    assert_metrics_match(run, single_process_run(tmp_path))


@pytest.mark.slow
def test_torchrun_trains_a_codec_model_with_its_rate_term(tmp_path):
    """DDP wrapped the bare model, whose output is not the rate wrapper's (output, bits): every
    --rate-lambda run under torchrun failed with "too many values to unpack"."""
    env = {**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "normcompress",
            "train",
            "--model",
            "hyperprior",
            "--rate-lambda",
            "0.002",
            "--dataset",
            "sample",
            "--limit",
            "800",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = RunStore(tmp_path).runs()
    assert run.info().status == "completed" and run.metrics()[0]["psnr"] > 20  # a codec that works


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_across_two_nodes_writes_one_run_like_one_process(tmp_path):
    """Two torchrun "nodes" on this host, one process each, meeting at a c10d rendezvous as two machines
    would; each has its own run store (no shared filesystem): the node that gets rank 0 writes the run."""
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint,
                "--rdzv-id",
                "two-nodes",
                "-m",
                "normcompress",
                "train",
                *ARGS,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NORMCOMPRESS_RUNS_DIR": str(tmp_path / f"node{i}")},
        )
        for i in range(2)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    stores = [RunStore(tmp_path / f"node{i}").runs() for i in range(2)]
    assert sorted(len(runs) for runs in stores) == [0, 1]  # one run, on one node
    node, (run,) = next((i, runs) for i, runs in enumerate(stores) if runs)
    assert outputs[node][0].split()[0] == run.id and not outputs[1 - node][0].strip()
    assert run.info().status == "completed"
    assert_metrics_match(run, single_process_run(tmp_path))


def test_a_study_on_two_devices_matches_one_device(tmp_path):
    config = {"norms": ["L2", "L1"], "seeds": 2, "epochs": 1, "dataset": "synthetic", "limit": 128}
    side_by_side = run_study(StudyConfig.of_norms(**config, devices=["cpu", "cpu"]), RunStore(tmp_path / "two"))
    one_by_one = run_study(StudyConfig.of_norms(**config, devices=["cpu"]), RunStore(tmp_path / "one"))
    assert [(r.train_config().norm, r.train_config().seed) for r in side_by_side] == [
        (r.train_config().norm, r.train_config().seed) for r in one_by_one
    ]
    for a, b in zip(side_by_side, one_by_one, strict=False):
        assert a.metrics()[-1]["psnr"] == pytest.approx(b.metrics()[-1]["psnr"], abs=1e-6)
