"""Data-parallel training under `torchrun`: the same command, DistributedDataParallel inside.

`torchrun --nproc_per_node N nas train-supernet ...` sets RANK / WORLD_SIZE / LOCAL_RANK;
`DistContext.from_env` then joins the process group (gloo on CPU, NCCL on CUDA). Every rank
reads the same global batch (the loader's order depends only on the seed) and trains its
`rank::world_size` slice; gradients are averaged by DDP, so N ranks train like one process with
the global batch. Subnet draws come from (seed, step), so all ranks activate the same subnet
at the same time, which DDP requires. Only rank 0 writes artifacts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from nas.errors import ConfigError
from nas.runtime import resolve_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        """The job described by torchrun's environment (single process when absent)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, requested: str) -> torch.device:
        """The device this rank trains on: `cuda:<local_rank>` under a multi-GPU job."""
        device = resolve_device(requested)
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def setup(self, device: torch.device) -> None:
        """Join the process group (no-op for a single process)."""
        if not self.enabled or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)
        logger.info("rank %d/%d joined (%s)", self.rank, self.world_size, backend)

    def wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        """`net` itself, or a DDP wrapper of it under a multi-process job."""
        if not self.enabled:
            return net
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # Subnets leave whole blocks unused (elastic depth): DDP must look for unused parameters.
        return DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)

    def shard(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of a global batch."""
        if not self.enabled:
            return images, labels
        return images[self.rank :: self.world_size], labels[self.rank :: self.world_size]

    def check_batch(self, batch_size: int) -> None:
        if self.enabled and batch_size < self.world_size:
            raise ConfigError(
                f"batch_size: expected at least one image per process ({self.world_size}), "
                f"got {batch_size}"
            )

    def rank0_flag(self, flag: bool) -> bool:
        """Rank 0's `flag` on every rank (a decision all ranks must take together)."""
        if not (self.enabled and dist.is_initialized()):
            return flag
        device = torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend() == "nccl" else torch.device("cpu")
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def teardown(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
