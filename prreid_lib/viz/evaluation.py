"""Chapter 5's figure: the rank lists of several models, query by query (the paper's Fig. 6).

It takes the rank lists of :mod:`prreid_lib.studies.evaluation` as plain arrays and
draws them with :func:`~prreid_lib.viz.images.rank_list_figure`; the chapter shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from prreid_lib.viz.images import rank_list_figure


def _check_rank_lists(
    n_queries: int, ranked: Mapping[str, np.ndarray], is_match: Mapping[str, np.ndarray]
) -> None:
    """Raise ``ValueError`` unless every model has a ``(n_queries, k)`` list and matches."""
    if not ranked:
        raise ValueError("ranked: expected the rank lists of at least one model; got none")
    if list(ranked) != list(is_match):
        raise ValueError(
            f"is_match: expected the models of ranked {list(ranked)}; got {list(is_match)}"
        )
    for name, order in ranked.items():
        shape = np.shape(order)
        if len(shape) != 2 or shape[0] != n_queries or np.shape(is_match[name]) != shape:
            raise ValueError(
                f"ranked[{name!r}] and is_match[{name!r}]: expected ({n_queries}, k) arrays, "
                f"one row per query path; got {shape} and {np.shape(is_match[name])}"
            )


def paired_rank_list_figure(
    query_paths: Sequence[str],
    gallery_paths: Sequence[str],
    ranked: Mapping[str, np.ndarray],
    is_match: Mapping[str, np.ndarray],
    *,
    row_titles: Mapping[str, str] | None = None,
    cell_inches: float = 1.15,
) -> Figure:
    """Rank lists of several models, one row per model for each query (models in the
    order of ``ranked``): the query, then its ranked gallery images, true matches framed
    green and false ones red. ``ranked[m][i]`` holds gallery indices in rank order,
    ``is_match[m][i, j]`` whether ``ranked[m][i, j]`` shows the query's vehicle;
    ``row_titles`` names each model's rows (default: the model's key)."""
    _check_rank_lists(len(query_paths), ranked, is_match)
    titles = row_titles or {}
    order = [(name, i) for i in range(len(query_paths)) for name in ranked]
    return rank_list_figure(
        [query_paths[i] for _, i in order],
        list(gallery_paths),
        np.stack([ranked[name][i] for name, i in order]),
        np.stack([is_match[name][i] for name, i in order]),
        row_titles=[titles.get(name, str(name)) for name, _ in order],
        cell_inches=cell_inches,
    )
