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
from prreid_lib.data import ensure_synthveh, load_synthveh_parts, load_vehicleid
from prreid_lib.evaluate import evaluate_vehicleid
from prreid_lib.parts import ground_truth_part_boxes, impute_missing_parts
from prreid_lib.recipes import apply_overrides, recipe_options
from prreid_lib.runs import run_or_load

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"small": 800, "medium": 1600, "large": 2400}


def load(profile: str, data_seed: int, test_sets: list[str]):
    """VehicleID train/test frames of the SynthVeh export and its ground-truth part boxes."""
    root = ensure_synthveh(profile, seed=data_seed) / "VehicleID"
    tests = {name: load_vehicleid(root, SIZES[name]).test for name in test_sets}
    train = load_vehicleid(root, 800).train
    table = load_synthveh_parts(root)
    views = table.drop_duplicates("path").set_index("path")["view"]
    images = pd.concat([train, *tests.values()]).drop_duplicates("path")
    boxes = impute_missing_parts(
        ground_truth_part_boxes(table), images.assign(view=images["path"].map(views))
    )
    return train, tests, boxes


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
    args = parser.parse_args()
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
