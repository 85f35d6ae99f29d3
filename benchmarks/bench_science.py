"""When does part regularization help? Baseline vs part-regularized from a pretrained start.

Research log of the quick profile's science (not a test). For one SynthVeh
variant (``--synth key=value`` overrides of the profile's SynthConfig, e.g. the
nuisance knob ``vehicleid_train_sites_per_id=1``), it pretrains (or reuses) the
make-model-colour backbone (:mod:`prreid_lib.pretrain`), fine-tunes a baseline
(``lambda_p`` = 0) and a part-regularized model (``--lambdas``) for every
training seed, and evaluates each on the largest VehicleID test set. One row per
run is appended to ``benchmarks/results/quick_science.csv`` with the batch label
``--label``, kept or rejected alike.

Usage::

    python benchmarks/bench_science.py --label S1 --synth vehicleid_train_sites_per_id=1 \\
        --set epochs=14 lr=0.03 lr_gamma=0.85 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from prreid_lib.config import PART_NAMES, PretrainConfig, get_profile
from prreid_lib.pretrain import pretrained_backbone
from prreid_lib.recipes import apply_overrides, recipe_options
from prreid_lib.studies import evaluate_variant, load_study_data
from prreid_lib.synthveh import ensure_synthveh
from prreid_lib.train import run_or_load

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="batch label of the rows")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--synth", nargs="*", default=[], help="SynthConfig key=value")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="0: random init")
    parser.add_argument("--backbone", default=None, help="reuse this pretrained backbone file")
    parser.add_argument("--arch", default=None, help="backbone of the pretraining and the models")
    parser.add_argument("--set", nargs="*", default=[], help="TrainConfig/RecipeOptions k=v")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--test-set", default="large")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--fp32", action="store_true", help="float32 on the CPU (no bfloat16), pretraining too"
    )
    parser.add_argument("--runs", default="/tmp/prreid-science-runs")
    parser.add_argument("--out", default=str(RESULTS / "quick_science.csv"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prof = get_profile(args.profile)
    synth = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.synth)}
    prof = replace(prof, synth=replace(prof.synth, **synth))
    if args.arch:
        prof = replace(prof, train=replace(prof.train, arch=args.arch))
    pre = prof.pretrain or PretrainConfig()
    if args.pretrain_epochs is not None:
        pre = replace(pre, epochs=args.pretrain_epochs)
    prof = replace(prof, pretrain=pre)
    tag = "-".join(f"{k}{v}" for k, v in synth.items())
    folder = Path("data/synthveh") / f"science-{tag}-seed{args.data_seed}" if tag else None
    root = ensure_synthveh(prof, folder, args.data_seed)
    data = load_study_data(  # the start is handled below (--backbone or --pretrain-epochs)
        replace(prof, pretrain=None),
        data_root=root,
        data_seed=args.data_seed,
        output_dir=args.runs,
        part_source="ground_truth",
    )
    backbone, pre_acc = None, float("nan")
    if args.backbone:
        backbone = args.backbone
    elif pre.epochs > 0:
        tic = time.perf_counter()
        pre_options = recipe_options(prof.train, cpu_bf16=not args.fp32)
        start = pretrained_backbone(prof, root, args.runs, seed=0, options=pre_options)
        backbone = str(start.path)
        pre_acc = float(start.result.history["global_acc"].iloc[-1])
        print(f"pretrained backbone {backbone} ({time.perf_counter() - tic:.0f} s)", flush=True)
    base = replace(prof.train, pretrained=backbone)
    base, options = apply_overrides(base, recipe_options(base, cpu_bf16=not args.fp32), args.set)
    for seed in args.seeds:
        for lam in args.lambdas:
            cfg = replace(base, lambda_p=dict.fromkeys(PART_NAMES, lam))
            tic = time.perf_counter()
            result = run_or_load(
                cfg, data.vehicleid.train, data.part_boxes if lam > 0 else None,
                Path(args.runs) / "reid", seed=seed, progress=False, name=f"l{lam:g}",
                options=options,
            )  # fmt: skip
            wall = time.perf_counter() - tic
            row = evaluate_variant(result, data, seed=seed, test_sets=[args.test_set]).iloc[0]
            out = {
                "label": args.label,
                "synth": " ".join(args.synth),
                "pretrain_epochs": pre.epochs,
                "pretrain_acc": pre_acc,
                "set": " ".join(args.set + (["cpu_bf16=false"] if args.fp32 else [])),
                "lambda_p": lam,
                "seed": seed,
                "test_ids": int(row["identities"]),
                "cmc1": row["CMC@1"],
                "cmc5": row["CMC@5"],
                "mAP": row["mAP"],
                "train_acc": float(result.history["global_acc"].iloc[-1]),
                "train_seconds": result.seconds,
                "wall_seconds": wall,
                "reused": result.reused,
                "load_avg_1min": os.getloadavg()[0],
                "arch": prof.train.arch,
            }
            path = Path(args.out)
            pd.DataFrame([out]).to_csv(
                path, mode="a", header=not path.exists(), index=False, float_format="%.4f"
            )
            print({k: out[k] for k in ("label", "lambda_p", "seed", "cmc1", "mAP", "train_acc",
                                       "train_seconds")}, flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
