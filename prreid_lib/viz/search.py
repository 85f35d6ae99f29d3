"""The figure of ``prreid search``: each query, then its nearest gallery images.

:func:`search_figure` draws a search table (:func:`prreid_lib.search.search_images`:
columns ``query``, ``rank``, ``gallery``, ``distance`` and, when identities
were given, ``match``) as rank lists, one row per query, as in the paper's
Fig. 6. Frames say what is known: the query black, a true match green, another
vehicle red, a gallery image without a known identity grey. Only the first
:data:`MAX_QUERIES` queries and :data:`MAX_RANKS` ranks are drawn (the title
says so when more were searched); the table holds them all.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from prreid_lib.images import shown_rgb
from prreid_lib.viz.images import framed_image

__all__ = [
    "MATCH_COLOUR",
    "MAX_QUERIES",
    "MAX_RANKS",
    "OTHER_COLOUR",
    "QUERY_COLOUR",
    "UNKNOWN_COLOUR",
    "search_figure",
]

MAX_QUERIES = 8
"""Queries drawn (one row each); the rest are only in the table."""
MAX_RANKS = 10
"""Ranks drawn per query; the rest are only in the table."""
QUERY_COLOUR = "#000000"
MATCH_COLOUR = "#2ca02c"
"""Frame of a gallery image of the query's vehicle (green)."""
OTHER_COLOUR = "#d62728"
"""Frame of a gallery image of another vehicle (red)."""
UNKNOWN_COLOUR = "#7f7f7f"
"""Frame of a gallery image whose identity, or the query's, is not known (grey)."""
THUMBNAIL = 192
"""Longest side, in pixels, of a drawn image (the figure never holds full-size photos)."""


def _frame_colour(match: object) -> str:
    """Green for a true match, red for another vehicle, grey when unknown (NA)."""
    if match is None or pd.isna(match):
        return UNKNOWN_COLOUR
    return MATCH_COLOUR if bool(match) else OTHER_COLOUR


def _draw(ax: plt.Axes, path: str, colour: str, title: str) -> None:
    """One framed thumbnail of ``path`` on ``ax``."""
    image = shown_rgb(path)
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    framed_image(ax, image, colour, title)


def _short(path: str, width: int = 18) -> str:
    """The file name of ``path``, cut to ``width`` characters."""
    name = Path(path).name
    return name if len(name) <= width else name[: width - 1] + "…"


def search_figure(
    table: pd.DataFrame,
    max_queries: int = MAX_QUERIES,
    max_ranks: int = MAX_RANKS,
    cell_inches: float = 1.15,
) -> Figure:
    """Rank lists of a search table: per query (first ``max_queries``) its top ``max_ranks``.

    Each gallery cell is titled ``rank: distance`` (3 significant digits); a ``match`` column (True,
    False or NA) colours the frames, without it every gallery frame is grey.
    Raises ``ValueError`` for a table without the search columns or rows.
    """
    missing = {"query", "rank", "gallery", "distance"} - set(table.columns)
    if missing or table.empty:
        raise ValueError(
            "search_figure: expected a table with columns query, rank, gallery, distance "
            f"and at least one row; got columns {list(table.columns)} and {len(table)} rows"
        )
    queries = list(dict.fromkeys(table["query"]))
    shown = queries[: max(1, int(max_queries))]
    longest = int(table.groupby("query", sort=False)["rank"].size().max())
    ncols = 1 + min(longest, max(1, int(max_ranks)))
    fig, axes = plt.subplots(
        len(shown),
        ncols,
        figsize=(ncols * cell_inches, len(shown) * cell_inches * 1.15 + 0.3),
        squeeze=False,
    )
    by_query = {q: rows.sort_values("rank") for q, rows in table.groupby("query", sort=False)}
    for row_axes, query in zip(axes, shown, strict=True):
        for ax in row_axes:
            ax.axis("off")
        row_axes[0].axis("on")
        _draw(row_axes[0], str(query), QUERY_COLOUR, f"query {_short(str(query))}")
        for ax, hit in zip(row_axes[1:], by_query[query].itertuples(index=False), strict=False):
            ax.axis("on")
            colour = _frame_colour(getattr(hit, "match", None))
            _draw(ax, str(hit.gallery), colour, f"{hit.rank}: {hit.distance:.3g}")
    if len(queries) > len(shown) or longest > ncols - 1:
        fig.suptitle(
            f"first {len(shown)} of {len(queries)} queries, top {ncols - 1} of {longest} "
            "ranks; the table holds them all",
            fontsize=8,
        )
    fig.tight_layout(pad=0.2)
    return fig
