"""bfloat16 autocast against float32 for one training step on this CPU (not a test).

One SGD step (forward, backward, update) of the part-regularized model on random
tensors, channels-last, for ResNet-18 and ResNet-18 cut after ``layer3`` at 64 px
(batch 32) and ResNet-50 at 256 px (batch 16), under each precision; prints the
median of the timed steps (the first is left out). Whether bfloat16 pays depends on
the CPU: with AVX512-BF16 or AMX it computes bfloat16 natively, with AVX512 alone
oneDNN emulates it (:func:`prreid_lib.precision.cpu_has_native_bf16`).

Usage: ``python benchmarks/bench_precision.py [--threads 2] [--steps 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from prreid_lib.model import PartRegularizedReID
from prreid_lib.precision import cpu_flags

CASES = (("resnet18", 64, 32), ("resnet18_l3", 64, 32), ("resnet50", 256, 16))


def step_seconds(arch: str, size: int, batch: int, bf16: bool, steps: int) -> float:
    """Median seconds of ``steps`` training steps (after one untimed step)."""
    model = PartRegularizedReID(120, arch=arch).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    side = model.grid_size(size)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
    y = torch.randint(0, 120, (batch,))
    masks = (torch.rand(batch, 3, side, side) > 0.5).float()
    times = []
    for _ in range(steps + 1):
        tic = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, masks)
            logits = torch.cat([out["global_logits"], out["part_logits"].flatten(0, 1)])
        loss = torch.nn.functional.cross_entropy(logits.float(), y.repeat(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - tic)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    native = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "avx512f"})
    print(f"CPU flags: {', '.join(native) or 'none of avx512f, avx512_bf16, amx_bf16'}")
    for arch, size, batch in CASES:
        fp32 = step_seconds(arch, size, batch, False, args.steps)
        bf16 = step_seconds(arch, size, batch, True, args.steps)
        print(f"{arch:12s} {size:3d} px batch {batch}: float32 {fp32:.2f} s, "
              f"bfloat16 {bf16:.2f} s ({bf16 / fp32:.2f} x)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
