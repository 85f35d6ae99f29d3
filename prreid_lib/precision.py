"""Mixed precision of a training run: float16 on CUDA, bfloat16 on CPUs that have it.

On the 2-core reference machine (AVX512-BF16) bfloat16 autocast with
channels-last memory trains 1.8x faster than float32, with the same part gain
(``benchmarks/results/train_quality.csv``).
"""

from __future__ import annotations

import torch

from prreid_lib.recipes import RecipeOptions


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
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
