"""Data-parallel training across processes started by `torchrun`: which process this is, its
share of each global batch and of the training data, and the one collective a step needs.

Every process (rank) keeps a replica of the model and trains on its slice of the same global
minibatch: the epoch's permutation is drawn identically on every rank from the shared seed, a
global batch of B examples is cut into N contiguous slices of B / N, and rank r holds on its
device only the examples of its slices for the epoch (its shard, taken from a host copy of the
training split at each epoch's start). After a step each rank's gradients, however they were
computed (autograd or the hand-derived fused backward), are summed across ranks in one
all-reduce of a flat buffer the parameters' `.grad` tensors are views of, and divided by N;
so every replica takes the same optimiser step, the one single-process training takes on the
whole global batch. This is what `torch.nn.parallel.DistributedDataParallel` does with
`gradient_as_bucket_view`, without its overlap of the reduction with the backward pass: the
fused backward fills `.grad` without autograd, where DDP's hooks would never fire, and the
tasks call their models' other methods (`encode`, `config`), which DDP's wrapper does not route.

The same all-reduce carries a few numbers besides the gradients: each rank's loss and reported
terms times its number of examples (so the epoch's curve is that of the whole global batch),
its count, and whether it was asked to stop, so that all ranks stop after the same step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch
import torch.distributed as dist

from .config.base import ConfigError
from .data import Split


@dataclass(frozen=True)
class Launch:
    """What `torchrun` tells a process through its environment."""
    rank: int         # 0 .. world_size - 1, across all nodes
    local_rank: int   # 0 .. processes on this node - 1: the GPU this process takes
    world_size: int   # processes in the whole job


def from_environment(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The launch `torchrun` described in RANK, LOCAL_RANK and WORLD_SIZE, or None when this
    process trains alone (no WORLD_SIZE, or a world of one)."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    try:
        world, rank = int(environ["WORLD_SIZE"]), int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("torchrun: WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers") from None
    if world <= 1:
        return None
    if not (0 <= rank < world and local >= 0):
        raise ConfigError(f"torchrun: RANK {rank} is outside a world of {world} processes")
    return Launch(rank, local, world)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes; other devices have no backend here."""
    if device.type == "cuda":
        return "nccl"
    if device.type == "cpu":
        return "gloo"
    raise ConfigError(f"device: training across processes runs on cpu (gloo) or cuda (nccl), not {device.type}")


def rank_device(device: torch.device, launch: Launch) -> torch.device:
    """The device of this rank: its own GPU (LOCAL_RANK) on CUDA, the CPU otherwise."""
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if launch.local_rank >= count:
            raise ConfigError(f"device: process {launch.local_rank} on this node needs GPU {launch.local_rank}, "
                              f"but the node has {count}; start at most {count} processes per node")
        return torch.device("cuda", launch.local_rank)
    return device


def check_batch_size(batch_size: int, world_size: int) -> None:
    """--batch-size is the global minibatch; each of N ranks takes B / N of it."""
    if batch_size % world_size:
        raise ConfigError(f"batch_size: the global batch of {batch_size} does not split evenly over "
                          f"{world_size} processes; choose a multiple of {world_size}")


class Replicas:
    """This process's place in a group of training processes, and the collectives the trainer
    needs. `Replicas.alone()` is a group of one, where every operation is the identity."""

    def __init__(self, rank: int = 0, world_size: int = 1, joined: bool = False):
        self.rank = rank
        self.world_size = world_size
        self.joined = joined          # True when this object opened the process group
        self._flat: torch.Tensor | None = None
        self._grad_numel = 0
        self._host_train: Split | None = None

    @classmethod
    def alone(cls) -> "Replicas":
        return cls()

    @classmethod
    def join(cls, launch: Launch, device: torch.device, init_method: str = "env://") -> "Replicas":
        """Open the process group of a `torchrun` launch (its rendezvous in MASTER_ADDR and
        MASTER_PORT, or `init_method`) with the backend of `device`."""
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend_for(device), init_method=init_method, rank=launch.rank,
                                world_size=launch.world_size,
                                device_id=device if device.type == "cuda" else None)
        return cls(launch.rank, launch.world_size, joined=True)

    def leave(self) -> None:
        if self.joined and dist.is_initialized():
            dist.destroy_process_group()
        self.joined = False

    @property
    def together(self) -> bool:
        return self.world_size > 1

    @property
    def lead(self) -> bool:
        """Rank 0, the one that writes checkpoints and reports progress."""
        return self.rank == 0

    # --- the data ---

    def batch_slice(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of a global batch's indices: B / N of a full batch; of a
        last, smaller batch a part as even as the others (sizes differ by at most one, and may
        be zero when the batch has fewer examples than there are ranks)."""
        if not self.together:
            return batch
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def shard(self, task: Any, permutation: torch.Tensor, batch_size: int) -> None:
        """Put on the task's device only the training examples this rank meets in the epoch of
        `permutation`, in the order it meets them; the task's training split becomes that
        shard, indexed by `local_indices`. The whole split is kept once, on the host."""
        if not self.together:
            return
        if self._host_train is None:
            self._host_train = task.data.train.to("cpu")
        device = task.data.train.images.device
        steps = range(0, len(permutation), batch_size)
        mine = torch.cat([self.batch_slice(permutation[s:s + batch_size]) for s in steps]).cpu()
        shard = Split(self._host_train.images.index_select(0, mine), self._host_train.labels.index_select(0, mine))
        task.data = replace(task.data, train=shard.to(device))

    def local_indices(self, step: int, global_batch: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The positions in this rank's shard of its slice of the `step`-th global batch."""
        if not self.together:
            return global_batch
        start = step * (batch_size // self.world_size)
        return torch.arange(start, start + len(self.batch_slice(global_batch)), device=global_batch.device)

    # --- the step ---

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Every replica starts from rank 0's weights (as DistributedDataParallel does)."""
        if not self.together:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)

    def gradient_views(self, params: list[torch.Tensor], extras: int) -> None:
        """Make each parameter's `.grad` a view into one flat buffer, with room after the
        gradients for `extras` numbers, so that one all-reduce covers a whole step."""
        if not self.together:
            return
        total = sum(p.numel() for p in params)
        self._flat = flat = torch.zeros(total + extras, dtype=params[0].dtype, device=params[0].device)
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
        self._grad_numel = total

    def zero_gradients(self) -> None:
        """A rank with no examples in a (last, small) global batch contributes zero gradients."""
        if self._flat is not None:
            self._flat[:self._grad_numel].zero_()

    def reduce_step(self, params: list[torch.Tensor], weight: float, extras: torch.Tensor) -> list[float]:
        """Average the gradients over ranks, this rank's weighted by `weight` (its share of the
        global batch times N: 1 for a full batch), and sum `extras` over ranks; return the sums."""
        if not self.together:
            return extras.tolist()
        flat = self._flat
        n = self._grad_numel
        storage = flat.untyped_storage().data_ptr()
        if any(p.grad is None or p.grad.untyped_storage().data_ptr() != storage for p in params):
            raise RuntimeError("a gradient is no longer a view of the all-reduce buffer; "
                               "gradients must be zeroed in place, not set to None, between steps")
        if weight != 1.0:
            flat[:n].mul_(weight)
        flat[n:].copy_(extras)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat[:n].div_(self.world_size)
        return flat[n:].tolist()

    def broadcast_flag(self, value: bool) -> bool:
        """Rank 0's decision (e.g. early stopping), the same on every rank."""
        if not self.together:
            return value
        flag = torch.tensor([float(value)], device=self._flat.device if self._flat is not None else "cpu")
        dist.broadcast(flag, src=0)
        return bool(flag.item())

