"""One training run across processes with PyTorch's own engine: `torchrun` starts the processes and sets RANK,
WORLD_SIZE and LOCAL_RANK; this module joins them into a process group (NCCL on CUDA, gloo on CPU), deals each
rank its shard of every epoch, and sums the metrics. DistributedDataParallel averages the gradients."""
import gc
import os
from dataclasses import dataclass, replace
from datetime import timedelta

import torch
import torch.distributed as dist

from dlplay.device import DeviceInfo, pick_device, usable_cores

TIMEOUT = timedelta(seconds=int(os.environ.get("DLPLAY_DIST_TIMEOUT", "300")))  # a lost peer ends the run


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run."""

    rank: int
    world: int
    local_rank: int

    @property
    def leader(self) -> bool:
        """Rank 0: the one that prints, evaluates and writes files."""
        return self.rank == 0


def from_environment() -> Ranks | None:
    """The ranks torchrun set, or None when this is a plain single-process run."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def threads_per_process() -> int:
    """The cores this process may use shared between the run's processes on this machine (LOCAL_WORLD_SIZE)."""
    return max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


MPS_REFUSED = ("torchrun cannot train on Apple's GPU (MPS): PyTorch has no process group for it; run the processes "
               "on the CPU with --device cpu, or train in one process on the GPU without torchrun")


def rank_device(preference: str, mixed_precision: bool) -> DeviceInfo:
    """The device a torchrun process trains on: CUDA when asked for, or when 'auto' finds a GPU it can use, else
    the CPU; 'auto' never picks Apple's GPU here, and asking for it raises ValueError (MPS_REFUSED)."""
    if preference == "mps":
        raise ValueError(MPS_REFUSED)
    device = pick_device(preference, mixed_precision)
    return pick_device("cpu", mixed_precision) if device.device.type == "mps" else device


def join(ranks: Ranks, device: DeviceInfo) -> DeviceInfo:
    """Join the process group; returns this rank's device (its own GPU on a CUDA machine). An MPS device raises
    ValueError: DistributedDataParallel has no backend for it (gloo would be handed MPS tensors)."""
    if device.device.type == "mps":
        raise ValueError(MPS_REFUSED)
    if device.device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
        device = replace(device, device=torch.device("cuda", ranks.local_rank))
    dist.init_process_group("nccl" if device.device.type == "cuda" else "gloo", rank=ranks.rank,
                            world_size=ranks.world, timeout=TIMEOUT)
    return device


def leave() -> None:
    """Leave the process group (after the last collective). The DistributedDataParallel wrapper and its reducer sit
    in reference cycles: collected first, while the interpreter is whole, their gloo work does not end up freed
    during interpreter shutdown, where it aborted a rank now and then ("terminate called without an active
    exception", SIGABRT; see pytorch#179291)."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def shard(order: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """This rank's share of an epoch's order: every world-th index from its rank on, after padding the order with
    its own start to a multiple of the world size (as DistributedSampler does), so every rank takes the same number
    of steps. Taken in global batches of world × b, rank r's k-th batch is exactly its part of the k-th global one."""
    padding = (-len(order)) % ranks.world
    padded = torch.cat([order, order.repeat(-(-padding // len(order)))[:padding]]) if padding else order
    return padded[ranks.rank::ranks.world]


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """The element-wise sum of `values` over every rank."""
    summed = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return summed.tolist()
