"""Chapter 7's strength study: part-regularized minus baseline against how strong the baseline is.

The headline pair from the pretrained start, from a random start and with the strong
recipe (:func:`strength_settings`), beside the last level of the cue study, one row
each (:func:`gain_vs_strength`); :func:`strength_noise` gives the error bar of a
single-seed setting and :func:`strength_extremes` the settings with the weakest and
the strongest baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prreid_lib.studies.data import StudyData
from prreid_lib.studies.variants import (
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    Overrides,
    compare_over_seeds,
    part_gain,
    seed_summary,
)
from prreid_lib.uncertainty import seed_spread

__all__ = [
    "STRENGTH_COLUMNS",
    "gain_vs_strength",
    "strength_extremes",
    "strength_noise",
    "strength_settings",
]

STRENGTH_COLUMNS = [
    "baseline CMC@1",
    "part-regularized CMC@1",
    "gain CMC@1",
    "seed std",
    "seeds",
]
"""Columns of :func:`gain_vs_strength` (indexed by ``setting``)."""


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
    pair = HEADLINE_PAIR
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
    """Part-regularized minus baseline against the baseline's strength: one row per setting of
    :func:`strength_settings` (trained or reused from the run cache) and, when the cue
    study has two levels or more, its last level (``gains`` of
    :func:`~prreid_lib.studies.cue_study.cue_outside_gains`).

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
