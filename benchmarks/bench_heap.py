"""Training steps at the paper's sizes with and without freed memory kept (not a test).

Runs ``--steps`` training steps of the ``paper-check`` model (ResNet-50, last stride 1,
float32) on a random batch (``--batch`` images at ``--size`` px), each setting in a fresh
process: ``default`` (glibc's malloc as it comes: blocks over 32 MiB are mmapped and
given back when freed) and ``keep`` (``prreid_lib.heap.HEAP_TUNABLES``: every block from
the heap, freed memory kept). One row per step goes to
``benchmarks/results/heap_reuse.csv`` with the process's peak resident memory and its
minor page faults.

Usage: ``python benchmarks/bench_heap.py [--steps 3] [--batch 64] [--size 256]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

_STEPS = """
import json, resource, sys, time
import torch
from prreid_lib.model import PartRegularizedReID
steps, batch, size = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(2)
torch.manual_seed(0)
model = PartRegularizedReID(num_classes=16, arch="resnet50", last_stride=1)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(batch, 3, size, size), torch.randint(0, 16, (batch,))
for step in range(steps):
    tic = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x)["global_logits"], y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"step": step + 1, "seconds": time.perf_counter() - tic,
                      "loss": round(float(loss), 4), "peak_gib": usage.ru_maxrss / 2**20,
                      "minor_faults": usage.ru_minflt}), flush=True)
"""


def run_setting(setting: str, steps: int, batch: int, size: int) -> list[dict]:
    """The rows of one setting, run in a fresh process."""
    from prreid_lib.heap import HEAP_TUNABLES

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if setting == "keep":
        env["GLIBC_TUNABLES"] = HEAP_TUNABLES
    cmd = [sys.executable, "-c", _STEPS, str(steps), str(batch), str(size)]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [r | {"setting": setting, "batch": batch, "size": size} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--settings", nargs="+", default=["default", "keep"])
    parser.add_argument("--out", default=str(RESULTS / "heap_reuse.csv"))
    args = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    for setting in args.settings:
        for row in run_setting(setting, args.steps, args.batch, args.size):
            row |= {"seconds": round(row["seconds"], 2), "peak_gib": round(row["peak_gib"], 2)}
            rows.append({"date": stamp} | row)
            print(rows[-1], flush=True)
    out = Path(args.out)
    frame = pd.DataFrame(rows)
    frame.to_csv(out, mode="a", header=not out.exists(), index=False)


if __name__ == "__main__":
    main()
