"""Figures of class activation maps (chapter 8, the paper's Fig. 5).

The maps come in as arrays, already upsampled and scaled
(:func:`prreid_lib.studies.cam.cam_pair_panels`), and the shares as a table
(:func:`prreid_lib.studies.cam.share_table`); these functions only draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prreid_lib.config import PART_NAMES
from prreid_lib.uncertainty import Interval
from prreid_lib.viz.images import PART_COLOURS, draw_part_boxes

SHARE_COLOURS = ("#bbbbbb", "#dd8452", "#4c72b0")
"""Bar colours of :func:`share_bar_figure`: the uniform map, the baseline, the PR model."""


def _share_label(ax: plt.Axes, share: float) -> None:
    """The share inside the part boxes, written in the bottom-left corner of a map."""
    ax.text(
        0.02,
        0.04,
        f"in parts {share:.3f}",
        transform=ax.transAxes,
        fontsize=8,
        color="white",
        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1},
    )


def _check_panels(n: int, named: Mapping[str, Sequence], what: str) -> None:
    for name, values in named.items():
        if len(values) != n:
            raise ValueError(f"{what} of {name!r} has {len(values)} entries for {n} pictures")


def cam_pair_figure(
    pictures: Sequence[np.ndarray],
    overlays: Mapping[str, Sequence[np.ndarray]],
    shares: Mapping[str, Sequence[float]],
    boxes: Sequence[pd.DataFrame | None],
    pids: Sequence[int],
    parts: Sequence[str] = PART_NAMES,
) -> Figure:
    """One row per image (rows ``2k``, ``2k + 1`` a near-duplicate pair): the picture with
    its part boxes, then each model's map over it with its share inside the boxes.

    ``overlays[model]`` are maps in [0, 1] at each picture's size, drawn with the ``jet``
    colour map at half opacity; ``shares[model]`` the share written on each map;
    ``boxes`` each picture's part boxes (:func:`~prreid_lib.viz.images.draw_part_boxes`,
    ``None`` for none). A legend names the ``parts``, a colour bar the map's scale.
    """
    n = len(pictures)
    if n == 0:
        raise ValueError("cam_pair_figure needs at least one picture")
    _check_panels(n, overlays, "overlays")
    _check_panels(n, shares, "shares")
    _check_panels(n, {"boxes": boxes, "pids": pids}, "the list")
    models = list(overlays)
    fig, axes = plt.subplots(n, 1 + len(models), figsize=(7.4, 1.8 * n), squeeze=False)
    for k in range(n):
        for col, ax in enumerate(axes[k]):
            ax.imshow(pictures[k])
            if col > 0:
                model = models[col - 1]
                ax.imshow(overlays[model][k], cmap="jet", alpha=0.5, vmin=0, vmax=1)
                _share_label(ax, shares[model][k])
            if boxes[k] is not None:
                draw_part_boxes(ax, boxes[k])
            ax.set_xticks([])
            ax.set_yticks([])
        axes[k, 0].set_ylabel(f"pair {k // 2 + 1}\nid {pids[k]}", fontsize=9)
    for col, title in enumerate(("image, part boxes", *models)):
        axes[0, col].set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], color=PART_COLOURS[p], label=p) for p in parts]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.03, 0.9, 1), pad=0.3)
    colour_axis = fig.add_axes((0.92, 0.25, 0.02, 0.5))
    scale = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    fig.colorbar(scale, cax=colour_axis, label="CAM / its maximum")
    return fig


def share_bar_figure(
    table: pd.DataFrame,
    intervals: Mapping[str, Interval],
    parts: Sequence[str] = PART_NAMES,
    colours: Sequence[str] = SHARE_COLOURS,
) -> Figure:
    """Grouped bars of the share of positive map mass inside the part boxes.

    ``table`` has one row per map (the uniform reference first) and, first, the union's
    column then one column per part (:func:`prreid_lib.studies.cam.share_table`); one
    group of bars per column, one bar per row, coloured by ``colours``. The union's bar
    of each row carries its interval from ``intervals`` (by row name).
    """
    if len(table) > len(colours):
        raise ValueError(f"share_bar_figure has {len(colours)} colours for {len(table)} rows")
    missing = [name for name in table.index if name not in intervals]
    if missing:
        raise ValueError(f"share_bar_figure has no interval for the rows {missing}")
    fig, ax = plt.subplots(figsize=(7, 2.8))
    x = np.arange(len(parts) + 1)
    width, middle = 0.27, (len(table) - 1) / 2
    for k, (name, values) in enumerate(table.iterrows()):
        offset = (k - middle) * width
        heights = values.iloc[: len(x)].to_numpy()
        ax.bar(x + offset, heights, width=width, label=name, color=colours[k])
        ci = intervals[name]
        ax.errorbar(
            x[0] + offset, ci.mean, yerr=[[ci.mean - ci.low], [ci.high - ci.mean]],
            color="black", capsize=3, linewidth=1,
        )  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels(table.columns[: len(x)])
    ax.set_ylabel("share of positive mass")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
