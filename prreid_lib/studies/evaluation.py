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
  on the headline pair, beside the paper's Tables 1 and 2; :func:`vehicleid_verdict`
  and :func:`vehicleid_reading`: part-regularized minus baseline against chapter 4's
  seed spread, in the book's one sentence pattern; :func:`expected_sign`: what that
  verdict predicts for a rerun;
- :func:`veri_comparison` (:class:`VeriComparison`) and :func:`veri_table`: the
  VeRi-776 protocols, beside the paper's Table 3 (image-to-track, as the paper's
  Section 4.3 calls it); :func:`veri_reading`: the difference in words;
- :func:`rank_lists` (:class:`RankLists`): the nearest gallery images of a few
  queries, for the paper's Fig. 6; :func:`rank_list_counts` and
  :func:`rank_list_answer`: what the shown lists hold, counted and in words;
- :func:`rerank_comparison`: image-to-image mAP with and without k-reciprocal
  re-ranking; :func:`rerank_answer`: which model's mAP it moves more, in words.
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
from prreid_lib.synthveh_files import IDENTITIES_FILE
from prreid_lib.uncertainty import Verdict, seed_difference

__all__ = [
    "NOISE_TEST_SET",
    "RANK_LIST_LENGTH",
    "VERI_NOISE_BASIS",
    "VERI_SKIPPED",
    "RankListCounts",
    "RankLists",
    "ReIDResult",
    "VeriComparison",
    "evaluate_ranking",
    "evaluate_ranking_with_index",
    "evaluate_tracks",
    "evaluate_veri",
    "expected_sign",
    "map_change_table",
    "pairwise_distance",
    "rank_list_answer",
    "rank_list_counts",
    "rank_lists",
    "re_rank",
    "rerank_answer",
    "rerank_comparison",
    "top_matches",
    "vehicleid_reading",
    "vehicleid_results",
    "vehicleid_table",
    "vehicleid_verdict",
    "veri_comparison",
    "veri_groups",
    "veri_map",
    "veri_reading",
    "veri_table",
    "veri_title",
    "worked_example_table",
]

VERI_SKIPPED = "VeRi-776 training needs SynthVeh part boxes or chapter 3's detections; skipped"
"""What the chapter says when the data has no VeRi-776 (real VehicleID data)."""
RANK_LIST_LENGTH = 5
"""Gallery images shown per query in a rank list. The paper's Fig. 6 shows ten; five (the
cut-off of CMC@5 and HIT@5) keep the thumbnails legible at the page's width."""
NOISE_TEST_SET = "large"
"""The VehicleID test set chapter 4 repeats over training seeds
(:func:`~prreid_lib.studies.variants.compare_over_seeds`), so the one whose seed spread
is known."""
VERI_NOISE_BASIS = "one training of each model; no seed spread is measured on VeRi-776"
"""Why a VeRi-776 difference of this chapter cannot be compared with the noise."""


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
    """Table 3 beside ours: the paper's mAP, HIT@1 and HIT@5, all image-to-track (the
    paper's Section 4.3 calls Table 3 "the image-to-track evaluation results"; NaN in the
    image-to-image rows, where it reports nothing) and the
    :func:`~prreid_lib.evaluate.veri_figures` of our ``base`` and ``full``."""
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


def veri_reading(veri: VeriComparison | None, *, base: str = BASELINE, full: str = FULL) -> str:
    """Part-regularized minus baseline in both VeRi-776 mAPs of ``veri.table``, in words,
    with the book's verdict: one training each and no seed spread on VeRi-776, so it
    cannot be compared with the noise (:data:`VERI_NOISE_BASIS`)."""
    if veri is None:
        return "This data set has no VeRi-776 test set, so there is no difference to read."
    columns = [f"{veri.ours}: baseline", f"{veri.ours}: part-regularized"]
    diff = veri.table[columns[1]] - veri.table[columns[0]]
    parts = [f"{diff['mAP (image-to-image)']:+.3f} in image-to-image mAP"]
    if np.isfinite(diff.get("mAP (image-to-track)", np.nan)):
        parts.append(f"{diff['mAP (image-to-track)']:+.3f} in image-to-track mAP")
    verdict = Verdict(float(diff["mAP (image-to-image)"]), float("nan"), VERI_NOISE_BASIS)
    return (
        f"Part-regularized minus baseline is {' and '.join(parts)}; "
        f"{'each' if len(parts) > 1 else 'it'} {verdict.words()}."
    )


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
    near_duplicate: dict[str, np.ndarray] | None = None
    """Per model, ``(queries, k)`` booleans: the ranked image shows another vehicle of the
    query's make, model and colour; ``None`` without such labels (real data)."""
    total_queries: int = 0
    """How many queries the test set has (the lists show the first few)."""


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


def veri_groups(test: VeRi776) -> pd.Series | None:
    """The make-model-colour group of each identity of a SynthVeh VeRi-776 test set, by
    ``pid`` (from its :data:`~prreid_lib.synthveh_files.IDENTITIES_FILE`); ``None`` when
    the folder has no such file (real data)."""
    path = Path(test.root) / IDENTITIES_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path).set_index("pid")["group"]


def rank_lists(
    runs: Mapping[str, TrainResult], test: VeRi776, *, n_queries: int, k: int = RANK_LIST_LENGTH
) -> RankLists:
    """Rank lists of the first ``n_queries`` VeRi-776 queries for each run's model: the
    ``k`` nearest gallery images by L2 distance of the global feature (:func:`top_matches`)
    and, where :func:`veri_groups` knows them, which wrong ones are near-duplicates."""
    q, g = test.query, test.gallery
    shown = q.iloc[: min(n_queries, len(q))]
    groups = veri_groups(test)
    ranked: dict[str, np.ndarray] = {}
    is_match: dict[str, np.ndarray] = {}
    near: dict[str, np.ndarray] = {}
    for name, run in runs.items():
        d = pairwise_distance(image_features(run.model, shown), image_features(run.model, g))
        ranked[name], is_match[name] = top_matches(np.array(d), shown, g, min(k, len(g)))
        if groups is not None:
            same = (
                g["pid"].map(groups).to_numpy()[ranked[name]]
                == (shown["pid"].map(groups).to_numpy()[:, None])
            )
            near[name] = same & ~is_match[name]
    return RankLists(
        query_paths=shown["path"].tolist(),
        gallery_paths=g["path"].tolist(),
        ranked=ranked,
        is_match=is_match,
        near_duplicate=near if groups is not None else None,
        total_queries=len(q),
    )


@dataclass(frozen=True)
class RankListCounts:
    """What one model's shown rank lists hold (:func:`rank_list_counts`)."""

    queries: int
    """Queries shown."""
    ranks: int
    """Gallery images shown per query."""
    first: int
    """Queries whose rank-1 image is a true match."""
    found: int
    """Queries with a true match among the shown ranks."""
    wrong: int
    """Shown images of another vehicle."""
    near_duplicates: int | None
    """Of the ``wrong`` images, those of the query's make, model and colour (``None``
    without such labels)."""
    ahead: int | None
    """Queries whose first true match is shown before every near-duplicate shown."""


def rank_list_counts(lists: RankLists) -> dict[str, RankListCounts]:
    """Per model of ``lists``, what its shown rank lists hold (:class:`RankListCounts`)."""
    counts: dict[str, RankListCounts] = {}
    for name, flags in lists.is_match.items():
        match = np.asarray(flags, dtype=bool)
        n, k = match.shape
        first_match = np.where(match.any(axis=1), match.argmax(axis=1), k)
        near: int | None = None
        ahead: int | None = None
        if lists.near_duplicate is not None:
            dup = np.asarray(lists.near_duplicate[name], dtype=bool)
            first_dup = np.where(dup.any(axis=1), dup.argmax(axis=1), k)
            near, ahead = int(dup.sum()), int(((first_match < k) & (first_match < first_dup)).sum())
        counts[name] = RankListCounts(
            queries=n,
            ranks=k,
            first=int(match[:, 0].sum()) if k else 0,
            found=int((first_match < k).sum()),
            wrong=int((~match).sum()),
            near_duplicates=near,
            ahead=ahead,
        )
    return counts


def _how_often(full: int, base: int) -> str:
    """The words comparing two counts: more often than, less often than, as often as."""
    return "more often than" if full > base else "less often than" if full < base else "as often as"


def rank_list_answer(lists: RankLists | None, *, base: str = BASELINE, full: str = FULL) -> str:
    """The answer the shown rank lists give to the chapter's question (which model ranks the
    true vehicle above its near-duplicates), counted by :func:`rank_list_counts`, with
    the reminder that a few queries illustrate and the table over all queries measures."""
    if lists is None:
        return "This data set has no VeRi-776 test set, so there are no rank lists to read."
    counts = rank_list_counts(lists)
    b, f = counts[base], counts[full]
    queries = "query" if b.queries == 1 else "queries"
    text = (
        f"Of the {b.queries} {queries} shown, the baseline puts a true match at rank 1 for "
        f"{b.first} and the part-regularized model for {f.first}; a true match is among the "
        f"first {b.ranks} for {b.found} and {f.found} of them."
    )
    if b.near_duplicates is None or f.near_duplicates is None:
        text += (
            f" On these {queries} the part-regularized model puts the true vehicle first "
            f"{_how_often(f.first, b.first)} the baseline."
        )
    else:
        text += (
            f" Of the wrong images shown, {b.near_duplicates} of {b.wrong} (baseline) and "
            f"{f.near_duplicates} of {f.wrong} (part-regularized) are near-duplicates: "
            "other vehicles of the query's make, model and colour. The true vehicle comes "
            f"before every near-duplicate for {b.ahead} (baseline) and {f.ahead} "
            f"(part-regularized) of the {b.queries} {queries}: on these {queries} the "
            "part-regularized model ranks the true vehicle above the near-duplicates "
            f"{_how_often(f.ahead or 0, b.ahead or 0)} the baseline."
        )
    return text + (
        f" {b.queries} of {lists.total_queries} queries illustrate; the CMC@1 of the table "
        "above, over all of them, is the measurement."
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


def _moves(change: float, whose: str) -> str:
    """``raises``/``lowers``/``leaves`` ``whose`` mAP, with the size of ``change``."""
    if change == 0:
        return f"leaves {whose} image-to-image mAP unchanged"
    verb = "raises" if change > 0 else "lowers"
    return f"{verb} {whose} image-to-image mAP by {abs(change):.3f}"


def rerank_answer(table: pd.DataFrame | None, *, base: str = BASELINE, full: str = FULL) -> str:
    """Which model's mAP re-ranking moves more, from a :func:`rerank_comparison` table
    (rows named by :data:`~prreid_lib.paper_tables.LABELS`), with the book's verdict on
    the change of part-regularized minus baseline (one training each, no seed spread on
    VeRi-776: :data:`VERI_NOISE_BASIS`). ``None``: the data has no VeRi-776."""
    if table is None:
        return "This data set has no VeRi-776 test set, so there is nothing to re-rank."
    b, f = (table.loc[LABELS.get(name, name)] for name in (base, full))
    moved, larger = f["change"] - b["change"], abs(f["change"]) - abs(b["change"])
    which = (
        "the part-regularized model's moves more"
        if larger > 0
        else "the baseline's moves more"
        if larger < 0
        else "both move alike"
    )
    verdict = Verdict(float(moved), float("nan"), VERI_NOISE_BASIS)
    moves = (
        _moves(b["change"], "the baseline's"),
        _moves(f["change"], "the part-regularized model's"),
    )
    return (
        f"Re-ranking {moves[0]} and {moves[1]}: {which}. Part-regularized minus baseline "
        f"goes from {f['mAP'] - b['mAP']:+.3f} to "
        f"{f['mAP re-ranked'] - b['mAP re-ranked']:+.3f}; that change of {moved:+.3f} "
        f"{verdict.words()}."
    )
