"""The model's variants: trained once, evaluated by the VehicleID protocol, compared over seeds.

A variant is a set of overrides of the profile's
:class:`~prreid_lib.config.TrainConfig` (which part losses, which input size,
which recipe) under a name. The paper's Table 4 rows are named by their
:class:`~prreid_lib.paper_tables.Variant` key (:data:`ABLATION_VARIANTS`);
tables show their labels (:data:`~prreid_lib.paper_tables.LABELS`). A variant
trained in one chapter is reused by the others through the run cache
(:func:`prreid_lib.train.run_or_load`), and each of its evaluations is stored in
its run folder. :func:`training_state` says where each training stopped (training
accuracy, and whether the loss still fell in the last epoch).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from prreid_lib.cache import cached_json, config_digest
from prreid_lib.config import PART_NAMES, Profile, TrainConfig
from prreid_lib.paper_tables import LABELS, Variant
from prreid_lib.runs import TrainResult, data_identity
from prreid_lib.studies.data import StudyData, chosen_test_set

# a variant's overrides: TrainConfig field -> value (lambda_p may name only some parts)
Overrides = Mapping[str, Any]

EVALUATION_KEY_VERSION = "3"
"""Version of :func:`evaluation_key` (2: keyed by image content, not by path; 3: images
decoded in full, without JPEG draft mode)."""

BASELINE, FULL = Variant.BASELINE, Variant.FULL
"""The two models of the headline comparison (Table 4's last and first rows)."""
ALL_PARTS = dict.fromkeys(PART_NAMES, 1.0)
NO_PARTS = dict.fromkeys(PART_NAMES, 0.0)

ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    Variant.FULL: {"lambda_p": ALL_PARTS},
    Variant.GLOBAL_LIGHT_BRAND: {"lambda_p": {**ALL_PARTS, "window": 0.0}},
    Variant.GLOBAL_LIGHT_WINDOW: {"lambda_p": {**ALL_PARTS, "brand": 0.0}},
    Variant.GLOBAL_WINDOW_BRAND: {"lambda_p": {**ALL_PARTS, "light": 0.0}},
    Variant.GLOBAL_WINDOW: {"lambda_p": {**NO_PARTS, "window": 1.0}},
    Variant.PARTS_ONLY: {"lambda_p": ALL_PARTS, "use_global": False},
    Variant.BASELINE: {"lambda_p": NO_PARTS},
}
"""The seven rows of the paper's Table 4 by key, as overrides of the profile's TrainConfig."""
HEADLINE_PAIR: dict[str, dict[str, Any]] = {key: ABLATION_VARIANTS[key] for key in (BASELINE, FULL)}
"""Chapter 4's comparison: the baseline and the part-regularized model."""


def headline_seeds(profile: Profile, *, first: int = 0) -> list[int]:
    """The training seeds of the headline comparison: ``first``, ``first + 1``, ... (the
    profile's ``n_seeds`` of them)."""
    return [first + i for i in range(profile.n_seeds)]


def variant_config(base: TrainConfig, **overrides: Any) -> TrainConfig:
    """``base`` with overrides; ``lambda_p`` may name only some parts (the others keep theirs)."""
    if "lambda_p" in overrides:
        unknown = set(overrides["lambda_p"]) - set(PART_NAMES)
        if unknown:
            raise ValueError(f"lambda_p names unknown parts {sorted(unknown)}; parts: {PART_NAMES}")
        overrides["lambda_p"] = {**base.lambda_p, **overrides["lambda_p"]}
    return replace(base, **overrides)


def slug(name: str) -> str:
    """A folder-safe name (``"Global+Window"`` -> ``"global-window"``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_name(name: str) -> str:
    """The run folder prefix of the variant ``name``: the :func:`slug` of its label
    (``Variant.BASELINE`` -> ``"baseline-w-o-parts"``), of the name itself for any other."""
    return slug(LABELS.get(name, name))


def train_variant(
    data: StudyData,
    name: str,
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    dataset: str = "vehicleid",
    **overrides: Any,
) -> TrainResult:
    """Train (or reuse) the variant ``name`` of the profile's model.

    ``dataset`` is ``"vehicleid"`` (VehicleID train, the paper's ablation set) or
    ``"veri776"`` (VeRi-776 train, SynthVeh ground-truth boxes). Returns
    :class:`prreid_lib.runs.TrainResult`; runs live under
    ``output_dir/reid/<dataset>/<run_name(name)>-<key>``.
    """
    from prreid_lib.train import run_or_load

    if dataset == "vehicleid":
        frame, boxes = data.vehicleid.train, data.part_boxes
    elif dataset == "veri776" and data.veri is not None:
        frame, boxes = data.veri.train, data.veri_part_boxes
    else:
        raise ValueError(f"dataset must be 'vehicleid' or 'veri776' (SynthVeh); got {dataset!r}")
    cfg = variant_config(data.profile.train, **{"pretrained": data.pretrained, **overrides})
    return run_or_load(
        cfg,
        frame,
        boxes,
        Path(output_dir) / "reid" / dataset,
        seed=seed,
        device=device,
        progress=progress,
        name=run_name(name),
    )


def train_variants(
    data: StudyData,
    variants: Mapping[str, Overrides],
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    **common: Any,
) -> dict[str, TrainResult]:
    """:func:`train_variant` for every named variant (its overrides, then ``common``, e.g.
    ``dataset="veri776"``); ``{name: TrainResult}`` in the order of ``variants``."""
    return {
        name: train_variant(
            data, name, output_dir=output_dir, seed=seed, device=device, **{**overrides, **common}
        )
        for name, overrides in variants.items()
    }


def evaluate_variant(
    result: TrainResult,
    data: StudyData,
    *,
    seed: int = 0,
    n_trials: int | None = None,
    test_sets: Sequence[str] | None = None,
    metric: str = "euclidean",
) -> pd.DataFrame:
    """VehicleID protocol on the test sets ``test_sets`` (default: all); one row per set,
    CMC@1/@5 and mAP (mean and std), with the distance ``metric`` ("euclidean", the
    paper's L2, or "cosine"). ``seed`` draws the galleries of the ``n_trials`` trials.

    Each row is stored in the run folder (``evaluations/``), keyed by the test
    images, their identities (and part boxes, for a parts-only model), the
    number of trials and the seed, so chapters that show the same run reuse it.
    """
    trials = n_trials or data.profile.eval.n_trials
    unknown = set(test_sets or ()) - set(data.tests)
    if unknown:
        raise ValueError(f"unknown test sets {sorted(unknown)}; this data has {list(data.tests)}")
    chosen = data.tests if test_sets is None else {t: data.tests[t] for t in test_sets}
    rows = [
        {
            "test set": name,
            **_vehicleid_row(
                result, test, data.test_part_boxes, trials=trials, seed=seed, metric=metric
            ),
        }
        for name, test in chosen.items()
    ]
    return pd.DataFrame(rows).set_index("test set")


def evaluation_key(
    result: TrainResult,
    test: pd.DataFrame,
    part_boxes: pd.DataFrame | None,
    *,
    trials: int,
    seed: int,
    metric: str = "euclidean",
) -> str:
    """Content key of one VehicleID evaluation of a run: the test images' bytes and
    identities (and their part boxes, for a parts-only model), trials, seed and metric.

    No path is part of it, so an evaluation stored in a run folder is reused
    after the run and the data are copied to another checkout or machine.
    """
    parts = () if result.model.use_global else tuple(result.model.parts)
    data = data_identity(test, part_boxes if parts else None, parts)
    payload = {"version": EVALUATION_KEY_VERSION, "trials": trials, "seed": seed}
    return config_digest(payload | {"metric": metric, "data": data})


def _vehicleid_row(
    result: TrainResult,
    test: pd.DataFrame,
    part_boxes: pd.DataFrame | None,
    *,
    trials: int,
    seed: int,
    metric: str,
) -> dict[str, float]:
    """One test set's VehicleID figures for a run, from its evaluation cache or computed."""
    from prreid_lib.evaluate import evaluate_vehicleid

    key = evaluation_key(result, test, part_boxes, trials=trials, seed=seed, metric=metric)
    cache = Path(result.run_dir) / "evaluations" / f"vehicleid-{key[:16]}.json"
    columns = ("identities", "CMC@1", "CMC@5", "mAP", "CMC@1 std", "mAP std")

    def compute() -> dict[str, float]:
        res = evaluate_vehicleid(
            result.model, test, part_boxes=part_boxes, n_trials=trials, seed=seed, metric=metric
        )
        return {
            "identities": int(test["pid"].nunique()),
            "CMC@1": float(res.cmc_mean[0]),
            "CMC@5": float(res.cmc_mean[4]),
            "mAP": float(res.mAP_mean),
            "CMC@1 std": float(res.cmc_std[0]),
            "mAP std": float(res.mAP_std),
        }

    stored = cached_json(cache, compute, required=columns)
    return {k: stored[k] for k in columns}


def compare_variants(
    data: StudyData,
    variants: Mapping[str, Overrides],
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    test_set: str = "large",
    eval_seed: int | None = None,
) -> pd.DataFrame:
    """Train (or reuse) each variant and evaluate it; one row per variant on ``test_set``,
    indexed by the names of ``variants``.

    ``seed`` seeds the training; ``eval_seed`` the random gallery picks of the
    VehicleID protocol (default: ``seed``). Fix ``eval_seed`` to compare
    training seeds on the same splits. Columns: the evaluation figures,
    ``train accuracy`` (global branch, last epoch) and ``train seconds``.
    """
    chosen = chosen_test_set(data, test_set)
    split_seed = seed if eval_seed is None else eval_seed
    trained = train_variants(data, variants, output_dir=output_dir, seed=seed, device=device)
    rows = []
    for name, result in trained.items():
        figures = evaluate_variant(result, data, seed=split_seed, test_sets=[chosen])
        h = result.history
        rows.append(
            {
                "variant": name,
                **figures.loc[chosen].to_dict(),
                "train accuracy": float(h["global_acc"].iloc[-1]) if len(h) else float("nan"),
                "train seconds": float(h["seconds"].sum()) if "seconds" in h else None,
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def compare_over_seeds(
    data: StudyData,
    variants: Mapping[str, Overrides],
    seeds: Sequence[int],
    *,
    output_dir: str | Path = "runs",
    device: str = "auto",
    test_set: str = "large",
    eval_seed: int = 0,
) -> pd.DataFrame:
    """:func:`compare_variants` for every training seed; one row per (variant, seed).

    All seeds are evaluated on the same gallery splits (``eval_seed``), so the
    spread over seeds is the spread of training alone.
    """
    frames = [
        compare_variants(
            data,
            variants,
            output_dir=output_dir,
            seed=s,
            device=device,
            test_set=test_set,
            eval_seed=eval_seed,
        ).assign(seed=s)
        for s in seeds
    ]
    return pd.concat(frames)


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds of CMC@1, CMC@5 and mAP per variant, with ``CMC@1 std over seeds``
    (population std; 0 for one seed), ``mAP std over seeds`` and ``seeds`` (their count)."""
    grouped = per_seed.groupby(level=0, sort=False)
    table = grouped[["CMC@1", "CMC@5", "mAP"]].mean()
    table["CMC@1 std over seeds"] = grouped["CMC@1"].std(ddof=0)
    table["mAP std over seeds"] = grouped["mAP"].std(ddof=0)
    table["seeds"] = grouped["seed"].nunique()
    return table


def part_gain(summary: pd.DataFrame, *, base: str = BASELINE, full: str = FULL) -> dict[str, float]:
    """The part gain of a :func:`seed_summary`: ``gain`` (CMC@1 of ``full`` minus ``base``),
    ``noise`` (the larger of the two seed stds) and ``ratio`` (gain / noise; inf when the
    noise is 0)."""
    gain = float(summary.loc[full, "CMC@1"] - summary.loc[base, "CMC@1"])
    noise = float(summary.loc[[base, full], "CMC@1 std over seeds"].max())
    return {"gain": gain, "noise": noise, "ratio": gain / noise if noise > 0 else float("inf")}


TRAIN_ACCURACY_TARGET = 0.80
"""The book's quality target for the baseline's training accuracy (global classifier, last
epoch, mean over seeds) with the ``quick`` profile: ``TARGETS`` of
``benchmarks/bench_quality.py``, whose checks ``benchmarks/results/quality_targets.csv``
logs."""
FLAT_LOSS_DROP = 0.01
"""A global identity loss that moved by less than this share in the last epoch reads as flat."""
TRAINING_STATE_COLUMNS = [
    "train accuracy (mean over seeds)",
    "last-epoch loss",
    "last-epoch loss drop",
    "last-epoch accuracy change",
]
"""The columns of :func:`training_state`."""


def training_state(per_seed: pd.DataFrame, runs: Mapping[str, TrainResult]) -> pd.DataFrame:
    """Where each model's training stopped, one row per variant of ``runs`` (by name).

    ``train accuracy (mean over seeds)``: the global classifier's training accuracy at
    the last epoch, averaged over the seeds of ``per_seed`` (a
    :func:`compare_over_seeds` table); from the run of ``runs`` (one seed): the global
    identity loss of the last epoch, its relative drop in that epoch
    (``(previous - last) / previous``, positive while the loss still falls) and the
    change of the training accuracy in that epoch (both NaN after a single epoch).
    """
    rows: dict[str, list[float]] = {}
    for name, run in runs.items():
        loss = run.history["global_ce"].to_numpy(dtype=float)
        acc = run.history["global_acc"].to_numpy(dtype=float)
        two = len(loss) >= 2
        rows[name] = [
            float(per_seed.loc[[name], "train accuracy"].mean()),
            float(loss[-1]) if len(loss) else math.nan,
            float((loss[-2] - loss[-1]) / loss[-2]) if two else math.nan,
            float(acc[-1] - acc[-2]) if two else math.nan,
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=TRAINING_STATE_COLUMNS)


def loss_trend(drop: float) -> str:
    """A last-epoch loss drop (:func:`training_state`) in words: ``"still falling"``,
    ``"flat"`` (it moved by less than :data:`FLAT_LOSS_DROP`), ``"rising"``, or
    ``"unknown"`` (NaN: a single epoch)."""
    if not math.isfinite(drop):
        return "unknown"
    if abs(drop) < FLAT_LOSS_DROP:
        return "flat"
    return "still falling" if drop > 0 else "rising"
