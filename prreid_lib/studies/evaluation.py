"""Chapter 5's evaluations: the worked example, the paper's Tables 1-3 beside ours, rank lists.

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
  on the headline pair, beside the paper's Tables 1 and 2;
- :func:`veri_comparison` (:class:`VeriComparison`) and :func:`veri_table`: the
  VeRi-776 protocols, beside the paper's Table 3;
- :func:`rank_lists` (:class:`RankLists`): the ten nearest gallery images of a few
  queries, for the paper's Fig. 6;
- :func:`rerank_comparison`: image-to-image mAP with and without k-reciprocal
  re-ranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.datasets.veri776 import VeRi776, same_camera_junk
from prreid_lib.evaluate import evaluate_veri, image_features, veri_figures
from prreid_lib.metrics import (
    ReIDResult,
    evaluate_ranking,
    evaluate_ranking_with_index,
    evaluate_tracks,
    pairwise_distance,
    re_rank,
)
from prreid_lib.paper_tables import LABELS
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData, table_labels
from prreid_lib.studies.variants import (
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    evaluate_variant,
    train_variants,
)

__all__ = [
    "RANK_LIST_LENGTH",
    "VERI_SKIPPED",
    "RankLists",
    "ReIDResult",
    "VeriComparison",
    "evaluate_ranking",
    "evaluate_ranking_with_index",
    "evaluate_tracks",
    "evaluate_veri",
    "map_change_table",
    "pairwise_distance",
    "rank_lists",
    "re_rank",
    "rerank_comparison",
    "top_matches",
    "vehicleid_results",
    "vehicleid_table",
    "veri_comparison",
    "veri_map",
    "veri_table",
    "veri_title",
    "worked_example_table",
]

VERI_SKIPPED = "VeRi-776 training needs SynthVeh part boxes or chapter 3's detections; skipped"
"""What the chapter says when the data has no VeRi-776 (real VehicleID data)."""
RANK_LIST_LENGTH = 10
"""Gallery images shown per query in a rank list (the paper's Fig. 6)."""


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


# ----------------------------------------------------------------------------- VeRi-776


@dataclass(frozen=True, kw_only=True, eq=False)
class VeriComparison:
    """The headline pair on the VeRi-776 test set (:func:`veri_comparison`)."""

    runs: dict[str, TrainResult]
    """The trained (or reused) models by variant name."""
    results: dict[str, dict[str, ReIDResult]]
    """:func:`~prreid_lib.evaluate.evaluate_veri` of each model: ``"image"`` and ``"track"``."""
    test: VeRi776
    """The VeRi-776 data set whose query and gallery were ranked."""
    train_on: str
    """The training set of the models: ``"veri776"`` or ``"vehicleid"`` (a cross-set test)."""
    ours: str
    """The label of our numbers (:func:`~prreid_lib.studies.data.table_labels`)."""
    table: pd.DataFrame
    """:func:`veri_table`: Table 3 beside ours."""

    @property
    def title(self) -> str:
        """The table's title in Markdown (:func:`veri_title`)."""
        return veri_title(self.train_on)


def veri_title(train_on: str) -> str:
    """The VeRi-776 table's title in Markdown; it says when the models were trained on the
    VehicleID training set (a cross-set test)."""
    trained = "VeRi-776" if train_on == "veri776" else "VehicleID"
    cross = " (a cross-set test)" if train_on != "veri776" else ""
    return (
        f"**Table 3 beside ours: VeRi-776 test set; our models trained on the "
        f"{trained} training set{cross}**"
    )


def veri_table(
    results: Mapping[str, Mapping[str, ReIDResult]],
    *,
    ours: str,
    paper: str,
    base: str = BASELINE,
    full: str = FULL,
) -> pd.DataFrame:
    """Table 3 beside ours: the paper's mAP, HIT@1 and HIT@5 (its mAP under the
    image-to-track one, the protocol of its HIT columns; NaN where it reports nothing)
    and the :func:`~prreid_lib.evaluate.veri_figures` of our ``base`` and ``full``."""
    reported = paper_tables.veri_table()
    return pd.DataFrame(
        {
            f"{paper}: part-regularized": {
                "mAP (image-to-image)": np.nan,
                "CMC@1 (image-to-image)": np.nan,
                "mAP (image-to-track)": reported["mAP"],
                "HIT@1": reported["HIT@1"],
                "HIT@5": reported["HIT@5"],
            },
            f"{ours}: baseline": veri_figures(results[base]),
            f"{ours}: part-regularized": veri_figures(results[full]),
        }
    )


def veri_comparison(
    data: StudyData,
    *,
    train_on: str | None = None,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
) -> VeriComparison | None:
    """Train (or reuse) the headline pair on ``train_on`` ("veri776", or "vehicleid" to
    reuse chapter 4's models; ``None``: the profile's ``study.veri_train``) and run both
    VeRi-776 protocols on SynthVeh's VeRi-776 test set. ``None`` when the data has no
    VeRi-776 (real VehicleID data): the chapter then says :data:`VERI_SKIPPED`."""
    if data.veri is None:
        return None
    train_on = train_on or data.profile.study.veri_train
    runs = train_variants(
        data, HEADLINE_PAIR, output_dir=output_dir, seed=seed, device=device, dataset=train_on
    )
    results = {name: evaluate_veri(run.model, data.veri) for name, run in runs.items()}
    ours, paper = table_labels(data)
    table = veri_table(results, ours=ours, paper=paper)
    return VeriComparison(
        runs=runs, results=results, test=data.veri, train_on=train_on, ours=ours, table=table
    )


def veri_map(veri: VeriComparison | None, name: str) -> float | str:
    """The image-to-image mAP of the variant ``name``, or ``"n/a"`` without VeRi-776."""
    return "n/a" if veri is None else float(veri.results[name]["image"].mAP)


# ----------------------------------------------------------------------------- rank lists


@dataclass(frozen=True, kw_only=True, eq=False)
class RankLists:
    """The nearest gallery images of the first queries, per model (:func:`rank_lists`)."""

    query_paths: list[str]
    """The queries' images, in query order."""
    gallery_paths: list[str]
    """Every gallery image; ``ranked`` indexes it."""
    ranked: dict[str, np.ndarray]
    """Per model, ``(queries, k)`` gallery indices in rank order (junk left out)."""
    is_match: dict[str, np.ndarray]
    """Per model, ``(queries, k)`` booleans: the ranked image shows the query's vehicle."""


def top_matches(
    distmat: np.ndarray, query: pd.DataFrame, gallery: pd.DataFrame, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery indices per query (ties by gallery index) once the
    protocol's junk (same vehicle, same camera) is pushed to the end, and whether each
    is a true match. ``query`` and ``gallery`` need columns ``pid`` and ``camid``."""
    d = np.array(distmat, dtype=float)
    d[same_camera_junk(query, gallery)] = np.inf  # the protocol's junk: ignored
    ranked = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ranked, gallery["pid"].to_numpy()[ranked] == query["pid"].to_numpy()[:, None]


def rank_lists(
    runs: Mapping[str, TrainResult], test: VeRi776, *, n_queries: int, k: int = RANK_LIST_LENGTH
) -> RankLists:
    """Rank lists of the first ``n_queries`` VeRi-776 queries for each run's model: the
    ``k`` nearest gallery images by L2 distance of the global feature (:func:`top_matches`)."""
    q, g = test.query, test.gallery
    shown = q.iloc[: min(n_queries, len(q))]
    ranked, is_match = {}, {}
    for name, run in runs.items():
        d = pairwise_distance(image_features(run.model, shown), image_features(run.model, g))
        ranked[name], is_match[name] = top_matches(np.array(d), shown, g, min(k, len(g)))
    return RankLists(
        query_paths=shown["path"].tolist(),
        gallery_paths=g["path"].tolist(),
        ranked=ranked,
        is_match=is_match,
    )


# ----------------------------------------------------------------------------- re-ranking


def map_change_table(
    plain: Mapping[str, float], reranked: Mapping[str, float], *, ours: str
) -> pd.DataFrame:
    """One row per variant (its label): ``mAP``, ``mAP re-ranked`` and their ``change``;
    the index is named after ``ours``."""
    rows = {
        LABELS.get(name, name): {
            "mAP": plain[name],
            "mAP re-ranked": reranked[name],
            "change": reranked[name] - plain[name],
        }
        for name in plain
    }
    return pd.DataFrame(rows).T.rename_axis(f"{ours}, VeRi-776 image-to-image")


def rerank_comparison(veri: VeriComparison) -> pd.DataFrame:
    """Image-to-image mAP of each model of ``veri`` with and without k-reciprocal
    re-ranking at its default settings (:func:`~prreid_lib.evaluate.evaluate_veri` with
    ``rerank={}``), as :func:`map_change_table`."""
    plain = {name: res["image"].mAP for name, res in veri.results.items()}
    again = {
        name: evaluate_veri(run.model, veri.test, rerank={})["image"].mAP
        for name, run in veri.runs.items()
    }
    return map_change_table(plain, again, ours=veri.ours)
