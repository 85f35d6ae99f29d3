"""Chapter 7's input-size study, and what the chapter's three studies share.

Chapter 7 asks three questions, each a set of trainings of the headline pair (or of
the part-regularized model alone) that differ in one knob. This module answers the
first, the input size (:func:`resolution_table`, the paper's Tables 5 and 6,
:func:`paper_resolution_table`), and holds what all three use: the chapter's data and
levels (:func:`with_cue_strength`, :func:`study_levels`), the seed spread of one
training of the pair (:func:`pair_noise`), the verdict on two single trainings
(:func:`single_training_difference`) and the shown copy of a table
(:func:`display_table`). The other two questions have modules of their own: the share
of the identity cue outside the parts (:mod:`~prreid_lib.studies.cue_study`) and how
strong the baseline is (:mod:`~prreid_lib.studies.baseline_strength`).

Every verdict follows the book's one rule: a difference is beyond the noise
when it exceeds two standard errors (:func:`~prreid_lib.uncertainty.seed_difference`).
A "gain" in a column name is part-regularized minus baseline, whatever its sign;
:func:`display_table` shows it as a "difference", missing values as a dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.studies.data import StudyData, synthveh_variant
from prreid_lib.studies.variants import (
    ABLATION_VARIANTS,
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    compare_over_seeds,
    compare_variants,
)
from prreid_lib.uncertainty import Verdict, seed_difference, seed_spread

__all__ = [
    "MISSING",
    "SHOWN_NAMES",
    "UNKNOWN_NOISE",
    "display_table",
    "pair_noise",
    "paper_resolution_table",
    "resolution_change",
    "resolution_table",
    "single_training_difference",
    "study_levels",
    "with_cue_strength",
]

UNKNOWN_NOISE = "one training seed: the seed spread is unknown"
"""The basis of a verdict whose seed spread is unknown (chapter 4 trained one seed)."""
MISSING = "—"
"""How :func:`display_table` shows a missing value (never "NaN")."""
SHOWN_NAMES: dict[str, str] = {"gain CMC@1": "difference CMC@1", "gain mAP": "difference mAP"}
"""Column names as the chapter shows them: part-regularized minus baseline, of either sign."""


def with_cue_strength(
    data: StudyData,
    cue_strength: float | None,
    *,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
) -> StudyData:
    """``data`` with SynthVeh generated again at ``cue_strength`` (size and contrast of the
    in-part cues), from the same pretrained start; ``data`` itself when ``cue_strength``
    is ``None`` or the data are real.

    The data set is generated (or reused) under
    ``output_dir/synthveh-cues/strength<cue_strength>``.
    """
    if cue_strength is None or not data.synthetic:
        return data
    strength = float(cue_strength)
    return synthveh_variant(
        data,
        f"{data.profile.name}-cues{strength:g}",
        Path(output_dir) / "synthveh-cues" / f"strength{strength:g}",
        data_seed=data_seed,
        output_dir=output_dir,
        device=device,
        cue_strength=strength,
    )


def study_levels(
    data: StudyData,
    input_sizes: Sequence[int] | None = None,
    outside_cue_shares: Sequence[float] | None = None,
) -> tuple[list[int], list[float]]:
    """The input sizes and outside-cue shares to train: the given ones, else the profile's
    (:class:`~prreid_lib.config.StudySizes`)."""
    study = data.profile.study
    sizes = list(input_sizes) if input_sizes else list(study.input_sizes)
    shares = list(outside_cue_shares) if outside_cue_shares else list(study.outside_cue_shares)
    return sizes, shares


def display_table(
    table: pd.DataFrame,
    *,
    decimals: int = 3,
    keep: Sequence[str] = (),
    names: Mapping[str, str] = SHOWN_NAMES,
    missing: str = MISSING,
) -> pd.DataFrame:
    """A copy of ``table`` to show: float columns written with ``decimals`` decimals,
    missing values as ``missing`` (never "NaN"), columns renamed by ``names`` and, when
    there are rows, columns without any value left out.

    ``keep``: columns (as renamed) shown as they are, e.g. a setting such as a cue
    strength. The saved tables keep their numbers; only the shown copy is text.
    """
    shown = table.rename(columns=dict(names))
    if len(shown):
        shown = shown.loc[:, shown.notna().any()]
    out = shown.astype(object)
    for column in shown.columns:
        values = shown[column]
        if column not in keep and pd.api.types.is_float_dtype(values):
            out[column] = [missing if pd.isna(v) else f"{v:.{decimals}f}" for v in values]
        else:
            out[column] = [missing if pd.isna(v) else v for v in values]
    return out


def resolution_table(
    data: StudyData,
    sizes: Sequence[int],
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    eval_seed: int | None = None,
) -> pd.DataFrame:
    """The part-regularized model trained at each input size; one row per size
    (``"<size> px"``), :func:`~prreid_lib.studies.variants.compare_variants`'s columns
    and ``seconds per epoch``."""
    variants = {f"{s} px": {**ABLATION_VARIANTS[FULL], "input_size": s} for s in sizes}
    res = compare_variants(
        data, variants, output_dir=output_dir, seed=seed, device=device, eval_seed=eval_seed
    )
    res["seconds per epoch"] = res["train seconds"] / data.profile.train.epochs
    return res


def paper_resolution_table() -> pd.DataFrame:
    """The paper's Table 5 (VehicleID large: CMC@1, CMC@5) beside its Table 6 (VeRi-776:
    mAP, HIT@1, HIT@5), one row per input size."""
    veri = paper_tables.resolution_veri_table().set_index("input size")
    vehicleid = paper_tables.resolution_vehicleid_table()
    vehicleid = vehicleid[vehicleid["test set"] == "large"].set_index("input size")
    return vehicleid[["CMC@1", "CMC@5"]].join(veri, how="outer")


def pair_noise(
    data: StudyData,
    seeds: Sequence[int],
    *,
    output_dir: str | Path = "runs",
    device: str = "auto",
    eval_seed: int = 0,
) -> float:
    """The seed spread of one training of the headline pair over ``seeds`` (chapter 4's
    runs, from the run cache): :func:`~prreid_lib.uncertainty.seed_spread` of CMC@1
    (NaN for one seed)."""
    per_seed = compare_over_seeds(
        data, HEADLINE_PAIR, seeds, output_dir=output_dir, device=device, eval_seed=eval_seed
    )
    return seed_spread(per_seed, [BASELINE, FULL])


def single_training_difference(a: float, b: float, noise: float) -> Verdict:
    """Verdict on ``b - a`` where each is one training with the seed spread ``noise``
    (:func:`~prreid_lib.uncertainty.seed_difference`); an unknown ``noise`` (NaN, one
    training seed) gives a verdict that says so (:data:`UNKNOWN_NOISE`)."""
    if not math.isfinite(noise):
        return Verdict(float(b) - float(a), float("nan"), UNKNOWN_NOISE)
    return seed_difference([a], [b], noise)


def resolution_change(res: pd.DataFrame, noise: float) -> Verdict:
    """Verdict on the change of CMC@1 from the smallest input size (first row of ``res``)
    to the largest (last row): two single trainings, each with the seed spread ``noise``."""
    return single_training_difference(res["CMC@1"].iloc[0], res["CMC@1"].iloc[-1], noise)
