"""Peak memory and speed of the decoded image cache on a large set (default 20,000 images, 256 px).

Writes ``--n`` random JPEG images (``--src`` px) to a temporary folder, then, in
a fresh child process per mode, decodes them at ``--size`` px with
:func:`prreid_lib.pipeline.imageset.decode_images` and reads the set once in
shuffled batches of 64 (what a training epoch does). Modes: ``cache`` (decoded
a chunk at a time into the cache file, then memory-mapped: bounded memory) and
``memory`` (no cache folder: the whole set in RAM). Each row records decode
images/s, the epoch read time, the child's peak resident memory (``VmHWM``,
which counts the file pages mapped and touched, reclaimable) and its peak
anonymous memory (``RssAnon`` sampled every 20 ms, what cannot be paged out),
in ``benchmarks/results/image_cache.csv`` (a row of the same mode, n and size
is replaced). The 20,000-image run needs about 4 GB of free disk and, for the
``memory`` mode, 4 GB of RAM; run it on otherwise idle cores.
Usage: ``python benchmarks/bench_image_cache.py [--n 20000] [--modes cache memory]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "image_cache.csv"
COLUMNS = [
    "mode", "n_images", "size", "decode_s", "decode_img_per_s", "epoch_read_s",
    "peak_rss_mib", "peak_anon_mib", "set_mib", "cpus", "date", "commit",
]  # fmt: skip

CHILD = r"""
import json, sys, threading, time
import numpy as np, torch
from prreid_lib.pipeline.imageset import decode_images

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    return float("nan")

peak = [0.0]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], status("RssAnon"))
        time.sleep(0.02)

paths, size, cache, workers = json.load(open(sys.argv[1]))
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
images, _ = decode_images(paths, size, cache or None, workers)
decode = time.perf_counter() - t0
order = np.random.default_rng(0).permutation(len(images))
t0 = time.perf_counter()
total = 0.0
for start in range(0, len(order), 64):
    idx = torch.from_numpy(np.sort(order[start:start + 64]))
    total += float(images[idx].float().mean())
read = time.perf_counter() - t0
done.set()
peak[0] = max(peak[0], status("RssAnon"))
print(json.dumps({"decode_s": decode, "epoch_read_s": read, "peak_rss_mib": status("VmHWM"),
                  "peak_anon_mib": peak[0]}))
"""


def make_images(folder: Path, n: int, src: int) -> list[str]:
    """``n`` random-texture JPEGs of ``src`` x ``src`` px in ``folder`` (threads)."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> str:
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, (src // 8, src // 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((src, src), Image.Resampling.BILINEAR)
        path = folder / f"{i:06d}.jpg"
        img.save(path, quality=90)
        return str(path)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(one, range(n)))


def run_mode(mode: str, paths: list[str], size: int, tmp: Path, workers: int) -> dict:
    """Decode and read the set in a fresh child process; its timings and peak memory."""
    cache = str(tmp / f"cache-{mode}") if mode == "cache" else ""
    spec = tmp / f"spec-{mode}.json"
    spec.write_text(json.dumps([paths, size, cache, workers]))
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    n = len(paths)
    return {
        "mode": mode,
        "n_images": n,
        "size": size,
        "decode_s": f"{out['decode_s']:.2f}",
        "decode_img_per_s": f"{n / out['decode_s']:.0f}",
        "epoch_read_s": f"{out['epoch_read_s']:.2f}",
        "peak_rss_mib": f"{out['peak_rss_mib']:.0f}",
        "peak_anon_mib": f"{out['peak_anon_mib']:.0f}",
        "set_mib": f"{n * 3 * size * size / 2**20:.0f}",
        "cpus": os.cpu_count(),
    }


def commit_id() -> str:
    """Short commit hash ('+' when the tree is dirty), or 'unknown'."""
    try:
        git = ["git", "-C", str(HERE)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
        return head + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(rows: list[dict], path: Path) -> None:
    """Add ``rows`` to the results CSV, replacing rows of the same mode, n and size."""
    old = []
    if path.is_file():
        with open(path, newline="") as handle:
            old = list(csv.DictReader(handle))
    keys = {(r["mode"], str(r["n_images"]), str(r["size"])) for r in rows}
    kept = [r for r in old if (r["mode"], r["n_images"], r["size"]) not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(kept + rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="number of images")
    ap.add_argument("--size", type=int, default=256, help="decoded size (px)")
    ap.add_argument("--src", type=int, default=320, help="size of the JPEG files (px)")
    ap.add_argument("--workers", type=int, default=4, help="decoding threads")
    ap.add_argument("--modes", nargs="+", choices=("cache", "memory"), default=["cache"])
    ap.add_argument("--out", type=Path, default=RESULTS, help="results CSV ('-': print only)")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: system)")
    args = ap.parse_args()
    stamp = {"date": datetime.date.today().isoformat(), "commit": commit_id()}
    with tempfile.TemporaryDirectory(prefix="cachebench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        paths = make_images(tmp / "images", args.n, args.src)
        rows = [run_mode(m, paths, args.size, tmp, args.workers) | stamp for m in args.modes]
    for row in rows:
        print(", ".join(f"{k} {row[k]}" for k in COLUMNS))
    if str(args.out) != "-":
        record(rows, args.out)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
