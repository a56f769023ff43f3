"""Data-parallel training under `torchrun`: the same command, each process a replica.

`torchrun --nproc_per_node N -m nas -- train-supernet ...` sets RANK / WORLD_SIZE / LOCAL_RANK;
`DistContext.from_env` reads them and `joined` joins the process group (gloo on CPU, NCCL with
one GPU per local rank). Every rank reads the same global batch (the loader's order depends only
on the seed) and trains its `rank::world_size` slice of it; the gradients are averaged over the
ranks before each optimizer step, so the replicas hold identical parameters after every step.
Subnet draws come from (seed, step), so all ranks train the same subnets at the same time. Only
rank 0 writes artifacts; checkpoints carry every rank's RNG state, so a resumed job repeats the
lost steps exactly.

Failures must not leave a rank waiting at a collective for a peer that is gone: code that may
fail on one rank only (a dataset missing on one machine, a checkpoint on an unshared disk) runs
inside `agreed`, after which either every rank continues or every rank raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from nas.errors import ConfigError, DeviceError, NasError
from nas.runtime import resolve_device

logger = logging.getLogger(__name__)
_MESSAGE_BYTES = 1024  # a failed rank's message as its peers print it


class PeerFailedError(NasError):
    """Another rank of the job failed; this one stops too (its own input was fine)."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # how many times torchrun (--max-restarts) restarted the job's workers before this attempt
    restarts: int = 0

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
        restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        if world <= 1:
            return cls(restarts=restarts)
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")),
                   restarts)

    def device(self, requested: str) -> torch.device:
        """The device this rank trains on: `cuda:<local_rank>` under a multi-GPU job."""
        device = resolve_device(requested)
        if not (self.enabled and device.type == "cuda"):
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {requested}: expected one GPU per process, got local rank "
                f"{self.local_rank} with {torch.cuda.device_count()} GPU(s) visible; pass "
                f"torchrun --nproc_per_node {torch.cuda.device_count()} or fewer")
        return torch.device("cuda", self.local_rank)

    # -- the process group ----------------------------------------------------------------
    @contextlib.contextmanager
    def joined(self, device: torch.device) -> Iterator[None]:
        """Inside: this rank is in the process group (no-op for a single process)."""
        if not self.enabled or dist.is_initialized():  # a caller's group stays the caller's
            yield
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)
        logger.info("rank %d/%d joined (%s)", self.rank, self.world_size, backend)
        try:
            yield
        finally:
            dist.destroy_process_group()

    def _collective_device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @property
    def _active(self) -> bool:
        return self.enabled and dist.is_initialized()

    @contextlib.contextmanager
    def agreed(self, what: str) -> Iterator[None]:
        """Run the body on every rank; when it raises on any rank, every rank raises.

        The failing rank raises its own error, the others a `PeerFailedError` quoting it, so
        no rank goes on to a collective its failed peer never reaches. The body itself must
        run no collective (a rank that failed early would skip it).
        """
        if not self._active:
            yield
            return
        error: Exception | None = None
        try:
            yield
        except Exception as exc:  # bugs included: a peer must not hang on them either
            error = exc
        flags = torch.zeros(self.world_size, dtype=torch.int64, device=self._collective_device())
        flags[self.rank] = int(error is not None)
        dist.all_reduce(flags)
        failed = [rank for rank, flag in enumerate(flags.tolist()) if flag]
        if not failed:
            return
        text = self._broadcast_text(_describe(error) if self.rank == failed[0] else "",
                                    src=failed[0])
        if error is not None:
            raise error
        raise PeerFailedError(f"rank {failed[0]} of {self.world_size} failed {what}: {text}")

    def _broadcast_text(self, text: str, *, src: int) -> str:
        data = text.encode()[:_MESSAGE_BYTES]
        buffer = torch.zeros(_MESSAGE_BYTES, dtype=torch.uint8, device=self._collective_device())
        if self.rank == src:
            buffer[: len(data)] = torch.tensor(list(data), dtype=torch.uint8)
        dist.broadcast(buffer, src=src)
        return bytes(buffer.cpu().tolist()).rstrip(b"\0").decode(errors="replace")

    # -- data parallelism -----------------------------------------------------------------
    # Gradients are averaged explicitly rather than by DistributedDataParallel: every rank
    # trains the same subnets, so the same parameters have gradients everywhere and one
    # all-reduce after a step's backward passes (sandwich: several) is all it takes. DDP
    # would need find_unused_parameters (an extra graph traversal each step, and a warning
    # on every rank when a step uses every parameter) and would broadcast the batch-norm
    # buffers before every forward pass.
    def replicate(self, net: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (a collective)."""
        if not self._active:
            return
        with torch.no_grad():
            for tensor in [*net.parameters(), *net.buffers()]:
                dist.broadcast(tensor, src=0)

    def average_gradients(self, net: nn.Module) -> None:
        """Replace each gradient of `net` by its mean over the ranks (a collective)."""
        if not self._active:
            return
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def shard(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of a global batch."""
        if not self.enabled:
            return images, labels
        return images[self.rank :: self.world_size], labels[self.rank :: self.world_size]

    def check_batch(self, batch_size: int) -> None:
        """Every rank gets an equal, non-empty slice: the ranks' gradients are averaged with
        equal weights, which gives the global batch's mean only when the slices are equal."""
        if not self.enabled or (batch_size >= self.world_size
                                and batch_size % self.world_size == 0):
            return
        lower = batch_size // self.world_size * self.world_size
        hint = " or ".join(str(n) for n in (lower, lower + self.world_size) if n > 0)
        raise ConfigError(
            f"batch_size: expected a multiple of the number of processes ({self.world_size}) "
            f"so that each trains an equal slice of every batch, got {batch_size}; pass "
            f"--batch-size {hint}")

    # -- agreement and checkpoints --------------------------------------------------------
    def rank0_flag(self, flag: bool) -> bool:
        """Rank 0's `flag` on every rank (a decision all ranks must take together)."""
        if not self._active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._collective_device())
        dist.broadcast(value, src=0)
        return bool(value.item())

    def gather_rng(self) -> list[torch.Tensor] | None:
        """Every rank's torch RNG state (CPU generator, then this rank's GPU's), on every rank;
        None for a single process."""
        if not self._active:
            return None
        own = torch.get_rng_state()
        if torch.cuda.is_available() and dist.get_backend() == "nccl":
            own = torch.cat([own, torch.cuda.get_rng_state()])
        device = self._collective_device()
        parts = [torch.empty_like(own, device=device) for _ in range(self.world_size)]
        dist.all_gather(parts, own.to(device))
        return [part.cpu() for part in parts]

    def restore_rng(self, states: list[torch.Tensor] | None) -> bool:
        """Set this rank's RNG from `gather_rng`'s list; False when it has no entry (another
        number of processes saved it)."""
        if not self.enabled or states is None or len(states) != self.world_size:
            return False
        own = states[self.rank]
        cpu = torch.get_rng_state()
        torch.set_rng_state(own[: cpu.numel()])
        if own.numel() > cpu.numel():
            torch.cuda.set_rng_state(own[cpu.numel():])
        return True

    def barrier(self) -> None:
        if self._active:
            dist.barrier()


def _describe(error: Exception | None) -> str:
    if isinstance(error, NasError):
        return str(error)
    return f"{type(error).__name__}: {error}"


__all__ = ["DistContext", "PeerFailedError"]
