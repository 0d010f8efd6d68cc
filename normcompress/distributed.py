"""Data-parallel training under torchrun: who this process is, and the reductions across processes.

`torchrun --nproc-per-node N -m normcompress train ...` starts N processes with RANK, LOCAL_RANK and
WORLD_SIZE set. Each process trains a strided share of every global batch with
DistributedDataParallel (NCCL on CUDA, gloo on CPU); only rank 0 writes the run store.
Without torchrun (WORLD_SIZE unset) everything here is a no-op for a world of one.
"""

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: torch.Tensor) -> torch.Tensor:
        """This process's strided share of a batch (or of any index list)."""
        return items[self.rank :: self.world] if self.world > 1 else items

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather(self, errors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-image errors of every process's share, concatenated (in rank order)."""
        if self.world == 1:
            return errors
        parts: list = [None] * self.world
        dist.all_gather_object(parts, errors)
        return {key: torch.cat([p[key] for p in parts]) for key in errors}


def from_environment() -> Ranks:
    return Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def start(device: torch.device) -> tuple[Ranks, torch.device, bool]:
    """Join the process group when launched by torchrun; return the ranks, this process's device,
    and whether this call created the group (and so must destroy it)."""
    ranks = from_environment()
    if ranks.world == 1:
        return ranks, device, False
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ranks, device, created


def finish(created: bool, completed: bool) -> None:
    """Leave the group this process created. After a completed run every rank first meets the others:
    a rank that tore gloo down while rank 0 was still writing the run store aborted now and then
    ("terminate called without an active exception"). After a failure there is no barrier, which the
    other ranks might never reach."""
    if created and dist.is_initialized():
        try:
            if completed:
                dist.barrier()
        finally:
            gc.collect()  # the DDP reducer and gathered objects go before the group they use
            dist.destroy_process_group()
