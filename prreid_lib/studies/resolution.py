"""Chapter 7's studies: the input size, where the identity cue lies, and the baseline's strength.

Three questions, each a set of trainings of the headline pair (or of the
part-regularized model alone) that differ in one knob:

- the input size (:func:`resolution_table`, the paper's Tables 5 and 6,
  :func:`paper_resolution_table`);
- the share of the identity cue outside the parts, a knob only SynthVeh has
  (:func:`cue_outside_gains`), read against the noise of two gains
  (:func:`cue_gain_summary`, :func:`gain_change_verdict`);
- how strong the baseline is (:func:`gain_vs_strength`): the pair from the
  pretrained start, from a random start and with the strong recipe.

Every verdict follows the book's one rule: a difference is beyond the noise
when it exceeds two standard errors (:func:`~prreid_lib.uncertainty.seed_difference`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.studies.data import StudyData, synthveh_variant
from prreid_lib.studies.variants import (
    ABLATION_VARIANTS,
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    Overrides,
    compare_over_seeds,
    compare_variants,
    part_gain,
    seed_summary,
)
from prreid_lib.uncertainty import Verdict, seed_difference, seed_spread

__all__ = [
    "GAIN_COLUMNS",
    "STRENGTH_COLUMNS",
    "cue_gain_summary",
    "cue_outside_gains",
    "gain_change",
    "gain_change_verdict",
    "gain_margin",
    "gain_vs_strength",
    "outside_cue_data",
    "pair_noise",
    "paper_resolution_table",
    "resolution_change",
    "resolution_table",
    "strength_extremes",
    "strength_noise",
    "strength_settings",
    "study_levels",
    "with_cue_strength",
]

GAIN_COLUMNS = [
    "baseline CMC@1",
    "part-regularized CMC@1",
    "gain CMC@1",
    "gain mAP",
]
"""Columns of :func:`cue_outside_gains` (indexed by ``outside_cue_share``)."""
STRENGTH_COLUMNS = [
    "baseline CMC@1",
    "part-regularized CMC@1",
    "gain CMC@1",
    "seed std",
    "seeds",
]
"""Columns of :func:`gain_vs_strength` (indexed by ``setting``)."""
NO_CUE_KNOB = "the real data sets have no cue knob: study skipped"
"""Printed when the cue study meets real data."""
_PAIR = cast("Mapping[str, Overrides]", HEADLINE_PAIR)  # keyed by Variant, a str


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


def outside_cue_data(
    data: StudyData,
    share: float,
    *,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
) -> StudyData | None:
    """The data set with ``share`` of each identity's cue outside the parts: ``data`` at
    its profile's own share, else SynthVeh generated again (or reused) under
    ``output_dir/synthveh-cues/outside<share>``; ``None`` on real data (no such knob)."""
    if share == data.profile.synth.outside_cue_share:
        return data
    if not data.synthetic:
        return None
    return synthveh_variant(
        data,
        f"{data.profile.name}-outside{share:g}",
        Path(output_dir) / "synthveh-cues" / f"outside{share:g}",
        data_seed=data_seed,
        output_dir=output_dir,
        device=device,
        outside_cue_share=share,
    )


def _gain_row(share: float, table: pd.DataFrame) -> dict[str, float]:
    """One row of :func:`cue_outside_gains` from a baseline / part-regularized table."""
    return {
        "outside_cue_share": share,
        "baseline CMC@1": table.loc[BASELINE, "CMC@1"],
        "part-regularized CMC@1": table.loc[FULL, "CMC@1"],
        "gain CMC@1": table.loc[FULL, "CMC@1"] - table.loc[BASELINE, "CMC@1"],
        "gain mAP": table.loc[FULL, "mAP"] - table.loc[BASELINE, "mAP"],
    }


def cue_outside_gains(
    data: StudyData,
    shares: Sequence[float],
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    data_seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """The headline pair trained on the data set of each outside-cue share; one row per
    share (index ``outside_cue_share``, columns :data:`GAIN_COLUMNS`).

    ``data_seed`` seeds the generated data sets and the gallery splits. On real
    data only the profile's own share can be measured: the study prints
    ``NO_CUE_KNOB`` and stops at the first other share.
    """
    rows = []
    for share in shares:
        d = outside_cue_data(data, share, data_seed=data_seed, output_dir=output_dir, device=device)
        if d is None:
            print(NO_CUE_KNOB)
            break
        table = compare_variants(
            d, _PAIR, output_dir=output_dir, seed=seed, device=device, eval_seed=data_seed
        )
        rows.append(_gain_row(share, table))
    if not rows:
        return pd.DataFrame(columns=GAIN_COLUMNS, index=pd.Index([], name="outside_cue_share"))
    return pd.DataFrame(rows).set_index("outside_cue_share")


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
        data, _PAIR, seeds, output_dir=output_dir, device=device, eval_seed=eval_seed
    )
    return seed_spread(per_seed, [BASELINE, FULL])


def resolution_change(res: pd.DataFrame, noise: float) -> Verdict:
    """Verdict on the change of CMC@1 from the smallest input size (first row of ``res``)
    to the largest (last row): two single trainings, each with the seed spread ``noise``."""
    return seed_difference([res["CMC@1"].iloc[0]], [res["CMC@1"].iloc[-1]], noise)


def gain_margin(noise: float) -> float:
    """Two standard errors of one gain (the difference of two single trainings, each with
    the seed spread ``noise``): the error bar of a gain."""
    return seed_difference([0.0], [0.0], noise).margin


def gain_change(gains: pd.DataFrame, noise: float) -> Verdict:
    """Verdict on the change of the part gain (``gain CMC@1``) from the first share of
    ``gains`` to the last; each gain has the noise of two trainings (``sqrt(2) * noise``)."""
    first, last = gains["gain CMC@1"].iloc[0], gains["gain CMC@1"].iloc[-1]
    return seed_difference([first], [last], math.sqrt(2) * noise)


def gain_change_verdict(change: Verdict) -> str:
    """The sentence that ends "The gain with the cues outside is ...": smaller or larger
    when ``change`` lies beyond the noise (the book's one rule), else about the same;
    without a known noise, that it cannot be compared."""
    if not change.known:
        return "not comparable with the noise: the seed spread is unknown (one training seed)"
    if change.beyond and change.difference < 0:
        return "smaller, as expected: the part branches help less once the cue leaves them"
    if change.beyond:
        return (
            "larger, against our expectation; the baselines differ too (the two data sets "
            "are not equally hard), so compare the gains with the seed spread before "
            "concluding"
        )
    return "about the same: the change lies within the noise of two gains"


def cue_gain_summary(gains: pd.DataFrame, noise: float) -> dict[str, float | str]:
    """What chapter 7 says of the cue study: ``gain_inside`` and ``gain_outside`` (the gains
    of CMC@1 at the first and last share), ``gain_margin`` (two standard errors of their
    change) and ``gain_verdict`` (:func:`gain_change_verdict`); NaN and "not measured"
    without two shares."""
    if len(gains) < 2:
        why = "no cue knob on real data" if len(gains) == 0 else "one level of the cue only"
        nan = float("nan")
        return {
            "gain_inside": nan,
            "gain_outside": nan,
            "gain_margin": nan,
            "gain_verdict": f"not measured ({why})",
        }
    change = gain_change(gains, noise)
    return {
        "gain_inside": float(gains["gain CMC@1"].iloc[0]),
        "gain_outside": float(gains["gain CMC@1"].iloc[-1]),
        "gain_margin": float(change.margin),
        "gain_verdict": gain_change_verdict(change),
    }


def strength_settings(
    data: StudyData,
    pair_seeds: Sequence[int],
    *,
    seed: int = 0,
    random_start: bool | None = None,
) -> dict[str, tuple[Mapping[str, Overrides], list[int]]]:
    """The settings of the gain-against-strength study: label -> (the pair's variants,
    training seeds). The pretrained start with chapter 4's ``pair_seeds``; a random start
    with ``seed`` (only when the data have a pretrained start and ``random_start``,
    default the profile's); the strong recipe of chapter 6 with ``seed``."""
    pair = _PAIR
    settings: dict[str, tuple[Mapping[str, Overrides], list[int]]] = {
        "pretrained start (chapter 4)": (pair, list(pair_seeds))
    }
    with_random = data.profile.study.random_start if random_start is None else random_start
    if data.pretrained is not None and with_random:
        randomly = {k: {**v, "pretrained": None} for k, v in pair.items()}
        settings["random start"] = (randomly, [seed])
    strong = {k: {**v, "recipe": "strong"} for k, v in pair.items()}
    settings["strong recipe (chapter 6)"] = (strong, [seed])
    return settings


def _strength_row(label: str, per_seed: pd.DataFrame, n_seeds: int) -> dict[str, Any]:
    """One row of :func:`gain_vs_strength` from a per-seed table of the pair."""
    summary = seed_summary(per_seed)
    gain = part_gain(summary, base=BASELINE, full=FULL)["gain"]
    noise = seed_spread(per_seed, [BASELINE, FULL])
    return {
        "setting": label,
        "baseline CMC@1": summary.loc[BASELINE, "CMC@1"],
        "part-regularized CMC@1": summary.loc[FULL, "CMC@1"],
        "gain CMC@1": gain,
        "seed std": noise if n_seeds > 1 else np.nan,
        "seeds": n_seeds,
    }


def _cues_outside_row(gains: pd.DataFrame) -> dict[str, Any]:
    """The row of :func:`gain_vs_strength` for the last level of the cue study."""
    last = gains.iloc[-1]
    return {
        "setting": f"cues outside the parts ({gains.index[-1]:g})",
        "baseline CMC@1": last["baseline CMC@1"],
        "part-regularized CMC@1": last["part-regularized CMC@1"],
        "gain CMC@1": last["gain CMC@1"],
        "seed std": np.nan,
        "seeds": 1,
    }


def gain_vs_strength(
    data: StudyData,
    gains: pd.DataFrame,
    pair_seeds: Sequence[int],
    *,
    seed: int = 0,
    random_start: bool | None = None,
    output_dir: str | Path = "runs",
    device: str = "auto",
    eval_seed: int = 0,
) -> pd.DataFrame:
    """The part gain against the baseline's strength: one row per setting of
    :func:`strength_settings` (trained or reused from the run cache) and, when the cue
    study has two levels or more, its last level (``gains`` of :func:`cue_outside_gains`).

    Index ``setting``; columns :data:`STRENGTH_COLUMNS` (``seed std``: NaN for one seed).
    """
    rows = []
    settings = strength_settings(data, pair_seeds, seed=seed, random_start=random_start)
    for label, (variants, seeds) in settings.items():
        per_seed = compare_over_seeds(
            data, variants, seeds, output_dir=output_dir, device=device, eval_seed=eval_seed
        )
        rows.append(_strength_row(label, per_seed, len(seeds)))
    if len(gains) > 1:
        rows.append(_cues_outside_row(gains))
    return pd.DataFrame(rows).set_index("setting")


def strength_noise(strength: pd.DataFrame) -> float:
    """The error bar of a single-seed setting in :func:`gain_vs_strength`'s table: the
    largest seed std measured (chapter 4's), else 0."""
    stds = strength["seed std"]
    return float(stds.max()) if stds.notna().any() else 0.0


def strength_extremes(strength: pd.DataFrame) -> dict[str, str | float]:
    """The settings with the weakest and the strongest baseline: ``weak_setting``,
    ``weak_base``, ``weak_gain`` and ``strong_setting``, ``strong_base``, ``strong_gain``."""
    ordered = strength.sort_values("baseline CMC@1")
    out: dict[str, str | float] = {}
    for key, at in (("weak", 0), ("strong", -1)):
        out[f"{key}_setting"] = str(ordered.index[at])
        out[f"{key}_base"] = float(ordered["baseline CMC@1"].iloc[at])
        out[f"{key}_gain"] = float(ordered["gain CMC@1"].iloc[at])
    return out
