"""Chapter 5's figure: the rank lists of several models, query by query (the paper's Fig. 6).

It takes the rank lists of :mod:`prreid_lib.studies.rank_lists` as plain arrays and
draws them at the page's width: :data:`CELL_INCHES` per image, titles of
:data:`TITLE_POINTS` points, a gap between queries, and each gallery image titled with
its rank and what it is (``match``, ``other``, ``near-dup.``) so the figure reads
without its colours too. The chapter shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from prreid_lib.images import shown_rgb
from prreid_lib.viz.images import framed_image
from prreid_lib.viz.search import MATCH_COLOUR, OTHER_COLOUR, QUERY_COLOUR, THUMBNAIL

__all__ = ["CELL_INCHES", "NEAR_DUPLICATE_COLOUR", "TITLE_POINTS", "paired_rank_list_figure"]

CELL_INCHES = 1.25
"""Width of one image: a query and five ranks fill a 7.5-inch page."""
TITLE_POINTS = 10
"""Font size of every title and model label."""
NEAR_DUPLICATE_COLOUR = "#ff7f0e"
"""Frame of a wrong image of the query's make, model and colour (orange)."""
_ROW_HEIGHT = 0.95
"""Height of a row per inch of width: a landscape thumbnail and its title."""
_GAP = 0.2
"""Height of the gap between two queries, in rows."""


def _check_rank_lists(
    n_queries: int, ranked: Mapping[str, np.ndarray], flags: Mapping[str, np.ndarray], what: str
) -> None:
    """Raise ``ValueError`` unless every model has a ``(n_queries, k)`` list and flags."""
    if not ranked or n_queries < 1:
        raise ValueError(
            f"expected at least one query and one model; got {n_queries} query paths and "
            f"the models {list(ranked)}"
        )
    if list(ranked) != list(flags):
        raise ValueError(f"{what}: expected the models of ranked {list(ranked)}; got {list(flags)}")
    k = (np.shape(next(iter(ranked.values()))) or (0,))[-1]
    for name, order in ranked.items():
        shape = np.shape(order)
        if shape != (n_queries, k) or np.shape(flags[name]) != shape:
            raise ValueError(
                f"ranked[{name!r}] and {what}[{name!r}]: expected ({n_queries}, k) arrays, "
                f"one row per query path and the same k for every model; got {shape} and "
                f"{np.shape(flags[name])}"
            )


def _thumbnail(path: str) -> object:
    """The image at ``path`` as shown, at most :data:`THUMBNAIL` pixels on a side."""
    image = shown_rgb(path)
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    return image


def _cell(match: bool, near: bool, rank: int) -> tuple[str, str]:
    """The frame colour and title of the gallery image at ``rank``."""
    if match:
        return MATCH_COLOUR, f"{rank}: match"
    if near:
        return NEAR_DUPLICATE_COLOUR, f"{rank}: near-dup."
    return OTHER_COLOUR, f"{rank}: other"


def paired_rank_list_figure(
    query_paths: Sequence[str],
    gallery_paths: Sequence[str],
    ranked: Mapping[str, np.ndarray],
    is_match: Mapping[str, np.ndarray],
    *,
    near_duplicate: Mapping[str, np.ndarray] | None = None,
    row_titles: Mapping[str, str] | None = None,
    cell_inches: float = CELL_INCHES,
) -> Figure:
    """Rank lists of several models, one row per model for each query (models in the
    order of ``ranked``), queries apart by a gap: the query (framed black, titled
    ``query i`` on its first row, the model named beside it), then its ranked gallery
    images, titled ``rank: match`` (framed green), ``rank: near-dup.`` (orange: another
    vehicle of the query's make, model and colour, where ``near_duplicate`` says so) or
    ``rank: other`` (red). ``ranked[m][i]`` holds gallery indices in rank order,
    ``is_match[m][i, j]`` whether ``ranked[m][i, j]`` shows the query's vehicle;
    ``row_titles`` names each model's rows (default: the model's key)."""
    _check_rank_lists(len(query_paths), ranked, is_match, "is_match")
    if near_duplicate is not None:
        _check_rank_lists(len(query_paths), ranked, near_duplicate, "near_duplicate")
    titles, models = row_titles or {}, list(ranked)
    k = int(np.shape(ranked[models[0]])[1])
    heights = [h for _ in range(len(query_paths)) for h in [1.0] * len(models) + [_GAP]][:-1]
    fig = plt.figure(figsize=((k + 1) * cell_inches, sum(heights) * cell_inches * _ROW_HEIGHT))
    grid = fig.add_gridspec(len(heights), k + 1, height_ratios=heights)
    for i, path in enumerate(query_paths):
        query = _thumbnail(path)
        for m, name in enumerate(models):
            row = i * (len(models) + 1) + m
            ax = fig.add_subplot(grid[row, 0])
            framed_image(ax, query, QUERY_COLOUR, "")
            ax.set_title(f"query {i + 1}" if m == 0 else "", fontsize=TITLE_POINTS)
            ax.set_ylabel(titles.get(name, str(name)), fontsize=TITLE_POINTS)
            for j in range(k):
                near = near_duplicate is not None and bool(near_duplicate[name][i, j])
                colour, title = _cell(bool(is_match[name][i, j]), near, j + 1)
                ax = fig.add_subplot(grid[row, j + 1])
                framed_image(ax, _thumbnail(gallery_paths[ranked[name][i, j]]), colour, "")
                ax.set_title(title, fontsize=TITLE_POINTS)
    fig.tight_layout(pad=0.3)
    return fig
