"""Chapter 4's headline comparison: the baseline and the part-regularized model over seeds.

Chapter 4 trains the baseline and the part-regularized model over several
seeds (:func:`headline_pair`), reads their difference against the noise of
training (:func:`headline_numbers`, :func:`floor_text`, :func:`rerun_outlook`)
and says where their training stopped (:func:`train_accuracy_text`,
:func:`learning_curve_text`). Its runs give the seed spread of one training
(:func:`headline_noise`) that chapters 5 and 6 read their differences against;
chapter 6's ablation beside Table 4 is :mod:`~prreid_lib.studies.ablation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prreid_lib.config import Profile
from prreid_lib.paper_tables import LABELS
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData
from prreid_lib.studies.near_duplicates import FLOOR_METRICS, floor_reading, floor_summary
from prreid_lib.studies.variants import (
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    TRAIN_ACCURACY_TARGET,
    compare_over_seeds,
    headline_seeds,
    loss_trend,
    part_gain,
    seed_summary,
)
from prreid_lib.uncertainty import MARGIN_SE, Verdict, pair_verdict, seed_spread

__all__ = [
    "HEADLINE_COLUMNS",
    "PER_SEED_COLUMNS",
    "HeadlineNumbers",
    "Pretraining",
    "MODEL_NAMES",
    "describe_training_data",
    "floor_text",
    "headline_caption",
    "headline_noise",
    "headline_numbers",
    "headline_pair",
    "headline_table",
    "labelled_histories",
    "learning_curve_text",
    "pretraining_summary",
    "rerun_outlook",
    "train_accuracy_text",
    "training_seeds",
]

PER_SEED_COLUMNS = ["seed", "CMC@1", "CMC@5", "mAP", "train accuracy", "train seconds"]
"""The columns of chapter 4's table of every (variant, seed)."""
HEADLINE_COLUMNS = ["CMC@1", "CMC@5", "mAP", "CMC@1 std over seeds", "seeds"]
"""The columns of chapter 4's summary table (means over seeds)."""
MODEL_NAMES = {BASELINE: "the baseline", FULL: "the part-regularized model"}
"""How the text names chapter 4's two models."""


def training_seeds(profile: Profile, seeds: Sequence[int] | None, *, first: int = 0) -> list[int]:
    """The training seeds of the comparison: ``seeds`` as ints, or (``None`` or empty) the
    profile's default ``first``, ``first + 1``, ...
    (:func:`~prreid_lib.studies.variants.headline_seeds`)."""
    return [int(s) for s in seeds] if seeds else headline_seeds(profile, first=first)


def describe_training_data(data: StudyData) -> str:
    """Two lines: where the training part boxes come from and the size of the training set."""
    train = data.vehicleid.train
    return (
        f"part boxes for training: {data.part_source}\n"
        f"train: {len(train)} images of {train.pid.nunique()} identities"
    )


@dataclass(frozen=True)
class Pretraining:
    """The pretrained start in one line of ``text``, its last training ``accuracy`` (NaN
    without a SynthVeh start) and its number of make-model-colour ``groups`` (0 without)."""

    text: str
    accuracy: float
    groups: int


def pretraining_summary(data: StudyData) -> Pretraining:
    """What the variants start from: SynthVeh's pretrained backbone (images, groups,
    epochs, seconds) or the profile's weights file / a random initialisation."""
    if data.start is None:
        return Pretraining(f"start: {data.pretrained or 'random initialisation'}", float("nan"), 0)
    h, info = data.start.result.history, data.start.result.info
    text = (
        f"{info['num_images']} images, {info['num_classes']} groups, "
        f"{len(h)} epochs in {h['seconds'].sum():.0f} s"
    )
    return Pretraining(text, float(h["global_acc"].iloc[-1]), int(info["num_classes"]))


def headline_pair(train_epochs: int | None = None) -> dict[str, dict[str, Any]]:
    """Chapter 4's two variants (:data:`~prreid_lib.studies.variants.HEADLINE_PAIR`), trained
    for ``train_epochs`` when given (else the profile's epochs)."""
    longer = {"epochs": int(train_epochs)} if train_epochs else {}
    return {name: {**overrides, **longer} for name, overrides in HEADLINE_PAIR.items()}


def labelled_histories(runs: Mapping[str, TrainResult]) -> dict[str, pd.DataFrame]:
    """Each run's per-epoch history under its variant's label
    (:data:`~prreid_lib.paper_tables.LABELS`)."""
    return {LABELS.get(name, name): run.history for name, run in runs.items()}


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Chapter 4's table: the :data:`HEADLINE_COLUMNS` of a
    :func:`~prreid_lib.studies.variants.seed_summary`, rows named as the paper's
    (:data:`~prreid_lib.paper_tables.LABELS`)."""
    return summary[HEADLINE_COLUMNS].rename(index=LABELS)


def headline_caption(
    data: StudyData, per_seed: pd.DataFrame, seeds: Sequence[int], oracle: Mapping | None
) -> str:
    """The lines above chapter 4's table: data, protocol, test set, seeds and (when there
    is one) the make-model-colour oracle's figures."""
    lines = [
        f"{data.label}, VehicleID protocol, test set '{list(data.tests)[-1]}' "
        f"({int(per_seed['identities'].iloc[0])} identities), means over seeds {list(seeds)}"
    ]
    if oracle is not None:
        lines.append(
            f"make-model-colour oracle (exact expectation): CMC@1 {oracle['CMC@1']:.3f}, "
            f"CMC@5 {oracle['CMC@5']:.3f}, mAP {oracle['mAP']:.3f} ({oracle['groups']} groups)"
        )
    return "\n".join(lines)


def floor_text(
    baseline: Mapping[str, Sequence[float]] | pd.DataFrame, oracle: Mapping | None
) -> str:
    """The baseline (its CMC@1, CMC@5 and mAP per seed, e.g. its rows of the per-seed
    table) against the make-model-colour floor, in words: the floor's figures, then
    :func:`~prreid_lib.studies.near_duplicates.floor_reading` (each figure's verdict and
    what the pattern says)."""
    reading = floor_reading(baseline, oracle)
    if oracle is None:
        return reading
    figures = ", ".join(f"{m} {oracle[m]:.3f}" for m in FLOOR_METRICS)
    return (
        f"On this test set ({oracle['groups']} groups) its expected figures are {figures}: "
        "a model above this floor on all three has learnt cues that tell near-duplicates "
        f"apart. {reading}"
    )


@dataclass(frozen=True)
class HeadlineNumbers:
    """Chapter 4's numbers for the prose: means over seeds, the difference (part-regularized
    minus baseline; named ``gain`` whatever its sign), its verdict."""

    base_cmc1: float
    pr_cmc1: float
    base_map: float
    pr_map: float
    gain_cmc1: float
    gain_map: float
    noise_cmc1: float
    """The larger of the two models' CMC@1 standard deviations over seeds."""
    verdict: str
    """The difference against its standard error, in words (beyond two standard errors?)."""
    floor_text: str
    base_train_acc: float
    pr_window_acc: float
    """The window branch's training accuracy at the last epoch (first seed)."""
    pr_train_acc: float = math.nan
    """The part-regularized model's training accuracy (global classifier, mean over seeds)."""
    margin_cmc1: float = math.nan
    """Two standard errors of the CMC@1 difference, the book's margin (NaN with one seed)."""
    floor_summary: str = ""
    """:func:`~prreid_lib.studies.near_duplicates.floor_summary` of the baseline."""
    outlook: str = ""
    """:func:`rerun_outlook` of the difference: what three other seeds should show."""


def headline_numbers(
    per_seed: pd.DataFrame, full_run: TrainResult, oracle: Mapping | None
) -> HeadlineNumbers:
    """:class:`HeadlineNumbers` of chapter 4's per-seed table (baseline and full model),
    the full model's first run and the :func:`~prreid_lib.studies.near_duplicates.group_oracle`."""
    summary = seed_summary(per_seed)
    gain = part_gain(summary)
    base, full = summary.loc[BASELINE], summary.loc[FULL]
    verdict = pair_verdict(per_seed, BASELINE, FULL)
    return HeadlineNumbers(
        base_cmc1=float(base["CMC@1"]),
        pr_cmc1=float(full["CMC@1"]),
        base_map=float(base["mAP"]),
        pr_map=float(full["mAP"]),
        gain_cmc1=gain["gain"],
        gain_map=float(full["mAP"] - base["mAP"]),
        noise_cmc1=gain["noise"],
        verdict=verdict.words(),
        floor_text=floor_text(per_seed.loc[[BASELINE]], oracle),
        base_train_acc=float(per_seed.loc[[BASELINE], "train accuracy"].mean()),
        pr_window_acc=float(full_run.history["acc_window"].iloc[-1]),
        pr_train_acc=float(per_seed.loc[[FULL], "train accuracy"].mean()),
        margin_cmc1=verdict.margin,
        floor_summary=floor_summary(per_seed.loc[[BASELINE]], oracle),
        outlook=rerun_outlook(verdict),
    )


def rerun_outlook(
    verdict: Verdict, who: str = MODEL_NAMES[FULL], than: str = "the baseline"
) -> str:
    """What training with other seeds should show, given this difference's
    :class:`~prreid_lib.uncertainty.Verdict` (``who`` minus ``than``): beyond the noise,
    the same sign and a size that moves by about sqrt(2) standard errors; within it,
    either sign."""
    if not verdict.known:
        return (
            "With one seed the noise is unknown: other seeds measure it, and only then can "
            "the difference be read."
        )
    ratio = f"{verdict.ratio:.1f}"
    if verdict.beyond:
        side = "below" if verdict.difference < 0 else "above"
        return (
            f"At {ratio} times its standard error the difference is beyond the noise: with "
            f"other seeds expect the same sign ({who} {side} {than}) and a size that "
            f"typically moves by about {math.sqrt(2) * verdict.se:.3f} (the spread of the "
            "difference between two such measurements, each with its own noise)."
        )
    return (
        f"At {ratio} times its standard error the difference is within the noise: other "
        f"seeds may give either sign; only a difference beyond {MARGIN_SE:g} standard "
        f"errors ({verdict.margin:.3f} here) would settle it."
    )


def train_accuracy_text(state: pd.DataFrame, target: float = TRAIN_ACCURACY_TARGET) -> str:
    """The training accuracies of a
    :func:`~prreid_lib.studies.variants.training_state` table in one sentence, and the
    baseline (when a row) against the book's ``target`` for it (a quality target of the
    ``quick`` profile)."""
    acc = state["train accuracy (mean over seeds)"]
    each = [f"{acc[name]:.3f} for {MODEL_NAMES.get(name, name)}" for name in state.index]
    text = "Training accuracy of the global classifier at the last epoch (mean over seeds): " + (
        each[0] if len(each) == 1 else f"{', '.join(each[:-1])} and {each[-1]}"
    )
    if BASELINE in state.index:
        reached = "reaches" if acc[BASELINE] >= target else "stays below"
        text += (
            f"; the baseline {reached} the {target:.3f} the book sets as a quality target "
            "for it with the quick profile"
        )
    return text + "."


def learning_curve_text(state: pd.DataFrame) -> str:
    """Whether each model's global identity loss still fell in its last epoch
    (:func:`~prreid_lib.studies.variants.loss_trend` of a
    :func:`~prreid_lib.studies.variants.training_state` table), with the drop in per cent."""
    drops = state["last-epoch loss drop"]
    trends = {name: loss_trend(float(d)) for name, d in drops.items()}
    if set(trends.values()) == {"unknown"}:
        return "With one epoch of training there is no last-epoch change of the loss to read."
    each = [
        f"{'dropped' if drops[n] >= 0 else 'rose'} {abs(drops[n]) * 100:.1f} % for "
        f"{MODEL_NAMES.get(n, n)} ({trend})"
        for n, trend in trends.items()
        if trend != "unknown"
    ]
    text = "In the last epoch (first seed) the global identity loss " + (
        each[0] if len(each) == 1 else f"{', '.join(each[:-1])} and {each[-1]}"
    )
    models = "neither model" if len(trends) == 2 else "no model"
    if set(trends.values()) == {"still falling"}:
        return f"{text}: {models} had finished learning when training stopped."
    if set(trends.values()) == {"flat"}:
        return f"{text}: the curves have levelled off."
    return text + "."


def headline_noise(
    data: StudyData,
    *,
    first: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
    eval_seed: int = 0,
) -> tuple[float, int]:
    """``(spread, seeds)``: the seed spread of one training (pooled sample std of CMC@1,
    NaN for one seed) over chapter 4's seeds of the baseline and the full model (reused
    through the run cache), and how many seeds that is."""
    seeds = headline_seeds(data.profile, first=first)
    per_seed = compare_over_seeds(
        data, headline_pair(), seeds, output_dir=output_dir, device=device, eval_seed=eval_seed
    )
    return seed_spread(per_seed, [BASELINE, FULL]), len(seeds)
