"""Figures of the part labels and the part detector (chapters 2 and 3).

- :func:`before_after_grid`: the same images twice, with the boxes of one table
  on top and of another below (labels as drawn and as used; detections before
  and after imputation);
- :func:`part_statistics_figure`: the parts' sizes and how often each is visible;
- :func:`training_curves`: the detector's losses and held-out mAP per epoch;
- :func:`ap_per_part_figure`: AP50 and AP50-95 per part;
- :func:`failure_cases`: the held-out images with the most misses and false
  detections.

Boxes are drawn by :func:`prreid_lib.viz.images.draw_part_boxes` in the book's
part colours; images as a viewer shows them (:func:`prreid_lib.images.shown_rgb`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from prreid_lib.config import PART_NAMES
from prreid_lib.images import shown_rgb
from prreid_lib.viz.images import PART_COLOURS, draw_part_boxes

__all__ = [
    "LOSSES",
    "OUTCOME_STYLES",
    "PAGE_FONT",
    "PAGE_WIDTH",
    "ap_per_part_figure",
    "before_after_grid",
    "failure_cases",
    "outcome_boxes",
    "part_statistics_figure",
    "training_curves",
]

LOSSES = ("box_loss", "cls_loss", "dfl_loss")
"""The detector's three training losses, as ultralytics names them in its history."""
OUTCOME_STYLES = {"hit": "-", "miss": ":", "false": "--"}
"""Line style of a matched box by its outcome: solid hit, dotted miss, dashed false detection."""
PAGE_WIDTH = 7.2
"""Inches of a figure that fills the book's text column (about 750 px) at full size."""
PAGE_FONT = 11
"""Font size (pt) of the full-width figures: legible at :data:`PAGE_WIDTH`."""


def _show_image(ax: plt.Axes, path: str) -> None:
    ax.imshow(np.asarray(shown_rgb(path)))


def before_after_grid(
    paths: Sequence[str],
    before: pd.DataFrame,
    after: pd.DataFrame,
    titles: tuple[str, str] = ("before", "after"),
    cell_width: float = 1.7,
    height: float = 3.8,
    fontsize: float = 8,
    column_titles: Sequence[str] | None = None,
) -> Figure:
    """Two rows of the same images: ``before``'s boxes on top, ``after``'s below.

    ``before`` and ``after`` are part box tables keyed by ``path``; each panel is
    titled by its row's entry of ``titles``, and the top panel of image ``k`` also by
    ``column_titles[k]`` above it when given. The figure is ``cell_width`` inches per
    image wide and ``height`` inches high.
    """
    if len(paths) == 0:
        raise ValueError("before_after_grid needs at least one image path; none was given")
    if column_titles is not None and len(column_titles) != len(paths):
        raise ValueError(
            f"column_titles: expected one title per image ({len(paths)}), "
            f"found {len(column_titles)}"
        )
    fig, axes = plt.subplots(
        2, len(paths), figsize=(cell_width * len(paths), height), squeeze=False
    )
    for k, path in enumerate(paths):
        for row, (table, title) in enumerate(zip((before, after), titles, strict=True)):
            ax = axes[row, k]
            _show_image(ax, path)
            draw_part_boxes(ax, table[table["path"] == path])
            if row == 0 and column_titles is not None:
                title = f"{column_titles[k]}\n{title}"
            ax.set_title(title, fontsize=fontsize)
            ax.axis("off")
    fig.tight_layout()
    return fig


def part_statistics_figure(boxes: pd.DataFrame, stats: pd.DataFrame) -> Figure:
    """The parts' sizes and visibility at the page's width, in :data:`PAGE_FONT` pt.

    Top: histograms of the box width and height relative to the image, one colour per
    part (visible boxes only); bottom: per view, the share of images showing each part.
    ``boxes`` is an annotation table (``part``, ``x1``..``y2``, ``img_w``, ``img_h``,
    optional ``visible``); ``stats`` is :func:`prreid_lib.annotate.part_statistics`'s
    table of the same boxes (its ``visibility`` column, by view and part).
    """
    shown = boxes[boxes["visible"].astype(bool)] if "visible" in boxes else boxes
    parts = [p for p in PART_NAMES if p in set(shown["part"])]
    fig, axes = plt.subplot_mosaic(
        [["width", "height"], ["visibility", "visibility"]],
        figsize=(PAGE_WIDTH, 5.6),
        layout="constrained",
    )
    for part in parts:
        g = shown[shown["part"] == part]
        for key, num, den in (("width", "x", "img_w"), ("height", "y", "img_h")):
            size = (g[f"{num}2"] - g[f"{num}1"]) / g[den]
            axes[key].hist(size, bins=25, range=(0, 1), alpha=0.6, color=PART_COLOURS[part])
    vis = stats["visibility"].unstack("part")
    vis = vis[[p for p in PART_NAMES if p in vis.columns]]
    vis.plot.bar(
        ax=axes["visibility"], color=[PART_COLOURS[p] for p in vis.columns], rot=0, legend=False
    )
    labels = {
        "width": ("box width / image width", "boxes"),
        "height": ("box height / image height", "boxes"),
        "visibility": ("view", "share of images\nshowing the part"),
    }
    for key, (xlabel, ylabel) in labels.items():
        axes[key].set_xlabel(xlabel, fontsize=PAGE_FONT)
        axes[key].set_ylabel(ylabel, fontsize=PAGE_FONT)
        axes[key].tick_params(labelsize=PAGE_FONT)
    axes["visibility"].set_ylim(0, 1.05)
    named = [p for p in PART_NAMES if p in parts or p in vis.columns]
    handles = [Patch(color=PART_COLOURS[p], label=p) for p in named]
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncol=len(handles),
        frameon=False,
        fontsize=PAGE_FONT,
    )
    return fig


def training_curves(history: pd.DataFrame) -> Figure:
    """Left: train (solid) and validation (dashed) losses per epoch; right: held-out mAP.

    ``history`` is ultralytics' ``results.csv`` as a table (``epoch``,
    ``train/<loss>``, ``val/<loss>`` for :data:`LOSSES`, ``metrics/mAP50(B)``,
    ``metrics/mAP50-95(B)``).
    """
    h = history
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))  # the page's width
    for name, colour in zip(LOSSES, ("C0", "C1", "C2"), strict=True):
        axes[0].plot(h["epoch"], h[f"train/{name}"], color=colour, label=f"train {name}")
        axes[0].plot(h["epoch"], h[f"val/{name}"], "--", color=colour, label=f"val {name}")
    axes[0].set(xlabel="epoch", ylabel="loss", title="losses")
    axes[0].legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    axes[1].plot(h["epoch"], h["metrics/mAP50(B)"], marker=".", label="mAP50")
    axes[1].plot(h["epoch"], h["metrics/mAP50-95(B)"], marker=".", label="mAP50-95")
    axes[1].set(xlabel="epoch", ylabel="held-out mAP", ylim=(0, 1), title="validation")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def ap_per_part_figure(per_part: pd.DataFrame) -> Figure:
    """Bars of AP50 (solid) and AP50-95 (light) per part, in the parts' colours.

    ``per_part`` has one row per part in the order of :data:`~prreid_lib.config.PART_NAMES`
    with columns ``ap50`` and ``ap50_95`` (:class:`prreid_lib.detector.DetectionReport`).
    """
    fig, ax = plt.subplots(figsize=(5, 2.8))
    x = np.arange(len(PART_NAMES))
    colours = [PART_COLOURS[p] for p in PART_NAMES]
    ax.bar(x - 0.2, per_part["ap50"], 0.4, label="AP50", color=colours)
    ax.bar(x + 0.2, per_part["ap50_95"], 0.4, label="AP50-95", color=colours, alpha=0.5)
    ax.set_xticks(x, PART_NAMES)
    ax.set(ylim=(0, 1), ylabel="AP (held-out labels)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def outcome_boxes(matched: pd.DataFrame) -> pd.DataFrame:
    """Matched boxes (``outcome`` hit, miss or false) as
    :func:`~prreid_lib.viz.images.draw_part_boxes` draws them in :data:`OUTCOME_STYLES`: a
    miss as a hidden box (dotted), a false detection as an imputed one (dashed)."""
    unknown = sorted(set(matched["outcome"]) - set(OUTCOME_STYLES))
    if unknown:
        raise ValueError(
            f"outcome column: expected {sorted(OUTCOME_STYLES)}, found {unknown}; "
            "pass the table of prreid_lib.parts.match_boxes"
        )
    return matched.assign(
        visible=(matched["outcome"] != "miss").astype(int),
        imputed=matched["outcome"] == "false",
    )


def failure_cases(matched: pd.DataFrame, max_images: int = 8) -> Figure | None:
    """The images with the most misses and false detections, up to ``max_images``, four a row.

    ``matched`` is :func:`prreid_lib.parts.match_boxes`'s table; boxes are drawn in
    :data:`OUTCOME_STYLES` and each image is titled by its first three failures.
    ``None`` when no image has a failure.
    """
    bad = matched[matched["outcome"] != "hit"]
    worst = bad.groupby("path").size().sort_values(ascending=False).index[:max_images].tolist()
    if not worst:
        return None
    ncols = min(4, len(worst))
    nrows = -(-len(worst) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.8 * ncols, 2.2 * nrows), squeeze=False)
    for ax in axes.flat[len(worst) :]:
        ax.axis("off")
    for ax, path in zip(axes.flat, worst, strict=False):
        _show_image(ax, path)
        draw_part_boxes(ax, outcome_boxes(matched[matched["path"] == path]), visible_only=False)
        mine = bad[bad["path"] == path]
        pairs = zip(mine["outcome"], mine["part"], strict=True)
        ax.set_title("\n".join(f"{o} {p}" for o, p in list(pairs)[:3]), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
