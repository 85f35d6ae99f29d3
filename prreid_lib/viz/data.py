"""Chapter 1's figures: near-duplicate group sizes, example identities, a camera strip and
the pretraining groups.

Functions take the tables of :mod:`prreid_lib.studies.dataset_tour` and return
matplotlib figures; the chapter shows them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from prreid_lib.viz.images import image_grid, near_duplicate_grid

BAR_COLOUR = "#4c72b0"
STRIP_LENGTH = 8
"""Cameras a camera strip shows at most."""
STRIP_COLUMNS = 4
"""Images per row of a camera strip: four of 1.8 in fill the page's width at full size."""
EXAMPLE_IDENTITIES = 12
"""Identities :func:`identity_examples` shows when the images have no groups."""


def group_size_bars(groups: pd.DataFrame) -> Figure:
    """Bars of how many near-duplicate groups have each size (``group_size`` column)."""
    fig, ax = plt.subplots(figsize=(5, 2.5))
    sizes = groups["group_size"].value_counts().sort_index()
    sizes.plot.bar(ax=ax, color=BAR_COLOUR)
    ax.set_xlabel("identities in the group (same make, model, colour)")
    ax.set_ylabel("groups")
    return fig


def identity_examples(
    images: pd.DataFrame, boxes: pd.DataFrame | None = None, seed: int = 0
) -> Figure:
    """Example identities: with a ``group`` column, four near-duplicate groups of five
    identities seen from the front (:func:`~prreid_lib.viz.images.near_duplicate_grid`);
    without, one image of each of the first twelve identities."""
    if "group" in images.columns:
        return near_duplicate_grid(
            images, "group", n_groups=4, ids_per_group=5, boxes=boxes, seed=seed, view="front"
        )
    sample = images.drop_duplicates("pid").head(EXAMPLE_IDENTITIES)
    return image_grid(sample["path"].tolist(), titles=[f"id {p}" for p in sample["pid"]])


def camera_strip(images: pd.DataFrame, boxes: pd.DataFrame | None = None) -> Figure:
    """One vehicle's images, one per camera (columns ``path``, ``pid``, ``camid``), at most
    :data:`STRIP_LENGTH` in rows of :data:`STRIP_COLUMNS`, each titled with the vehicle and
    camera."""
    shown = images.head(STRIP_LENGTH)
    titles = [f"id {p} · camera {c}" for p, c in zip(shown["pid"], shown["camid"], strict=True)]
    return image_grid(
        shown["path"].tolist(), boxes=boxes, titles=titles, ncols=STRIP_COLUMNS, cell_inches=1.8
    )


def pretraining_examples(pre: pd.DataFrame) -> Figure:
    """One image of each of the first eight make-model-colour groups (column ``pid``) of
    the pretraining split."""
    first = pre.drop_duplicates("pid").head(8)
    return image_grid(first["path"].tolist(), ncols=4, titles=[f"group {g}" for g in first["pid"]])
