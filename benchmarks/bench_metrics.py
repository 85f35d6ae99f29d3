"""Benchmark of prreid_lib.metrics against fast-reid's evaluator (python and Cython).

Case ``veri``: a VeRi-776-sized problem (1678 queries x 11579 gallery, 776 ids, 20 cameras,
256-d features = id centre + noise, Euclidean float32 distances). Times, on the same
distance matrix: ``evaluate_ranking`` (numpy, single-threaded), fast-reid 1.4.0's python
``eval_market1501`` and its Cython ``evaluate_cy``, and one numpy argsort of the matrix;
checks that all give the same CMC and mAP (to 1e-6: fast-reid sorts float32 ties
unstably and sums AP in float32). Case ``large``: 10k queries x 100k gallery
through ``evaluate_features`` in a fresh process, recording its peak RSS.

Needs fast-reid and Cython: ``pip install --no-deps fastreid==1.4.0 cython`` (fast-reid's
own dependencies pin torch 1.13.1, hence --no-deps; only its pure files are used).
``rank_cy.pyx`` is compiled on first use into ``benchmarks/_cache/`` (git-ignored).
Timings are medians over rounds that run every implementation in turn, in one process;
peak RSS comes from one run of each in a fresh process. Results go to
``benchmarks/results/metrics_bench.csv`` (rows of the same case and implementation are
replaced). Usage: ``python benchmarks/bench_metrics.py [--repeats 7] [--skip-large]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import importlib.util
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
CACHE = HERE / "_cache"
RESULTS = HERE / "results" / "metrics_bench.csv"
COLUMNS = ["case", "implementation", "seconds", "mAP", "rank1", "peak_mb", "date", "commit"]


def problem(nq: int, ng: int, n_ids: int, n_cams: int, seed: int = 0, dim: int = 256):
    """Features of id centre + noise (so that mAP is neither 0 nor 1), ids and cameras."""
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng)
    q_cams, g_cams = rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)
    centres = rng.standard_normal((n_ids, dim), dtype=np.float32)
    q = centres[q_pids] + 1.5 * rng.standard_normal((nq, dim), dtype=np.float32)
    g = centres[g_pids] + 1.5 * rng.standard_normal((ng, dim), dtype=np.float32)
    return q, g, q_pids, g_pids, q_cams, g_cams


def fastreid_dir() -> Path:
    spec = importlib.util.find_spec("fastreid")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fastreid is not installed: pip install --no-deps fastreid==1.4.0 cython")
    return Path(next(iter(spec.submodule_search_locations))) / "evaluation"


def load_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank.py warns that its Cython part is missing
        spec.loader.exec_module(module)
    return module


def fastreid_cython():
    """fast-reid's rank_cy.pyx, compiled once into benchmarks/_cache/<hash>/."""
    pyx = fastreid_dir() / "rank_cylib" / "rank_cy.pyx"
    key = hashlib.sha256(pyx.read_bytes() + sys.version.encode()).hexdigest()[:12]
    build = CACHE / f"rank_cy-{key}"
    built = list(build.glob("rank_cy*.so")) + list(build.glob("rank_cy*.pyd"))
    if not built:
        from Cython.Build import cythonize
        from setuptools import Extension
        from setuptools.dist import Distribution

        build.mkdir(parents=True, exist_ok=True)
        shutil.copy(pyx, build / "rank_cy.pyx")
        ext = Extension("rank_cy", [str(build / "rank_cy.pyx")], include_dirs=[np.get_include()])
        dist = Distribution({"ext_modules": cythonize([ext], language_level=3, quiet=True)})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib, cmd.build_temp = str(build), str(build / "tmp")
        cmd.ensure_finalized()
        cmd.run()
        built = list(build.glob("rank_cy*.so")) + list(build.glob("rank_cy*.pyd"))
    return load_file(built[0], "rank_cy")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


VERI_IMPLS = {
    "prreid": "prreid evaluate_ranking",
    "argsort": "numpy argsort only (reference)",
    "cython": "fast-reid 1.4.0 Cython evaluate_cy",
    "python": "fast-reid 1.4.0 python eval_market1501",
    "baseline": "baseline: imports + distance matrix",
}


def veri_runners(d, qp, gp, qc, gc) -> dict:
    """One callable per implementation, each returning (mAP, CMC list) or None."""
    from prreid_lib.metrics import evaluate_ranking

    def ours():
        r = evaluate_ranking(d, qp, gp, qc, gc, 50)
        return r.mAP, r.cmc.tolist()

    def fastreid(fn, *extra):
        def run():
            cmc, ap, _ = fn(d, qp, gp, qc, gc, 50, *extra)
            return float(np.mean(ap)), np.asarray(cmc, dtype=float).tolist()

        return run

    py = load_file(fastreid_dir() / "rank.py", "fastreid_rank").eval_market1501
    return {
        "prreid": ours,
        "argsort": lambda: (np.argsort(d, axis=1), None)[1],
        "cython": fastreid(fastreid_cython().evaluate_cy, False),
        "python": fastreid(py),
        "baseline": lambda: None,
    }


def veri_problem():
    from prreid_lib.metrics import pairwise_distance

    q, g, qp, gp, qc, gc = problem(1678, 11579, 776, 20)
    return pairwise_distance(q, g), qp, gp, qc, gc  # float32, as fast-reid's Cython code


def veri_child(impl: str, repeats: int, skip_python: bool = False) -> None:
    """Fresh process. ``impl`` = one implementation run once (its peak RSS), or ``timing``:
    all implementations interleaved round by round, so that load from other processes
    hits them alike; the per-round ratio Cython / ours is kept as well."""
    torch.set_num_threads(1)
    d, qp, gp, qc, gc = veri_problem()
    runners = veri_runners(d, qp, gp, qc, gc)
    if impl != "timing":
        out = runners[impl]()
        print(json.dumps(dict(peak_mb=peak_mb(), result=out)))
        return
    names = [k for k in runners if k != "baseline" and not (k == "python" and skip_python)]
    times: dict[str, list[float]] = {k: [] for k in names}
    results = {k: runners[k]() for k in names if k != "python"}  # warm-up and results
    rounds = max(repeats, 1)
    for r in range(rounds):
        for k in names:
            if k == "python" and r >= max(1, rounds // 3):
                continue  # 20-40 s a run: a third of the rounds
            t0 = time.perf_counter()
            out = runners[k]()
            times[k].append(time.perf_counter() - t0)
            results.setdefault(k, out)
    ratios = [c / o for c, o in zip(times["cython"], times["prreid"], strict=True)]
    print(
        json.dumps(
            dict(
                seconds={k: statistics.median(v) for k, v in times.items()},
                n={k: len(v) for k, v in times.items()},
                results=results,
                ratio_cython_over_ours=statistics.median(ratios),
                ties=count_ties(d, qp, gp, qc, gc),
            )
        )
    )


def count_ties(d, qp, gp, qc, gc) -> int:
    """True matches whose float32 distance equals that of another non-junk gallery item.

    There the order depends on the sort: ours is stable (gallery index), numpy's default
    argsort in fast-reid is not, so results may differ in the 7th decimal.
    """
    n = 0
    for i in range(len(qp)):
        same = gp == qp[i]
        keep = ~(same & (gc == qc[i]))
        values, counts = np.unique(d[i, keep], return_counts=True)
        n += int(np.isin(d[i, same & keep], values[counts > 1]).sum())
    return n


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_veri(repeats: int, skip_python: bool) -> list[dict]:
    fastreid_cython()  # compile (once) before timing
    timing = child(
        "--veri-child",
        "timing",
        "--repeats",
        str(repeats),
        *(["--skip-python"] if skip_python else []),
    )
    ref_map, ref_cmc = timing["results"]["prreid"]
    rows = []
    for impl, name in VERI_IMPLS.items():
        if impl == "python" and skip_python:
            continue
        peak = child("--veri-child", impl)["peak_mb"]  # one run in a fresh process
        seconds = timing["seconds"].get(impl, float("nan"))
        m_ap, cmc = timing["results"].get(impl) or (float("nan"), [float("nan")])
        if impl in ("cython", "python") and (
            abs(m_ap - ref_map) > 1e-6 or np.abs(np.subtract(cmc, ref_cmc)).max() > 1e-6
        ):
            sys.exit(f"MISMATCH {name}: mAP {m_ap} vs {ref_map}")
        rows.append(
            dict(
                case="veri 1678x11579",
                implementation=name,
                seconds=seconds,
                mAP=m_ap,
                rank1=cmc[0],
                peak_mb=peak,
            )
        )
        print(
            f"  {name:40s} {seconds:8.3f} s  mAP {m_ap:.8f}  rank1 {cmc[0]:.6f}  "
            f"peak {peak:.0f} MB  (median of {timing['n'].get(impl, 0)})",
            flush=True,
        )
    print(
        f"  all agree on CMC and mAP to 1e-6 ({timing['ties']} true matches tie in float32 "
        "with another item; fast-reid's unstable argsort may order them differently)"
    )
    print(
        f"  fast-reid Cython / prreid: {timing['ratio_cython_over_ours']:.2f}x "
        "(median of per-round ratios)"
    )
    return rows


def large_child() -> None:
    """Run in a fresh process: 10k x 100k through evaluate_features; print JSON."""
    from prreid_lib.metrics import evaluate_features

    torch.set_num_threads(1)  # a shared machine: one thread keeps the timing steady
    q, g, qp, gp, qc, gc = problem(10_000, 100_000, 5000, 20, seed=1)
    before = peak_mb()
    t0 = time.perf_counter()
    r = evaluate_features(q, g, qp, gp, qc, gc, "euclidean", 50, chunk_size=256)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            dict(
                seconds=seconds,
                mAP=r.mAP,
                rank1=float(r.cmc[0]),
                peak_mb=peak_mb(),
                before_mb=before,
            )
        )
    )


def bench_large() -> list[dict]:
    res = child("--large-child")
    print(
        f"  evaluate_features 10k x 100k: {res['seconds']:.1f} s, peak RSS "
        f"{res['peak_mb']:.0f} MB (imports + features alone {res['before_mb']:.0f} MB), "
        f"mAP {res['mAP']:.4f}"
    )
    return [
        dict(
            case="large 10000x100000",
            implementation="prreid evaluate_features (1 thread)",
            seconds=res["seconds"],
            mAP=res["mAP"],
            rank1=res["rank1"],
            peak_mb=res["peak_mb"],
        )
    ]


def write(rows: list[dict]) -> None:
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
        or "none"
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "prreid_lib/metrics.py", "prreid_lib/reranking.py"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    ).stdout.strip()
    date = datetime.date.today().isoformat()
    new = {
        (r["case"], r["implementation"]): r | dict(date=date, commit=commit + ("+" * bool(dirty)))
        for r in rows
    }
    old = []
    if RESULTS.exists():
        with RESULTS.open() as f:
            old = [r for r in csv.DictReader(f) if (r["case"], r["implementation"]) not in new]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in old + list(new.values()):
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"wrote {RESULTS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timing repeats (median is kept)")
    ap.add_argument("--skip-large", action="store_true", help="skip the 10k x 100k case")
    ap.add_argument("--skip-python", action="store_true", help="skip fast-reid's python loop")
    ap.add_argument("--large-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--veri-child", choices=[*VERI_IMPLS, "timing"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.large_child:
        return large_child()
    if args.veri_child:
        return veri_child(args.veri_child, args.repeats, args.skip_python)
    print("case veri (1678 x 11579):")
    rows = bench_veri(args.repeats, args.skip_python)
    if not args.skip_large:
        print("case large (10000 x 100000):")
        rows += bench_large()
    write(rows)


if __name__ == "__main__":
    main()
