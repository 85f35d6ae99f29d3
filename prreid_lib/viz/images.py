"""Standard figures: image grids with part boxes, near-duplicate groups.

Functions return matplotlib figures; notebooks display them. Part colours are
fixed across the book so a reader learns them once. Images are drawn as a
viewer shows them (:func:`prreid_lib.images.shown_rgb`: EXIF orientation
applied), the frame part boxes are measured in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from prreid_lib.images import shown_rgb

PART_COLOURS: dict[str, str] = {
    "window": "#1f77b4",
    "light": "#ff7f0e",
    "brand": "#2ca02c",
    "vehicle": "#bbbbbb",
}


def draw_part_boxes(ax: plt.Axes, boxes: pd.DataFrame, visible_only: bool = True) -> None:
    """Draw part boxes (columns part, x1, y1, x2, y2, optional visible / imputed) on ``ax``.

    Imputed boxes are dashed, invisible ground-truth boxes are skipped unless
    ``visible_only`` is false (then dotted).
    """
    for row in boxes.itertuples(index=False):
        visible = bool(getattr(row, "visible", 1))
        if visible_only and not visible:
            continue
        style = "--" if bool(getattr(row, "imputed", False)) else "-"
        if not visible:
            style = ":"
        ax.add_patch(
            Rectangle(
                (row.x1, row.y1),
                row.x2 - row.x1,
                row.y2 - row.y1,
                fill=False,
                linewidth=1.2,
                linestyle=style,
                edgecolor=PART_COLOURS.get(row.part, "#d62728"),
            )
        )


def image_grid(
    paths: Sequence[str | Path],
    boxes: pd.DataFrame | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    cell_inches: float = 1.7,
    parts: Sequence[str] = ("window", "light", "brand"),
) -> Figure:
    """A grid of images, optionally with part boxes (``boxes`` keyed by column ``path``).

    An empty string in ``paths`` leaves its cell blank (ragged rows).
    """
    n = len(paths)
    if n == 0:
        raise ValueError("image_grid needs at least one image path")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches * 1.05), squeeze=False
    )
    by_path = boxes[boxes["part"].isin(parts)].groupby("path") if boxes is not None else None
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n or not paths[k]:
            continue
        path = str(paths[k])
        ax.imshow(np.asarray(shown_rgb(path)))
        if by_path is not None and path in by_path.groups:
            draw_part_boxes(ax, by_path.get_group(path))
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def near_duplicate_grid(
    images: pd.DataFrame,
    group_col: str = "group",
    n_groups: int = 4,
    ids_per_group: int = 5,
    boxes: pd.DataFrame | None = None,
    seed: int = 0,
    view: str | None = None,
) -> Figure:
    """Rows are near-duplicate groups (same make, model, colour); columns distinct identities.

    ``images`` needs columns ``path``, ``pid`` and ``group_col`` (and ``view`` when
    ``view`` is given). Groups with the most identities are shown first; one image
    per identity, chosen by ``seed``.
    """
    rng = np.random.default_rng(seed)
    pool = images if view is None else images[images["view"] == view]
    sizes = pool.groupby(group_col)["pid"].nunique().sort_values(ascending=False, kind="stable")
    groups = sizes[sizes >= 2].index[:n_groups]
    if len(groups) == 0:
        raise ValueError(f"no group in column {group_col!r} has two identities or more")
    paths: list[str] = []
    titles: list[str] = []
    for g in groups:
        pids = pool.loc[pool[group_col] == g, "pid"].drop_duplicates().to_numpy()[:ids_per_group]
        for c in range(ids_per_group):
            if c < len(pids):
                rows = pool[pool["pid"] == pids[c]]
                row = rows.iloc[int(rng.integers(len(rows)))]
                paths.append(row["path"])
                titles.append(f"group {g} · id {pids[c]}")
            else:
                paths.append("")
                titles.append("")
    return image_grid(paths, boxes, titles, ncols=ids_per_group)


def framed_image(ax: plt.Axes, image: object, colour: str, title: str) -> None:
    """Show ``image`` on ``ax`` without ticks, framed in ``colour`` (a match or not), titled."""
    ax.imshow(np.asarray(image))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    ax.set_title(title, fontsize=7)


def top_k(distmat: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` nearest gallery items per query (ties by gallery index)."""
    return np.argsort(np.asarray(distmat), axis=1, kind="stable")[:, :k]


def rank_list_figure(
    query_paths: Sequence[str],
    gallery_paths: Sequence[str],
    ranked: np.ndarray,
    is_match: np.ndarray,
    row_titles: Sequence[str] | None = None,
    cell_inches: float = 1.15,
) -> Figure:
    """Rank lists as in the paper's Fig. 6: the query, then its top-k gallery images.

    ``ranked[i]`` holds gallery indices in rank order, ``is_match[i, j]`` whether
    ``ranked[i, j]`` is a true match. True matches are framed green, false ones
    red, the query black.
    """
    nq, k = ranked.shape
    fig, axes = plt.subplots(
        nq, k + 1, figsize=((k + 1) * cell_inches, nq * cell_inches * 1.15), squeeze=False
    )
    for i in range(nq):
        cells = [(query_paths[i], "black", row_titles[i] if row_titles else "query")]
        cells += [
            (gallery_paths[ranked[i, j]], "#2ca02c" if is_match[i, j] else "#d62728", f"{j + 1}")
            for j in range(k)
        ]
        for ax, (path, colour, title) in zip(axes[i], cells, strict=True):
            framed_image(ax, shown_rgb(path), colour, title)
    fig.tight_layout(pad=0.2)
    return fig
