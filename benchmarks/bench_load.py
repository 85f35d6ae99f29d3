"""How the part detector's training slows when other jobs share the cores (not a test).

Trains the quick profile's YOLO detector for a few epochs on quick SynthVeh's
part labels, on idle cores and beside ``--busy`` single-thread processes that
multiply matrices without pause (another training, say), under each OpenMP wait
setting (``--policies``): ``auto`` (none set: ``prreid_lib`` measures the load at
import and picks ``ACTIVE`` or ``PASSIVE``, see ``prreid_lib/cpu_share.py``),
``default`` (set empty: GNU OpenMP spins a while, 300,000 turns, before a waiting
thread sleeps), ``ACTIVE`` (waiting threads spin),
``PASSIVE`` (they sleep at once, so a core given to another process is not burnt
spinning) and ``SPIN<n>`` (``GOMP_SPINCOUNT=n``: a shorter spin, then sleep). One
row per run is appended to ``benchmarks/results/load_slowdown.csv``.

Usage: ``python benchmarks/bench_load.py [--epochs 2] [--busy 0 2] [--policies auto PASSIVE]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

_TRAIN = """
import os, sys, time
from dataclasses import replace
import prreid_lib  # before torch: the OpenMP wait setting is chosen on import
import torch
torch.set_num_threads(int(sys.argv[1]))
from prreid_lib.config import get_profile
from prreid_lib.detector import train_detector
from prreid_lib.studies.data import resolve_data_root, resolve_parts_yaml
prof = get_profile("quick")
root = resolve_data_root(prof, None, data_seed=0)
cfg = replace(prof.detector, epochs=int(sys.argv[2]))
tic = time.perf_counter()
train_detector(resolve_parts_yaml(root), cfg, output_dir=sys.argv[3], force=True)
print(os.environ.get("OMP_WAIT_POLICY", ""), time.perf_counter() - tic)
"""


def _busy() -> None:
    """One thread of matrix products, forever (the other job)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np

    a = np.random.default_rng(0).random((256, 256))
    while True:
        a = (a @ a) / 256.0


def _wait_env(policy: str) -> dict[str, str]:
    """The environment of one wait setting (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy == "auto":
        pass  # prreid_lib picks the setting from the load it measures
    elif policy == "default":
        env["OMP_WAIT_POLICY"] = ""  # prreid_lib picks a setting only when the variable is unset
    elif policy.startswith("SPIN"):
        env["OMP_WAIT_POLICY"], env["GOMP_SPINCOUNT"] = "", policy[4:]
    else:
        env["OMP_WAIT_POLICY"] = policy
    return env


def _train_seconds(policy: str, threads: int, epochs: int, out: str) -> tuple[str, float]:
    """The wait setting in force (empty: GNU OpenMP's default) and the training's seconds."""
    env = _wait_env(policy)
    cmd = [sys.executable, "-c", _TRAIN, str(threads), str(epochs), out]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    in_force, seconds = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    return in_force.strip(), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--busy", type=int, nargs="+", default=[0, 2], help="single-thread jobs beside it"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the detector")
    parser.add_argument("--policies", nargs="+", default=["auto", "default", "PASSIVE"])
    parser.add_argument(
        "--runs", default="/tmp/prreid-load-runs", help="folder for the detector's training runs"
    )
    parser.add_argument("--out", default=str(RESULTS / "load_slowdown.csv"))
    args = parser.parse_args()
    rows = []
    for busy in args.busy:
        for policy in args.policies:
            others = [mp.Process(target=_busy, daemon=True) for _ in range(busy)]
            for p in others:
                p.start()
            try:
                in_force, seconds = _train_seconds(policy, args.threads, args.epochs, args.runs)
            finally:
                for p in others:
                    p.terminate()
            rows.append({
                "date": time.strftime("%Y-%m-%d %H:%M"), "job": "detector (quick)",
                "epochs": args.epochs, "threads": args.threads, "busy_jobs": busy,
                "wait_policy": policy, "in_force": in_force, "seconds": round(seconds, 1),
                "cpu_count": os.cpu_count(),
            })  # fmt: skip
            print(rows[-1], flush=True)
    path = Path(args.out)
    pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)


if __name__ == "__main__":
    main()
