"""Keep freed memory in the process when a training's tensors are large.

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MiB) with
a fresh ``mmap`` and returns it to the kernel when it is freed. A ResNet-50 step at
256 px on a batch of 64 allocates and frees tensors of 64-256 MiB by the hundred,
so every step touches gigabytes of pages new to the process. On a virtual machine,
where a page the guest gave back is slow to touch again, such a step took 57-82 s,
and 29-30 s once freed memory stayed in the process
(``benchmarks/results/heap_reuse.csv``, ``benchmarks/bench_heap.py``; the
``paper-check`` book went from 28.1 to 18.6 minutes, ``paper_check.md`` there). The
``quick`` profile's tensors (64 px, batch 32) stay below the threshold and are not
affected.

:func:`heap_reuse_needed` says whether a training configuration's tensors cross the
threshold, :func:`keep_freed_memory` changes the running process (``mallopt``), and
:func:`kernel_environment` the environment of the processes it starts (the chapters'
kernels read ``GLIBC_TUNABLES`` when they start). A ``GLIBC_TUNABLES`` or
``MALLOC_*`` setting of the user's is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

MMAP_THRESHOLD_MAX = 32 * 2**20
"""glibc's largest mmap threshold on 64-bit systems: larger blocks are always mmapped."""
TRIM_THRESHOLD = 64 * 2**30
"""Free memory at the top of the heap kept before it is returned to the kernel (64 GiB)."""
HEAP_TUNABLES = f"glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
"""``GLIBC_TUNABLES`` that serve every block from the heap and keep what is freed."""
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)
_INT_MAX = 2**31 - 1
_applied = False


def largest_activation_bytes(batch_size: int, input_size: int) -> int:
    """Bytes of the largest float32 activation of a ResNet step: ``layer1``'s output, 256
    channels at a quarter of the input's side, for the whole batch (ResNet-50's width)."""
    side = max(1, input_size // 4)
    return batch_size * 256 * side * side * 4


def heap_reuse_needed(batch_size: int, input_size: int) -> bool:
    """Whether a training step at this batch and input size frees blocks glibc would mmap."""
    return largest_activation_bytes(batch_size, input_size) > MMAP_THRESHOLD_MAX


def _user_set(env: Mapping[str, str]) -> bool:
    tunables = env.get("GLIBC_TUNABLES", "")
    return "glibc.malloc." in tunables or any(k.startswith("MALLOC_") for k in env)


def kernel_environment(env: Mapping[str, str], batch_size: int, input_size: int) -> dict[str, str]:
    """``env`` with :data:`HEAP_TUNABLES` added to ``GLIBC_TUNABLES`` when
    :func:`heap_reuse_needed` and the user set no malloc tunable; otherwise unchanged."""
    out = dict(env)
    if heap_reuse_needed(batch_size, input_size) and not _user_set(env):
        out["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), HEAP_TUNABLES]))
    return out


@contextmanager
def heap_reuse_for_children(batch_size: int, input_size: int) -> Iterator[None]:
    """Within the block, processes started from this one (a chapter's kernel) get
    :func:`kernel_environment`; the environment is restored afterwards."""
    before = os.environ.get("GLIBC_TUNABLES")
    os.environ.update(kernel_environment(os.environ, batch_size, input_size))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GLIBC_TUNABLES", None)
        else:
            os.environ["GLIBC_TUNABLES"] = before


def keep_freed_memory(batch_size: int, input_size: int) -> bool:
    """Serve the running process's large blocks from the heap and keep freed memory, when
    :func:`heap_reuse_needed` on a glibc system and the user set no malloc tunable.

    Returns whether the setting is in force (applied now or before). ``mallopt`` takes
    an ``int``, so the trim threshold here is 2 GiB; a process started with
    :func:`kernel_environment` keeps up to :data:`TRIM_THRESHOLD`.
    """
    global _applied
    if _applied or _user_set(os.environ):
        return _applied or "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", "")
    if not sys.platform.startswith("linux") or not heap_reuse_needed(batch_size, input_size):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    return _applied
