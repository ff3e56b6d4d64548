"""Where a run executes: the device and, under ``torchrun``, the DDP process group.

``resolve_runtime`` reads ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (set by ``torchrun``, or by a test
that spawns processes), starts the process group (NCCL on GPUs, gloo on the CPU) and picks the
device. ``device: cuda`` on a machine without a GPU is a ``ConfigError`` with the fix.

Example:
    >>> resolve_runtime("cpu").device.type, resolve_runtime("cpu").world_size
    ('cpu', 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lanner.core.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """The device, this process's rank and the number of processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_runtime(device: str = "auto") -> Runtime:
    """The run's device (``auto``: CUDA when present) and process group (started here when needed)."""
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError(
            "device 'cuda' was requested but no CUDA GPU is visible to PyTorch",
            where="training.device",
            fix="set training.device: cpu (or auto), or install a CUDA build of torch",
        )
    use_cuda = device == "cuda" or (device == "auto" and has_cuda)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return Runtime(torch.device("cuda", local_rank), rank, world_size)
    return Runtime(torch.device("cpu"), rank, world_size)


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over every process (itself when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
