"""Chapter 5's VeRi-776 evaluations: the headline pair beside the paper's Table 3; re-ranking.

- :func:`veri_comparison` (:class:`VeriComparison`) and :func:`veri_table`: the
  VeRi-776 protocols, beside the paper's Table 3 (image-to-track, as the paper's
  Section 4.3 calls it); :func:`veri_reading`: the difference in words;
- :func:`rerank_comparison`: image-to-image mAP with and without k-reciprocal
  re-ranking; :func:`rerank_answer`: which model's mAP it moves more, in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib import paper_tables
from prreid_lib.datasets.veri776 import VeRi776
from prreid_lib.evaluate import evaluate_veri, veri_figures
from prreid_lib.metrics import ReIDResult
from prreid_lib.paper_tables import LABELS
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData, table_labels
from prreid_lib.studies.variants import BASELINE, FULL, HEADLINE_PAIR, train_variants
from prreid_lib.uncertainty import Verdict

__all__ = [
    "VERI_NOISE_BASIS",
    "VERI_SKIPPED",
    "VeriComparison",
    "map_change_table",
    "rerank_answer",
    "rerank_comparison",
    "veri_comparison",
    "veri_map",
    "veri_reading",
    "veri_table",
    "veri_title",
]

VERI_SKIPPED = "VeRi-776 training needs SynthVeh part boxes or chapter 3's detections; skipped"
"""What the chapter says when the data has no VeRi-776 (real VehicleID data)."""
VERI_NOISE_BASIS = "one training of each model; no seed spread is measured on VeRi-776"
"""Why a VeRi-776 difference of this chapter cannot be compared with the noise."""


# ----------------------------------------------------------------------------- VeRi-776


@dataclass(frozen=True, kw_only=True, eq=False)
class VeriComparison:
    """The headline pair on the VeRi-776 test set (:func:`veri_comparison`)."""

    runs: dict[str, TrainResult]
    """The trained (or reused) models by variant name."""
    results: dict[str, dict[str, ReIDResult]]
    """:func:`~prreid_lib.evaluate.evaluate_veri` of each model: ``"image"`` and ``"track"``."""
    test: VeRi776
    """The VeRi-776 data set whose query and gallery were ranked."""
    train_on: str
    """The training set of the models: ``"veri776"`` or ``"vehicleid"`` (a cross-set test)."""
    ours: str
    """The label of our numbers (:func:`~prreid_lib.studies.data.table_labels`)."""
    table: pd.DataFrame
    """:func:`veri_table`: Table 3 beside ours."""

    @property
    def title(self) -> str:
        """The table's title in Markdown (:func:`veri_title`)."""
        return veri_title(self.train_on)


def veri_title(train_on: str) -> str:
    """The VeRi-776 table's title in Markdown; it says when the models were trained on the
    VehicleID training set (a cross-set test)."""
    trained = "VeRi-776" if train_on == "veri776" else "VehicleID"
    cross = " (a cross-set test)" if train_on != "veri776" else ""
    return (
        f"**Table 3 beside ours: VeRi-776 test set; our models trained on the "
        f"{trained} training set{cross}**"
    )


def veri_table(
    results: Mapping[str, Mapping[str, ReIDResult]],
    *,
    ours: str,
    paper: str,
    base: str = BASELINE,
    full: str = FULL,
) -> pd.DataFrame:
    """Table 3 beside ours: the paper's mAP, HIT@1 and HIT@5, all image-to-track (the
    paper's Section 4.3 calls Table 3 "the image-to-track evaluation results"; NaN in the
    image-to-image rows, where it reports nothing) and the
    :func:`~prreid_lib.evaluate.veri_figures` of our ``base`` and ``full``."""
    reported = paper_tables.veri_table()
    return pd.DataFrame(
        {
            f"{paper}: part-regularized": {
                "mAP (image-to-image)": np.nan,
                "CMC@1 (image-to-image)": np.nan,
                "mAP (image-to-track)": reported["mAP"],
                "HIT@1": reported["HIT@1"],
                "HIT@5": reported["HIT@5"],
            },
            f"{ours}: baseline": veri_figures(results[base]),
            f"{ours}: part-regularized": veri_figures(results[full]),
        }
    )


def veri_comparison(
    data: StudyData,
    *,
    train_on: str | None = None,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
) -> VeriComparison | None:
    """Train (or reuse) the headline pair on ``train_on`` ("veri776", or "vehicleid" to
    reuse chapter 4's models; ``None``: the profile's ``study.veri_train``) and run both
    VeRi-776 protocols on SynthVeh's VeRi-776 test set. ``None`` when the data has no
    VeRi-776 (real VehicleID data): the chapter then says :data:`VERI_SKIPPED`."""
    if data.veri is None:
        return None
    train_on = train_on or data.profile.study.veri_train
    runs = train_variants(
        data, HEADLINE_PAIR, output_dir=output_dir, seed=seed, device=device, dataset=train_on
    )
    results = {name: evaluate_veri(run.model, data.veri) for name, run in runs.items()}
    ours, paper = table_labels(data)
    table = veri_table(results, ours=ours, paper=paper)
    return VeriComparison(
        runs=runs, results=results, test=data.veri, train_on=train_on, ours=ours, table=table
    )


def veri_map(veri: VeriComparison | None, name: str) -> float | str:
    """The image-to-image mAP of the variant ``name``, or ``"n/a"`` without VeRi-776."""
    return "n/a" if veri is None else float(veri.results[name]["image"].mAP)


def veri_reading(veri: VeriComparison | None, *, base: str = BASELINE, full: str = FULL) -> str:
    """Part-regularized minus baseline in both VeRi-776 mAPs of ``veri.table``, in words,
    with the book's verdict: one training each and no seed spread on VeRi-776, so it
    cannot be compared with the noise (:data:`VERI_NOISE_BASIS`)."""
    if veri is None:
        return "This data set has no VeRi-776 test set, so there is no difference to read."
    columns = [f"{veri.ours}: baseline", f"{veri.ours}: part-regularized"]
    diff = veri.table[columns[1]] - veri.table[columns[0]]
    parts = [f"{diff['mAP (image-to-image)']:+.3f} in image-to-image mAP"]
    if np.isfinite(diff.get("mAP (image-to-track)", np.nan)):
        parts.append(f"{diff['mAP (image-to-track)']:+.3f} in image-to-track mAP")
    verdict = Verdict(float(diff["mAP (image-to-image)"]), float("nan"), VERI_NOISE_BASIS)
    return (
        f"Part-regularized minus baseline is {' and '.join(parts)}; "
        f"{'each' if len(parts) > 1 else 'it'} {verdict.words()}."
    )


# ----------------------------------------------------------------------------- re-ranking


def map_change_table(
    plain: Mapping[str, float], reranked: Mapping[str, float], *, ours: str
) -> pd.DataFrame:
    """One row per variant (its label): ``mAP``, ``mAP re-ranked`` and their ``change``;
    the index is named after ``ours``."""
    rows = {
        LABELS.get(name, name): {
            "mAP": plain[name],
            "mAP re-ranked": reranked[name],
            "change": reranked[name] - plain[name],
        }
        for name in plain
    }
    return pd.DataFrame(rows).T.rename_axis(f"{ours}, VeRi-776 image-to-image")


def rerank_comparison(veri: VeriComparison) -> pd.DataFrame:
    """Image-to-image mAP of each model of ``veri`` with and without k-reciprocal
    re-ranking at its default settings (:func:`~prreid_lib.evaluate.evaluate_veri` with
    ``rerank={}``), as :func:`map_change_table`."""
    plain = {name: res["image"].mAP for name, res in veri.results.items()}
    again = {
        name: evaluate_veri(run.model, veri.test, rerank={})["image"].mAP
        for name, run in veri.runs.items()
    }
    return map_change_table(plain, again, ours=veri.ours)


def _moves(change: float, whose: str) -> str:
    """``raises``/``lowers``/``leaves`` ``whose`` mAP, with the size of ``change``."""
    if change == 0:
        return f"leaves {whose} image-to-image mAP unchanged"
    verb = "raises" if change > 0 else "lowers"
    return f"{verb} {whose} image-to-image mAP by {abs(change):.3f}"


def rerank_answer(table: pd.DataFrame | None, *, base: str = BASELINE, full: str = FULL) -> str:
    """Which model's mAP re-ranking moves more, from a :func:`rerank_comparison` table
    (rows named by :data:`~prreid_lib.paper_tables.LABELS`), with the book's verdict on
    the change of part-regularized minus baseline (one training each, no seed spread on
    VeRi-776: :data:`VERI_NOISE_BASIS`). ``None``: the data has no VeRi-776."""
    if table is None:
        return "This data set has no VeRi-776 test set, so there is nothing to re-rank."
    b, f = (table.loc[LABELS.get(name, name)] for name in (base, full))
    moved, larger = f["change"] - b["change"], abs(f["change"]) - abs(b["change"])
    which = (
        "the part-regularized model's moves more"
        if larger > 0
        else "the baseline's moves more"
        if larger < 0
        else "both move alike"
    )
    verdict = Verdict(float(moved), float("nan"), VERI_NOISE_BASIS)
    moves = (
        _moves(b["change"], "the baseline's"),
        _moves(f["change"], "the part-regularized model's"),
    )
    return (
        f"Re-ranking {moves[0]} and {moves[1]}: {which}. Part-regularized minus baseline "
        f"goes from {f['mAP'] - b['mAP']:+.3f} to "
        f"{f['mAP re-ranked'] - b['mAP re-ranked']:+.3f}; that change of {moved:+.3f} "
        f"{verdict.words()}."
    )
