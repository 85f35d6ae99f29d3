"""Baseline vs part-regularized on SynthVeh (VehicleID export), with times (not a test).

Trains the profile's model with ``lambda_p`` = 0 for every part (baseline,
global identity loss only) and = 1 (part-regularized, paper Eq. 3) on the
VehicleID-layout SynthVeh export with ground-truth part boxes (lights
extended to the vehicle bottom, missing parts imputed by identity), for
several seeds, training-set sizes and epoch counts; evaluates each with the
VehicleID protocol (global feature, L2, ``--trials`` random gallery splits)
on every test list. Appends one row per run and test set to
``benchmarks/results/train_quality.csv`` (reruns reuse finished runs through
the run cache).

Usage: ``python benchmarks/bench_quality.py --profile quick --ids 200 --epochs 10 --seeds 0 1``

With ``--targets`` it instead checks the book's headline comparison (chapter 4:
the profile's model from its pretrained start, baseline vs part-regularized,
the profile's training seeds, the largest test set) against the quality
targets of the profile (:data:`TARGETS`) and appends one row per target, with
the measured value and whether it passed, to
``benchmarks/results/quality_targets.csv``. The runs are those of the book
(``--runs runs/<profile>`` reuses a finished ``make book``)::

    python benchmarks/bench_quality.py --profile quick --targets --runs runs/quick
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from prreid_lib.config import PART_NAMES, get_profile
from prreid_lib.datasets import load_vehicleid
from prreid_lib.evaluate import evaluate_vehicleid
from prreid_lib.parts import ground_truth_part_boxes
from prreid_lib.recipes import apply_overrides, recipe_options
from prreid_lib.synthveh import ensure_synthveh, load_synthveh_parts
from prreid_lib.train import run_or_load
from prreid_lib.uncertainty import MARGIN_SE, pair_verdict

RESULTS = Path(__file__).resolve().parent / "results"

TARGETS = {
    "baseline training accuracy": 0.80,
    "baseline CMC@1": 0.20,
    "part gain CMC@1": 0.05,
    "part gain / its standard error": MARGIN_SE,
}
"""Quality targets of the quick book: each measured value must reach its threshold."""
SIZES = {"small": 800, "medium": 1600, "large": 2400}


def load(profile: str, data_seed: int, test_sets: list[str]):
    """VehicleID train/test frames of the SynthVeh export and its ground-truth part boxes."""
    root = ensure_synthveh(profile, seed=data_seed) / "VehicleID"
    tests = {name: load_vehicleid(root, SIZES[name]).test for name in test_sets}
    train = load_vehicleid(root, 800).train
    images = pd.concat([train, *tests.values()])
    boxes = ground_truth_part_boxes(load_synthveh_parts(root), images)
    return train, tests, boxes


def check_targets(profile: str, data_seed: int, runs: str, threads: int) -> pd.DataFrame:
    """The headline comparison of chapter 4 against :data:`TARGETS`; one row per target."""
    import subprocess

    from prreid_lib.studies import (
        BASELINE,
        FULL,
        HEADLINE_PAIR,
        compare_over_seeds,
        headline_seeds,
        load_study_data,
        seed_summary,
    )

    torch.set_num_threads(threads)
    data = load_study_data(profile, data_seed=data_seed, output_dir=runs, part_source="auto")
    seeds = headline_seeds(data.profile)
    tic = time.perf_counter()
    per_seed = compare_over_seeds(data, HEADLINE_PAIR, seeds, output_dir=runs, eval_seed=data_seed)
    summary = seed_summary(per_seed)
    verdict = pair_verdict(per_seed, BASELINE, FULL)  # the book's one rule: beyond 2 se
    measured = {
        "baseline training accuracy": float(per_seed.loc[BASELINE, "train accuracy"].mean()),
        "baseline CMC@1": float(summary.loc[BASELINE, "CMC@1"]),
        "part gain CMC@1": verdict.difference,
        "part gain / its standard error": verdict.difference / verdict.se,
    }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return pd.DataFrame(
        {
            "date": time.strftime("%Y-%m-%d"),
            "commit": commit,
            "profile": profile,
            "seeds": len(seeds),
            "target": list(TARGETS),
            "threshold": list(TARGETS.values()),
            "measured": [measured[k] for k in TARGETS],
            "passed": [measured[k] >= v for k, v in TARGETS.items()],
            "baseline CMC@1": measured["baseline CMC@1"],
            "part-regularized CMC@1": float(summary.loc[FULL, "CMC@1"]),
            "standard error of the gain": verdict.se,
            "wall seconds": time.perf_counter() - tic,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--ids", type=int, nargs="+", default=[200], help="training identities")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--recipe", default="paper")
    parser.add_argument(
        "--set", nargs="*", default=[], help="TrainConfig / RecipeOptions key=value"
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--tests", nargs="+", default=["small", "large"], choices=list(SIZES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="/tmp/prreid-bench-runs")
    parser.add_argument("--out", default=str(RESULTS / "train_quality.csv"))
    parser.add_argument("--targets", action="store_true", help="check the quality targets")
    args = parser.parse_args()
    if args.targets:
        table = check_targets(args.profile, args.data_seed, args.runs, args.threads)
        out = RESULTS / "quality_targets.csv"
        table.to_csv(out, mode="a", header=not out.exists(), index=False, float_format="%.4f")
        print(table[["target", "threshold", "measured", "passed"]].to_string(index=False))
        return
    torch.set_num_threads(args.threads)
    train, tests, boxes = load(args.profile, args.data_seed, args.tests)
    base = replace(get_profile(args.profile).train, recipe=args.recipe)
    base, options = apply_overrides(base, recipe_options(base), args.set)
    ids = sorted(train["pid"].unique())
    for n_ids in args.ids:
        subset = train[train["pid"].isin(ids[:n_ids])].reset_index(drop=True)
        for epochs in args.epochs:
            for seed in args.seeds:
                for lam in args.lambdas:
                    cfg = replace(base, epochs=epochs, lambda_p=dict.fromkeys(PART_NAMES, lam))
                    tic = time.perf_counter()
                    result = run_or_load(
                        cfg, subset, boxes if lam > 0 else None, args.runs, seed=seed,
                        progress=False, name=f"q-{n_ids}ids-{epochs}ep-l{lam:g}", options=options,
                    )  # fmt: skip
                    wall = time.perf_counter() - tic
                    rows = []
                    for name, test in tests.items():
                        tic = time.perf_counter()
                        res = evaluate_vehicleid(result.model, test, n_trials=args.trials)
                        rows.append(
                            {
                                "profile": args.profile,
                                "recipe": args.recipe,
                                "train_ids": n_ids,
                                "train_images": len(subset),
                                "epochs": epochs,
                                "lambda_p": lam,
                                "seed": seed,
                                "test_set": name,
                                "test_ids": test["pid"].nunique(),
                                "cmc1": res.cmc_mean[0],
                                "cmc5": res.cmc_mean[4],
                                "mAP": res.mAP_mean,
                                "final_train_acc": result.history["global_acc"].iloc[-1],
                                "train_seconds": result.seconds,
                                "run_wall_seconds": wall,
                                "eval_seconds": time.perf_counter() - tic,
                                "reused": result.reused,
                                "load_avg_1min": os.getloadavg()[0],
                                "extra": " ".join(args.set),
                            }
                        )
                    frame = pd.DataFrame(rows)
                    out = Path(args.out)
                    out.parent.mkdir(exist_ok=True)
                    frame.to_csv(out, mode="a", header=not out.exists(), index=False,
                                 float_format="%.4f")  # fmt: skip
                    cols = ["train_ids", "epochs", "lambda_p", "seed", "test_set", "cmc1", "mAP"]
                    shown = frame[[*cols, "train_seconds"]].to_string(index=False)
                    print(shown, flush=True)


if __name__ == "__main__":
    main()
