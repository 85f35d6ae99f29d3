"""Chapter 5's rank lists: the nearest gallery images of a few VeRi-776 queries, per model.

:func:`rank_lists` (:class:`RankLists`) gives the nearest gallery images of the first
queries, for the paper's Fig. 6; :func:`rank_list_counts` (:class:`RankListCounts`) and
:func:`rank_list_answer` say what the shown lists hold, counted and in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib.datasets.veri776 import VeRi776, same_camera_junk
from prreid_lib.evaluate import image_features
from prreid_lib.metrics import pairwise_distance
from prreid_lib.runs import TrainResult
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.synthveh_files import IDENTITIES_FILE

__all__ = [
    "RANK_LIST_LENGTH",
    "RankListCounts",
    "RankLists",
    "rank_list_answer",
    "rank_list_counts",
    "rank_lists",
    "top_matches",
    "veri_groups",
]

RANK_LIST_LENGTH = 5
"""Gallery images shown per query in a rank list. The paper's Fig. 6 shows ten; five (the
cut-off of CMC@5 and HIT@5) keep the thumbnails legible at the page's width."""


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
