"""The training recipe beyond the config's numbers: the optimizer over a model's parameter groups, its
learning-rate schedule, the steps in an epoch, and the memory layout measured faster on each device."""

import torch

from . import distributed
from .config import TrainConfig


def uses_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """The memory format a run trains in: as asked, or by default channels-last on the CPU, where it
    measured 10-24% faster (benchmarks/train_throughput.py --variants, and an interleaved A/B)."""
    return config.channels_last if config.channels_last is not None else device.type == "cpu"


def steps_per_epoch(images: int, batch: int, ranks: distributed.Ranks) -> int:
    # Every rank needs an image in every step, so a last batch smaller than the world is dropped.
    return images // batch + (1 if images % batch >= ranks.world else 0)


def build_optimizer(config: TrainConfig, model, prior, steps_per_epoch: int):
    """The optimizer over the model's parameter groups (a model may ask for its own learning rates) and
    the prior, and the learning-rate schedule stepped once per batch (None for a constant rate)."""
    groups = model.parameter_groups(config.lr)
    if prior is not None:
        groups.append({"params": list(prior.parameters()), "lr": config.lr})
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # Fused: one kernel for every parameter's update instead of a few per tensor. On this 2-core CPU the
    # seed model's update took 0.24 ms against 0.92 ms (foreach); on a GPU it saves launches per step,
    # once per run of a stack.
    optimizer = kind(groups, lr=config.lr, fused=True)
    if config.schedule == "constant":
        return optimizer, None
    # One cycle (Smith 2018; torch's defaults): a cosine warm-up from peak/25 over the first 30% of the steps
    # to each group's peak, then a cosine decay to peak/1e5.
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in groups], total_steps=config.epochs * steps_per_epoch
    )
