"""Mixed precision of a training run: float16 on CUDA, bfloat16 on CPUs that have it.

On a 2-core machine with AVX512-BF16 bfloat16 autocast with channels-last memory
trained 1.8x faster than float32, with the same part-regularized minus baseline difference
(``benchmarks/results/train_quality.csv``). On a CPU without it (AVX512 only) oneDNN
still accepts bfloat16 but emulates it, and the same step is slower than float32:
ResNet-18 at 64 px took 0.91 s against 0.71 s a batch of 32, ResNet-50 at 256 px
twice as long (``benchmarks/results/precision.md``). So bfloat16 is used only where
the CPU computes it natively.
"""

from __future__ import annotations

from pathlib import Path

import torch

from prreid_lib.recipes import RecipeOptions

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags (``/proc/cpuinfo``) of instructions that compute bfloat16 natively."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them; empty where the file is missing."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX) and oneDNN uses it.

    oneDNN reports bfloat16 support on any AVX512 CPU, where it is emulated and slower
    than float32; the CPU's own flags decide.
    """
    if not cpu_flags(cpuinfo) & set(NATIVE_BF16_FLAGS):
        return False
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(dev: torch.device, options: RecipeOptions) -> torch.dtype | None:
    """Mixed-precision type of a run: float16 on CUDA (``amp``), bfloat16 on a CPU with
    native support (``cpu_bf16``), else ``None`` (float32)."""
    if dev.type == "cuda":
        return torch.float16 if options.amp else None
    if dev.type == "cpu" and options.cpu_bf16 and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def float32_outputs(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's outputs with floating tensors cast to float32 (the loss of an autocast
    forward pass is computed in float32); other tensors (masks) unchanged."""
    return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
