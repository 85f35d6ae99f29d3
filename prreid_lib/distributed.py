"""Several processes (``torchrun --nproc-per-node N``): setup, rank, reductions.

The training entry point is the same with one process or N. Under
``torchrun`` the environment carries ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`init_from_env` starts the process group (NCCL on
GPUs, gloo on CPUs). Rank 0 alone logs and writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group is running."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(device: str = "auto") -> bool:
    """Start the process group when launched by ``torchrun`` with ``WORLD_SIZE`` > 1.

    Returns True when a group was started here. ``device`` "cpu" forces the
    gloo backend; otherwise NCCL is used when CUDA is available.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return False
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def local_device(device: str = "auto") -> torch.device:
    """``auto`` -> this process's GPU (``cuda:LOCAL_RANK``) when there is one, else the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over all processes (the tensor itself without a process group)."""
    if is_distributed():
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if is_distributed():
        dist.barrier()
