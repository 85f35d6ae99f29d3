"""Chapter 7's figures: part-regularized minus baseline by where the identity cue lies,
and against the baseline's strength.

Both take the tables of :mod:`prreid_lib.studies.cue_study` and
:mod:`prreid_lib.studies.baseline_strength` respectively and return a matplotlib
figure; the chapter shows it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

MAP_COLOUR = "#dd8452"
"""The colour of the mAP bars (CMC@1 keeps matplotlib's first colour)."""


def gain_by_cue_figure(gains: pd.DataFrame, margin: float, n_seeds: int) -> Figure:
    """Bars of part-regularized minus baseline (``gain CMC@1`` with ``margin`` as its error
    bar, and ``gain mAP``) at each share of the identity cue outside the parts (the index of
    ``gains``); the legend says the bars are two standard errors over ``n_seeds`` seeds.
    An unknown ``margin`` (NaN) draws no error bar."""
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(len(gains))
    cmc = gains["gain CMC@1"]
    ax.bar(x - 0.18, cmc, width=0.36, yerr=np.nan_to_num(margin), capsize=3, label="CMC@1")
    ax.bar(x + 0.18, gains["gain mAP"], width=0.36, label="mAP", color=MAP_COLOUR)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{s:g}" for s in gains.index])
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of the identity cue outside the parts")
    ax.set_ylabel("part-regularized minus baseline")
    ax.legend(
        fontsize=8,
        title=f"bars: ±2 standard errors ({n_seeds} seeds, chapter 4)",
        title_fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def gain_vs_strength_figure(
    strength: pd.DataFrame, noise: float, oracle: Mapping[str, float] | None = None
) -> Figure:
    """One point per setting of ``strength`` (columns ``baseline CMC@1``, ``gain CMC@1``,
    ``seed std``, ``seeds``): part-regularized minus baseline against the baseline's
    CMC@1, with the seed std as error bar where the setting has several seeds, else
    ``noise``; a dotted line at the ``CMC@1`` of the make-model-colour ``oracle`` when
    there is one."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, row in strength.iterrows():
        n = int(row["seeds"])
        yerr = row["seed std"] if n > 1 else noise
        name = f"{label} ({n} seed{'s' if n > 1 else ''})"
        ax.errorbar(
            row["baseline CMC@1"], row["gain CMC@1"], yerr=yerr, fmt="o", capsize=3, label=name
        )
    ax.axhline(0, color="grey", linewidth=0.8)
    if oracle is not None:  # knows make, model and colour, nothing of the vehicle
        ax.axvline(oracle["CMC@1"], color="grey", linestyle=":", label="make-model-colour oracle")
    ax.set_xlabel("baseline CMC@1 (how strong the global model is)")
    ax.set_ylabel("part-regularized minus baseline")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def regime_map_figure(table: pd.DataFrame) -> Figure:
    """The regime map (:func:`prreid_lib.studies.regime_map.regime_map`) as one panel per
    start: cue strength across, grid down, each cell coloured by the part losses' CMC@1
    difference (blue a gain, red a loss) and labelled with it and its verdict."""
    starts = sorted(table["start"].unique())
    fig, axes = plt.subplots(1, len(starts), figsize=(3.4 * len(starts), 2.6), squeeze=False)
    limit = max(float(np.nanmax(np.abs(table["difference"]))), 1e-3)
    for ax, start in zip(axes[0], starts, strict=True):
        part = table[table["start"] == start]
        cues = sorted(part["cue strength"].unique())
        grids = sorted(part["grid"].unique())
        values = np.full((len(grids), len(cues)), np.nan)
        for row in part.to_dict("records"):
            i, j = grids.index(row["grid"]), cues.index(row["cue strength"])
            values[i, j] = row["difference"]
            word = {"gain": "gain", "loss": "loss"}.get(row["verdict"], "noise")
            text = f"{row['difference']:+.3f}\n{word}"
            dark = abs(row["difference"]) > 0.6 * limit
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")  # fmt: skip
        ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(cues)), [f"{c:g}" for c in cues])
        ax.set_yticks(range(len(grids)), grids)
        ax.set_xlabel("cue strength")
        ax.set_ylabel("grid at 64 px")
        ax.set_title(f"{start} start", fontsize=9)
    fig.suptitle("part-regularized minus baseline, CMC@1", fontsize=9)
    fig.tight_layout()
    return fig
