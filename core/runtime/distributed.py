"""Multi-GPU (or multi-process CPU) training through ``torchrun`` and DistributedDataParallel.

``torchrun --nproc-per-node N -m mia.cli train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; mia
then runs one process per device, shards the sampler by rank, lets only rank 0 log and
write, and gathers evaluation features from every rank so all ranks score the full split.
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun describes (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return context


def local_device(device: torch.device, context: DistContext) -> torch.device:
    """Each rank drives its own GPU."""
    if device.type == "cuda" and context.enabled:
        torch.cuda.set_device(context.local_rank)
        return torch.device("cuda", context.local_rank)
    return device


def gather_rows(tensors: list[torch.Tensor], indices: torch.Tensor, total: int, context: DistContext) -> list[torch.Tensor]:
    """Reassemble row-sharded tensors (rows ``indices`` of ``total``) on every rank, in order."""
    if not context.enabled:
        return tensors
    pieces = [None] * context.world_size
    dist.all_gather_object(pieces, (indices.cpu(), [t.cpu() for t in tensors]))
    full = [t.new_zeros((total, *t.shape[1:]), device="cpu") for t in tensors]
    for shard_indices, shard_tensors in pieces:
        for target, source in zip(full, shard_tensors):
            target[shard_indices] = source
    return [t.to(tensors[0].device) for t in full]


def mean_over_ranks(values: dict[str, float], context: DistContext) -> dict[str, float]:
    """Average logged losses over ranks (all ranks call this)."""
    if not context.enabled:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor)
    return {k: float(v) / context.world_size for k, v in zip(keys, tensor)}


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()
