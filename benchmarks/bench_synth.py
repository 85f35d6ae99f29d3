"""Wall time of ``generate_synthveh`` for the smoke and quick profiles.

Generates each profile's SynthVeh into a temporary folder (removed afterwards)
with the default number of worker processes, or ``--workers N``, and records the
seconds and the number of images. The quick profile must stay under 60 s on
2 cores. Results go to ``benchmarks/results/synth_time.csv`` (columns profile,
seconds, n_images, date, commit; a row of the same profile is replaced).
Usage: ``python benchmarks/bench_synth.py [--profiles smoke quick] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import subprocess
import tempfile
import time
from pathlib import Path

from prreid_lib.config import get_profile
from prreid_lib.synthveh import generate_synthveh

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "synth_time.csv"
COLUMNS = ["profile", "seconds", "n_images", "date", "commit"]


def time_profile(name: str, workers: int) -> dict:
    """Generate profile ``name`` once into a temporary folder; return a result row."""
    with tempfile.TemporaryDirectory(prefix="synthbench-") as tmp:
        start = time.perf_counter()
        out = generate_synthveh(get_profile(name).synth, Path(tmp), seed=0, workers=workers)
        seconds = time.perf_counter() - start
        n_images = sum(1 for _ in out.rglob("*.jpg"))
    return {"profile": name, "seconds": f"{seconds:.2f}", "n_images": n_images}


def commit_id() -> str:
    """Short commit hash of the repository ('+' when the tree is dirty), or 'unknown'."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=HERE, check=True
        ).stdout.strip()
        return head + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["smoke", "quick"])
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    args = ap.parse_args()
    rows = {}
    if RESULTS.is_file():
        with open(RESULTS, newline="") as f:
            rows = {r["profile"]: r for r in csv.DictReader(f)}
    date, commit = datetime.date.today().isoformat(), commit_id()
    for name in args.profiles:
        row = time_profile(name, args.workers) | {"date": date, "commit": commit}
        rows[name] = row
        print(f"{name}: {row['seconds']} s for {row['n_images']} images ({args.workers} workers)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows[k] for k in sorted(rows))


if __name__ == "__main__":
    main()
