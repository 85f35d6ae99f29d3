"""Comparisons of variants: chapter 4's headline pair and chapter 6's ablation beside Table 4.

Chapter 4 trains the baseline and the part-regularized model over several
seeds (:func:`headline_pair`) and reads their difference against the noise of
training (:func:`headline_numbers`, :func:`floor_text`). Chapter 6 sets the
seven variants of the paper's Table 4 beside the paper's numbers
(:func:`ablation_table`), takes the seed spread of one training from chapter
4's runs (:func:`headline_noise`) and repeats the pair with a strong re-id
recipe (:func:`recipe_comparison`, :func:`recipe_verdicts`).
"""

from __future__ import annotations

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
from prreid_lib.studies.near_duplicates import floor_verdict
from prreid_lib.studies.variants import (
    ABLATION_VARIANTS,
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    compare_over_seeds,
    compare_variants,
    headline_seeds,
    part_gain,
    seed_summary,
)
from prreid_lib.uncertainty import pair_verdict, seed_difference, seed_spread

__all__ = [
    "HEADLINE_COLUMNS",
    "PER_SEED_COLUMNS",
    "RECIPE_COLUMNS",
    "STRONG_PAIR",
    "HeadlineNumbers",
    "Pretraining",
    "RecipeVerdicts",
    "ablation_table",
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
    "pretraining_summary",
    "recipe_comparison",
    "recipe_verdicts",
    "training_seeds",
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


def floor_text(baseline_cmc1: Sequence[float], oracle: Mapping | None) -> str:
    """The baseline (CMC@1 per seed) against the make-model-colour floor, in words: the
    floor's figures, then :func:`~prreid_lib.studies.near_duplicates.floor_verdict`."""
    verdict = floor_verdict(baseline_cmc1, None if oracle is None else oracle["CMC@1"])
    if oracle is None:
        return verdict
    return (
        f"On this test set ({oracle['groups']} groups) its expected CMC@1 is "
        f"{oracle['CMC@1']:.3f} (mAP {oracle['mAP']:.3f}): the floor above which a model "
        f"has learnt cues that tell near-duplicates apart. {verdict}"
    )


@dataclass(frozen=True)
class HeadlineNumbers:
    """Chapter 4's numbers for the prose: means over seeds, the gain, its verdict."""

    base_cmc1: float
    pr_cmc1: float
    base_map: float
    pr_map: float
    gain_cmc1: float
    gain_map: float
    noise_cmc1: float
    """The larger of the two models' CMC@1 standard deviations over seeds."""
    verdict: str
    """The gain against its standard error, in words (beyond two standard errors?)."""
    floor_text: str
    base_train_acc: float
    pr_window_acc: float
    """The window branch's training accuracy at the last epoch (first seed)."""


def headline_numbers(
    per_seed: pd.DataFrame, full_run: TrainResult, oracle: Mapping | None
) -> HeadlineNumbers:
    """:class:`HeadlineNumbers` of chapter 4's per-seed table (baseline and full model),
    the full model's first run and the :func:`~prreid_lib.studies.near_duplicates.group_oracle`."""
    summary = seed_summary(per_seed)
    gain = part_gain(summary)
    base, full = summary.loc[BASELINE], summary.loc[FULL]
    return HeadlineNumbers(
        base_cmc1=float(base["CMC@1"]),
        pr_cmc1=float(full["CMC@1"]),
        base_map=float(base["mAP"]),
        pr_map=float(full["mAP"]),
        gain_cmc1=gain["gain"],
        gain_map=float(full["mAP"] - base["mAP"]),
        noise_cmc1=gain["noise"],
        verdict=pair_verdict(per_seed, BASELINE, FULL).words(),
        floor_text=floor_text(per_seed.loc[[BASELINE], "CMC@1"], oracle),
        base_train_acc=float(per_seed.loc[BASELINE, "train accuracy"].mean()),
        pr_window_acc=float(full_run.history["acc_window"].iloc[-1]),
    )


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
