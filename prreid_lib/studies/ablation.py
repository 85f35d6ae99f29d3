"""Chapter 6's ablation: the variants of the paper's Table 4 beside its numbers; a strong recipe.

Chapter 6 sets the seven variants of the paper's Table 4 beside the paper's numbers
(:func:`ablation_variants`, :func:`ablation_table`, :func:`changes_over_baseline`),
takes the seed spread of one training from chapter 4's runs
(:func:`~prreid_lib.studies.comparison.headline_noise`), states how much of the paper's
ordering holds (:func:`ordering_text`, :func:`variant_verdict`) and repeats the pair
with a strong re-id recipe (:func:`recipe_comparison`, :func:`recipe_verdicts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.paper_tables import LABELS, PAPER_LABEL, Variant
from prreid_lib.studies.data import StudyData
from prreid_lib.studies.variants import ABLATION_VARIANTS, BASELINE, FULL, compare_variants
from prreid_lib.uncertainty import Ordering, Verdict, seed_difference

__all__ = [
    "RECIPE_COLUMNS",
    "STRONG_PAIR",
    "RecipeVerdicts",
    "ablation_table",
    "ablation_variants",
    "changes_over_baseline",
    "ordering_text",
    "recipe_comparison",
    "recipe_verdicts",
    "variant_verdict",
]

RECIPE_COLUMNS = ["CMC@1", "CMC@5", "mAP", "train accuracy", "train seconds"]
"""The columns of chapter 6's table of the paper's and the strong recipe."""
STRONG_PAIR: dict[str, dict[str, Any]] = {
    "strong baseline": {**ABLATION_VARIANTS[BASELINE], "recipe": "strong"},
    "strong + parts": {**ABLATION_VARIANTS[FULL], "recipe": "strong"},
}
"""Chapter 6's pair trained with the strong re-id recipe (BNNeck, triplet loss, ...)."""
CHANGE = "change of CMC@1 over the baseline"


def ablation_variants(data: StudyData) -> dict[str, dict[str, Any]]:
    """The rows of Table 4 this data can train and test
    (:data:`~prreid_lib.studies.variants.ABLATION_VARIANTS`):
    without part boxes on the test images the parts-only row is left out (its test
    feature fuses the three part features, as in the paper)."""
    variants = dict(ABLATION_VARIANTS)
    if data.test_part_boxes is None:
        variants.pop(Variant.PARTS_ONLY)
    return variants


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
    ``noise``, the seed spread of one training
    (:func:`~prreid_lib.studies.comparison.headline_noise`)."""
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
