"""Comparisons of variants: chapter 4's headline pair and chapter 6's ablation beside Table 4.

Chapter 4 trains the baseline and the part-regularized model over several
seeds (:func:`headline_pair`), reads their difference against the noise of
training (:func:`headline_numbers`, :func:`floor_text`, :func:`rerun_outlook`)
and says where their training stopped (:func:`train_accuracy_text`,
:func:`learning_curve_text`). Chapter 6 sets the
seven variants of the paper's Table 4 beside the paper's numbers
(:func:`ablation_table`), takes the seed spread of one training from chapter
4's runs (:func:`headline_noise`), states how much of the paper's ordering holds
(:func:`ordering_text`, :func:`variant_verdict`) and repeats the pair with a
strong re-id recipe (:func:`recipe_comparison`, :func:`recipe_verdicts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.config import Profile
from prreid_lib.paper_tables import LABELS, PAPER_LABEL, Variant
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData
from prreid_lib.studies.near_duplicates import FLOOR_METRICS, floor_reading, floor_summary
from prreid_lib.studies.variants import (
    ABLATION_VARIANTS,
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    TRAIN_ACCURACY_TARGET,
    compare_over_seeds,
    compare_variants,
    headline_seeds,
    loss_trend,
    part_gain,
    seed_summary,
)
from prreid_lib.uncertainty import (
    MARGIN_SE,
    Ordering,
    Verdict,
    pair_verdict,
    seed_difference,
    seed_spread,
)

__all__ = [
    "HEADLINE_COLUMNS",
    "PER_SEED_COLUMNS",
    "RECIPE_COLUMNS",
    "STRONG_PAIR",
    "HeadlineNumbers",
    "Pretraining",
    "RecipeVerdicts",
    "ablation_table",
    "MODEL_NAMES",
    "ablation_variants",
    "changes_over_baseline",
    "describe_training_data",
    "floor_text",
    "headline_caption",
    "headline_noise",
    "headline_numbers",
    "headline_pair",
    "headline_table",
    "labelled_histories",
    "learning_curve_text",
    "ordering_text",
    "pretraining_summary",
    "recipe_comparison",
    "recipe_verdicts",
    "rerun_outlook",
    "train_accuracy_text",
    "training_seeds",
    "variant_verdict",
]

PER_SEED_COLUMNS = ["seed", "CMC@1", "CMC@5", "mAP", "train accuracy", "train seconds"]
"""The columns of chapter 4's table of every (variant, seed)."""
HEADLINE_COLUMNS = ["CMC@1", "CMC@5", "mAP", "CMC@1 std over seeds", "seeds"]
"""The columns of chapter 4's summary table (means over seeds)."""
RECIPE_COLUMNS = ["CMC@1", "CMC@5", "mAP", "train accuracy", "train seconds"]
"""The columns of chapter 6's table of the paper's and the strong recipe."""
STRONG_PAIR: dict[str, dict[str, Any]] = {
    "strong baseline": {**ABLATION_VARIANTS[BASELINE], "recipe": "strong"},
    "strong + parts": {**ABLATION_VARIANTS[FULL], "recipe": "strong"},
}
"""Chapter 6's pair trained with the strong re-id recipe (BNNeck, triplet loss, ...)."""
CHANGE = "change of CMC@1 over the baseline"
MODEL_NAMES = {BASELINE: "the baseline", FULL: "the part-regularized model"}
"""How the text names chapter 4's two models."""


# ----------------------------------------------------------------- chapter 4: the headline


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


# ----------------------------------------------------------------- chapter 6: the ablation


def ablation_variants(data: StudyData) -> dict[str, dict[str, Any]]:
    """The rows of Table 4 this data can train and test
    (:data:`~prreid_lib.studies.variants.ABLATION_VARIANTS`):
    without part boxes on the test images the parts-only row is left out (its test
    feature fuses the three part features, as in the paper)."""
    variants = dict(ABLATION_VARIANTS)
    if data.test_part_boxes is None:
        variants.pop(Variant.PARTS_ONLY)
    return variants


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


def ablation_table(
    ours: pd.DataFrame, variants: Sequence[str], ours_label: str, paper_label: str = PAPER_LABEL
) -> pd.DataFrame:
    """Our :func:`~prreid_lib.studies.variants.seed_summary` of the ablation beside the
    paper's Table 4, one row per variant of ``variants`` (joined by key): CMC@1 and CMC@5
    of both, our mAP, and each side's change of CMC@1 over its own baseline."""
    paper = paper_tables.ablation_table()
    table = pd.DataFrame(
        {
            f"{paper_label} CMC@1": paper["CMC@1"],
            f"{paper_label} CMC@5": paper["CMC@5"],
            f"{ours_label} CMC@1": ours["CMC@1"],
            f"{ours_label} CMC@5": ours["CMC@5"],
            f"{ours_label} mAP": ours["mAP"],
        }
    ).loc[list(variants)]
    for side in (ours_label, paper_label):
        table[f"{side} {CHANGE}"] = table[f"{side} CMC@1"] - table.loc[BASELINE, f"{side} CMC@1"]
    return table


def changes_over_baseline(
    table: pd.DataFrame, ours_label: str, paper_label: str = PAPER_LABEL
) -> pd.DataFrame:
    """The change of CMC@1 over the baseline of every other row of an :func:`ablation_table`:
    columns ``paper_label`` and ``ours_label``, rows named as the paper's."""
    rows = [v for v in table.index if v != BASELINE]
    changes = table.loc[rows, [f"{paper_label} {CHANGE}", f"{ours_label} {CHANGE}"]]
    changes.columns = [paper_label, ours_label]
    return changes.rename(index=LABELS)


def recipe_comparison(
    data: StudyData,
    runs: pd.DataFrame,
    *,
    seed: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
    eval_seed: int = 0,
) -> pd.DataFrame:
    """The baseline and the full model with the paper's recipe (seed ``seed`` of the
    ablation's per-seed ``runs``) and with the strong recipe (:data:`STRONG_PAIR`, trained
    or reused): the :data:`RECIPE_COLUMNS`, one row each."""
    strong = compare_variants(
        data, STRONG_PAIR, output_dir=output_dir, seed=seed, device=device, eval_seed=eval_seed
    )
    plain = runs[runs["seed"] == seed].loc[[BASELINE, FULL]]
    return pd.concat([plain, strong])[RECIPE_COLUMNS]


@dataclass(frozen=True)
class RecipeVerdicts:
    """The part gain with either recipe, the two baselines and the verdicts in words."""

    paper_gain: float
    strong_gain: float
    plain_base_cmc1: float
    strong_base_cmc1: float
    strong_vs_plain: str
    """``"above"`` or ``"below"``: the strong baseline against the paper recipe's."""
    paper_verdict: str
    strong_verdict: str


def recipe_verdicts(recipes: pd.DataFrame, noise: float) -> RecipeVerdicts:
    """:class:`RecipeVerdicts` of a :func:`recipe_comparison` (one training per model),
    each gain read against ``noise``, the paper recipe's seed spread of one training."""
    cmc1 = recipes["CMC@1"]
    paper_gain = float(cmc1[FULL] - cmc1[BASELINE])
    strong_gain = float(cmc1["strong + parts"] - cmc1["strong baseline"])
    strong_base = float(cmc1["strong baseline"])
    return RecipeVerdicts(
        paper_gain=paper_gain,
        strong_gain=strong_gain,
        plain_base_cmc1=float(cmc1[BASELINE]),
        strong_base_cmc1=strong_base,
        strong_vs_plain="above" if strong_base > cmc1[BASELINE] else "below",
        paper_verdict=seed_difference([0], [paper_gain], noise).words(),
        strong_verdict=seed_difference([0], [strong_gain], noise).words(),
    )


def variant_verdict(
    per_seed: pd.DataFrame,
    other: str,
    noise: float,
    base: str = BASELINE,
    metric: str = "CMC@1",
) -> Verdict:
    """:func:`~prreid_lib.uncertainty.seed_difference` of ``metric`` between two variants of
    a per-seed table (``other`` minus ``base``); a variant trained with one seed takes
    ``noise``, the seed spread of one training (:func:`headline_noise`)."""
    reference = noise if math.isfinite(noise) else None
    return seed_difference(per_seed.loc[[base], metric], per_seed.loc[[other], metric], reference)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def ordering_text(order: Ordering, reference: str = "the paper's Table 4") -> str:
    """How much of ``reference``'s ordering of the variants holds in ours
    (:func:`~prreid_lib.uncertainty.ordering_against`), in words: the Spearman rank
    correlation, the pairs held, reversed and unresolved by the book's one rule, and
    what the resolved pairs say."""
    rho = (
        f"is {order.spearman:.3f} (1: the same order, 0: no relation, -1: the reverse)"
        if math.isfinite(order.spearman)
        else "cannot be computed (fewer than two variants, or no spread in one column)"
    )
    held, rev = len(order.held), len(order.reversed)
    within = (
        f"their gap lies within {order.margin:.3f}"
        if math.isfinite(order.margin)
        else "the noise is unknown"
    )
    if held == rev == 0:
        meaning = "this data neither confirms nor contradicts any of them"
    elif rev == 0:
        meaning = "every ordering this data resolves agrees with the paper's"
    elif held == 0:
        meaning = "every ordering this data resolves contradicts the paper's"
    elif held > rev:
        meaning = "more of the resolved orderings agree with the paper's than contradict it"
    elif rev > held:
        meaning = "more of the resolved orderings contradict the paper's than agree with it"
    else:
        meaning = "as many resolved orderings contradict the paper's as agree with it"
    return (
        f"The Spearman rank correlation of our CMC@1 with {reference} {rho}. Of the "
        f"{_count(order.n_pairs, 'pair', 'pairs')} of variants the paper orders, "
        f"{_count(held, 'holds', 'hold')} beyond the noise, "
        f"{_count(rev, 'is', 'are')} reversed beyond it and "
        f"{_count(len(order.unresolved), 'is', 'are')} unresolved ({within}): {meaning}."
    )
