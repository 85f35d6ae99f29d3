"""Training figures: learning curves, the pretraining curve, changes over a baseline.

Chapter 4 draws the per-epoch histories of its runs (:func:`learning_curves`,
:func:`pretraining_curve`); chapter 6 each ablation row's change of CMC@1 over
its baseline, the paper's beside ours (:func:`change_over_baseline_bars`).
Functions take tables and return matplotlib figures; the chapters display them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prreid_lib.config import PART_NAMES


def pretraining_curve(history: pd.DataFrame) -> Figure:
    """Training accuracy per epoch of the pretrained start (columns ``epoch``,
    ``global_acc``), on a 0-1 scale."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(history["epoch"], history["global_acc"], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training accuracy")
    ax.set_title("pretraining: make-model-colour group")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def learning_curves(
    histories: Mapping[str, pd.DataFrame],
    part_history: pd.DataFrame,
    parts: Sequence[str] = PART_NAMES,
    part_label: str = "part-reg.",
) -> Figure:
    """Per-epoch curves on a 2 x 2 grid (the fourth cell empty): the global identity loss
    of every history (by label) and the part losses of ``part_history``; the global
    branch's training accuracy of every history; each part branch's training accuracy.

    Histories have columns ``epoch``, ``global_ce``, ``global_acc`` and, per trained
    part, ``ce_<part>`` and ``acc_<part>``; parts without them are not drawn.
    """
    fig, grid = plt.subplots(2, 2, figsize=(8, 6))  # 2 x 2: readable at the page's width
    losses, accuracy, part_accuracy = grid[0, 0], grid[0, 1], grid[1, 0]
    grid[1, 1].axis("off")
    for label, h in histories.items():
        losses.plot(h["epoch"], h["global_ce"], marker="o", label=f"{label}: global")
        accuracy.plot(h["epoch"], h["global_acc"], marker="o", label=label)
    h = part_history
    for part in [p for p in parts if f"acc_{p}" in h]:
        losses.plot(h["epoch"], h[f"ce_{part}"], linestyle="--", label=f"{part_label}: {part}")
        part_accuracy.plot(h["epoch"], h[f"acc_{part}"], marker="o", label=part)
    losses.set_ylabel("cross-entropy")
    losses.set_title("identity losses")
    accuracy.set_ylabel("accuracy")
    accuracy.set_title("global branch: training accuracy")
    part_accuracy.set_ylabel("accuracy")
    part_accuracy.set_title("part branches: training accuracy")
    for ax in (losses, accuracy, part_accuracy):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def change_over_baseline_bars(
    changes: pd.DataFrame, margin: float, reference_note: str = "VehicleID large"
) -> Figure:
    """Horizontal bars of each row's change of CMC@1 over the baseline: the first column of
    ``changes`` (the reference, grey; its legend adds ``reference_note``) beside the second
    (ours, with error bars of +-``margin``, none when ``margin`` is NaN). Rows are drawn
    top to bottom in the order of ``changes``, labelled by its index."""
    if changes.shape[1] != 2:
        raise ValueError(
            f"changes must have two columns (reference, ours); got {list(changes.columns)}"
        )
    reference, ours = changes.columns
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    y = np.arange(len(changes))
    ax.barh(
        y - 0.2,
        changes[reference],
        height=0.4,
        label=f"{reference}: {reference_note}",
        color="#999999",
    )
    ax.barh(
        y + 0.2,
        changes[ours],
        height=0.4,
        xerr=None if np.isnan(margin) else margin,
        capsize=3,
        label=f"{ours}, bars: ±2 standard errors of a difference",
        color="#4c72b0",
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([str(label) for label in changes.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("change of CMC@1 over the baseline (w/o parts)")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=1, frameon=False)
    fig.tight_layout()
    return fig
