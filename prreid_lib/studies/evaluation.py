"""Chapter 5's evaluations: the protocols by name, the worked example, VehicleID beside Tables 1-2.

The chapter teaches the protocols of :mod:`prreid_lib.metrics` by name; they are
re-exported here: :func:`~prreid_lib.metrics.evaluate_ranking` (VeRi-776
image-to-image, same-camera matches as junk),
:func:`~prreid_lib.metrics.evaluate_ranking_with_index` (the same from the
official index files), :func:`~prreid_lib.metrics.evaluate_tracks` (HIT@k, image
to track), :func:`~prreid_lib.metrics.pairwise_distance`,
:func:`~prreid_lib.metrics.re_rank` and :func:`~prreid_lib.evaluate.evaluate_veri`.
Beside them:

- :func:`worked_example_table`: the figures of the hand-worked example;
- :func:`vehicleid_results` and :func:`vehicleid_table`: the VehicleID protocol
  on the headline pair, beside the paper's Tables 1 and 2; :func:`vehicleid_verdict`
  and :func:`vehicleid_reading`: part-regularized minus baseline against chapter 4's
  seed spread, in the book's one sentence pattern; :func:`expected_sign`: what that
  verdict predicts for a rerun.

The VeRi-776 protocols beside the paper's Table 3 and re-ranking
(:mod:`~prreid_lib.studies.veri_evaluation`) and the rank lists of the paper's Fig. 6
(:mod:`~prreid_lib.studies.rank_lists`) have modules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.evaluate import evaluate_veri
from prreid_lib.metrics import (
    ReIDResult,
    evaluate_ranking,
    evaluate_ranking_with_index,
    evaluate_tracks,
    pairwise_distance,
    re_rank,
)
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData
from prreid_lib.studies.variants import BASELINE, FULL, evaluate_variant
from prreid_lib.uncertainty import Verdict, seed_difference

__all__ = [
    "NOISE_TEST_SET",
    "ReIDResult",
    "evaluate_ranking",
    "evaluate_ranking_with_index",
    "evaluate_tracks",
    "evaluate_veri",
    "expected_sign",
    "pairwise_distance",
    "re_rank",
    "vehicleid_reading",
    "vehicleid_results",
    "vehicleid_table",
    "vehicleid_verdict",
    "worked_example_table",
]

NOISE_TEST_SET = "large"
"""The VehicleID test set chapter 4 repeats over training seeds
(:func:`~prreid_lib.studies.variants.compare_over_seeds`), so the one whose seed spread
is known."""


# ----------------------------------------------------------------------------- worked example


def worked_example_table(image: ReIDResult, track: ReIDResult) -> pd.DataFrame:
    """The worked example's figures: CMC@1-3, mAP and mINP of the image-to-image ranking
    ``image`` (queries A and B, ``max_rank`` 3 or more) and CMC@1-2 and mAP of the
    image-to-track ranking ``track`` (``max_rank`` 2 or more); NaN where a protocol
    has no such figure."""
    return pd.DataFrame(
        {
            "image-to-image (A, B)": {
                "CMC@1": image.cmc[0],
                "CMC@2": image.cmc[1],
                "CMC@3": image.cmc[2],
                "mAP": image.mAP,
                "mINP": image.mINP,
            },
            "image-to-track": {"CMC@1": track.cmc[0], "CMC@2": track.cmc[1], "mAP": track.mAP},
        }
    )


# ----------------------------------------------------------------------------- VehicleID


def vehicleid_results(
    runs: Mapping[str, TrainResult], data: StudyData, *, seed: int = 0, metric: str = "euclidean"
) -> dict[str, pd.DataFrame]:
    """The VehicleID protocol on every test set for each run
    (:func:`~prreid_lib.studies.variants.evaluate_variant`); ``{name: table}`` in the
    order of ``runs``. ``seed`` draws the random galleries, ``metric`` is "euclidean"
    (the paper's L2) or "cosine"."""
    return {
        name: evaluate_variant(run, data, seed=seed, metric=metric) for name, run in runs.items()
    }


def vehicleid_table(
    results: Mapping[str, pd.DataFrame],
    *,
    ours: str,
    paper: str,
    base: str = BASELINE,
    full: str = FULL,
) -> pd.DataFrame:
    """Tables 1 and 2 beside ours: one row per (test set, CMC@1 / CMC@5) of the test sets
    in ``results[full]``, with our number of identities, the paper's part-regularized
    model (column ``"<paper>: part-regularized"``) and our ``base`` and ``full`` models
    (columns ``"<ours>: baseline"``, ``"<ours>: part-regularized"``)."""
    reported = paper_tables.vehicleid_table()
    rows = [
        {
            "test set": test_set,
            "metric": metric,
            "identities (ours)": int(results[full].loc[test_set, "identities"]),
            f"{paper}: part-regularized": reported.loc[test_set, metric],
            f"{ours}: baseline": results[base].loc[test_set, metric],
            f"{ours}: part-regularized": results[full].loc[test_set, metric],
        }
        for test_set in results[full].index
        for metric in ("CMC@1", "CMC@5")
    ]
    return pd.DataFrame(rows).set_index(["test set", "metric"])


def vehicleid_verdict(
    results: Mapping[str, pd.DataFrame],
    *,
    noise: float,
    test_set: str = NOISE_TEST_SET,
    base: str = BASELINE,
    full: str = FULL,
) -> Verdict:
    """The book's verdict on CMC@1 of ``full`` minus ``base`` on ``test_set`` of
    :func:`vehicleid_results`, one training each: its standard error takes ``noise``, the
    seed spread of one training (chapter 4's, e.g.
    :func:`~prreid_lib.studies.comparison.headline_noise`; NaN: unknown)."""
    values = [float(results[name].loc[test_set, "CMC@1"]) for name in (base, full)]
    known = noise if np.isfinite(noise) else None
    return seed_difference(values[:1], values[1:], reference_sd=known)


def vehicleid_reading(verdict: Verdict) -> str:
    """:func:`vehicleid_verdict` as a sentence: the difference and the book's verdict."""
    return f"Part-regularized minus baseline is {verdict.difference:+.3f}, which {verdict.words()}."


def expected_sign(verdict: Verdict, change: str) -> str:
    """What ``verdict`` predicts for the sign of part-regularized minus baseline when the
    chapter runs again with ``change`` (e.g. ``"with training seed 1"``): the same sign
    beyond the noise, either sign within it, no prediction when the noise is unknown."""
    if not verdict.known:
        return f"Without a seed spread this page predicts nothing about the sign {change}."
    if verdict.beyond:
        return f"The difference is beyond the noise, so expect it to keep its sign {change}."
    return (
        f"The difference is within the noise, so {change} its sign may come out either "
        "way, and a flip would say nothing about the two models."
    )
