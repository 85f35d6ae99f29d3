"""Time and disk of each student notebook (``prreid handout``) run alone in an empty folder.

Writes the handout to a temporary folder, then executes each chapter's student
notebook with papermill in a fresh, empty working folder of its own (the way a
student meets it: nothing generated, nothing trained), with the decoded image cache
(``PRREID_CACHE_DIR``) inside that folder. Records the wall time and the size of
``data/`` (SynthVeh), ``runs/`` (trainings, tables) and the image cache afterwards,
one row per chapter and profile in ``benchmarks/results/handout_alone.csv`` (a row of
the same chapter and profile is replaced), with the cores' load average when it started.
A chapter that fails is reported and
recorded nowhere; the script then exits 1. The handout's README reads this table.
Usage: ``python benchmarks/bench_handout.py [--profile smoke] [--chapters 01 04]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "handout_alone.csv"
COLUMNS = [
    "chapter", "profile", "seconds", "data_mib", "runs_mib", "cache_mib",
    "cpu_count", "load_1min", "date", "commit",
]  # fmt: skip


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


def mib(folder: Path) -> float:
    """Size of the files under ``folder`` in MiB (0 when it does not exist)."""
    if not folder.is_dir():
        return 0.0
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 2**20, 1)


def run_alone(notebook: Path, profile: str, device: str, work: Path) -> dict[str, object]:
    """Execute ``notebook`` in the empty folder ``work``; its time and the sizes it left."""
    import papermill as pm

    work.mkdir(parents=True)
    os.environ["PRREID_CACHE_DIR"] = str(work / "cache")
    load = round(os.getloadavg()[0], 1)  # other work on the cores slows the chapter
    start = time.perf_counter()
    pm.execute_notebook(
        str(notebook),
        str(work / f"executed-{notebook.name}"),
        parameters={"profile": profile, "device": device},
        cwd=str(work),
        progress_bar=False,
    )
    return {
        "chapter": notebook.stem,
        "profile": profile,
        "seconds": round(time.perf_counter() - start, 1),
        "data_mib": mib(work / "data"),
        "runs_mib": mib(work / "runs"),
        "cache_mib": mib(work / "cache"),
        "cpu_count": os.cpu_count(),
        "load_1min": load,
    }


def read_rows() -> dict[tuple[str, str], dict[str, str]]:
    if not RESULTS.is_file():
        return {}
    with open(RESULTS, newline="") as f:
        return {(r["chapter"], r["profile"]): r for r in csv.DictReader(f)}


def write_rows(rows: dict[tuple[str, str], dict]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows[k] for k in sorted(rows))


def main() -> int:
    from prreid_lib.chapters import list_chapters
    from prreid_lib.handout import write_handout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--chapters", nargs="*", help="prefixes (default: every chapter)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    chapters = [
        c for c in list_chapters() if not args.chapters or c.stem.startswith(tuple(args.chapters))
    ]
    date, commit, failed = datetime.date.today().isoformat(), commit_id(), []
    with tempfile.TemporaryDirectory(prefix="bench-handout-") as tmp:
        handout = write_handout(Path(tmp) / "handout", chapters)
        for chapter in chapters:
            try:
                row = run_alone(
                    handout / chapter.name, args.profile, args.device, Path(tmp) / chapter.stem
                )
            except Exception as err:  # a failing chapter is reported, the others still run
                print(f"{chapter.stem}: FAILED: {type(err).__name__}: {str(err)[:300]}")
                failed.append(chapter.stem)
                continue
            rows = read_rows()  # re-read: a row per chapter is kept as soon as it is measured
            rows[(row["chapter"], row["profile"])] = row | {"date": date, "commit": commit}
            write_rows(rows)
            print(
                f"{row['chapter']}: {row['seconds']} s; data {row['data_mib']} MiB, runs "
                f"{row['runs_mib']} MiB, image cache {row['cache_mib']} MiB",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
