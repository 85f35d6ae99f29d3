"""The book's findings: what the chapters of one build measured, in sentences.

The findings page quotes the chapters, never recomputes a model: it reads the
values each chapter glued (:func:`prreid_lib.glued.load_glued`) in the build's
``output_dir`` and turns them into sentences whose words follow the numbers (a loss
is called a loss), reading the noise exactly as the chapters do.
A chapter that did not run in that folder gives a sentence that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prreid_lib.glued import load_glued
from prreid_lib.paper_tables import ablation_table
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.uncertainty import MARGIN_SE, Verdict

NOT_RUN = "Chapter {chapter} has not run into this build's folder, so there is nothing to report."


@dataclass(frozen=True)
class Findings:
    """The findings page's sentences, one per topic, and the headline's numbers."""

    paper: str
    headline: str
    headline_verdict: Verdict | None
    ordering: str
    regime_map: str
    cue: str
    cam: str
    locality: str
    training: str
    detector: str


def _has_numbers(glued: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """Whether a chapter glued a number under each of ``keys``."""
    return all(isinstance(glued.get(k), int | float) for k in keys)


def paper_claim() -> str:
    """What the paper reports for part regularization (Table 4, VehicleID, large test set)."""
    table = ablation_table()
    base, full = table.loc[BASELINE, "CMC@1"], table.loc[FULL, "CMC@1"]
    return (
        f"On the real VehicleID large test set the paper's baseline reaches CMC@1 {base:.3f} and "
        f"the model with all three part branches {full:.3f} (Table 4): {full - base:+.3f}, from "
        "one training each."
    )


def headline_verdict(ch04: Mapping[str, Any]) -> Verdict | None:
    """Chapter 4's verdict on part-regularized minus baseline CMC@1, rebuilt from what it
    glued (the difference and its margin of two standard errors), so this page reads the
    noise exactly as chapter 4 does; None when chapter 4 did not run."""
    if not _has_numbers(ch04, ("ch04_gain_cmc1", "ch04_n_seeds")):
        return None
    margin = ch04.get("ch04_gain_margin")
    se = margin / MARGIN_SE if isinstance(margin, int | float) else float("nan")
    n = ch04["ch04_n_seeds"]
    return Verdict(float(ch04["ch04_gain_cmc1"]), se, f"seed spread over {n} and {n} seeds")


def headline_sentence(ch04: Mapping[str, Any]) -> tuple[str, Verdict | None]:
    """Chapter 4's result in one sentence: who won, by how much, against which noise."""
    verdict = headline_verdict(ch04)
    if verdict is None or not _has_numbers(ch04, ("ch04_base_cmc1", "ch04_pr_cmc1")):
        return NOT_RUN.format(chapter=4), None
    if not verdict.known:
        lead = "The part-regularized model against the baseline, noise unknown"
    elif verdict.beyond:
        outcome = "lost against" if verdict.difference < 0 else "beat"
        lead = f"The part-regularized model {outcome} the baseline"
    else:
        lead = "The part-regularized model and the baseline did not differ beyond the noise"
    return (
        f"{lead}: CMC@1 {ch04['ch04_pr_cmc1']:.3f} against {ch04['ch04_base_cmc1']:.3f} on the "
        f"largest VehicleID test set (means over {ch04['ch04_n_seeds']} training seeds). The "
        f"difference, {verdict.difference:+.3f}, {verdict.words()}.",
        verdict,
    )


def ordering_sentence(ch06: Mapping[str, Any]) -> str:
    """Chapter 6's ordering of Table 4's variants against the paper's, in one sentence."""
    keys = ("ch06_n_pairs", "ch06_n_held", "ch06_n_reversed", "ch06_n_unresolved")
    if not all(k in ch06 for k in keys):
        return NOT_RUN.format(chapter=6)
    rho = ch06.get("ch06_spearman")
    rho_text = (
        f"the rank correlation (Spearman) of our CMC@1 column with the paper's is {rho:.3f}"
        if isinstance(rho, int | float)
        else "the rank correlation is undefined (too few variants)"
    )
    return (
        f"Of the {ch06['ch06_n_pairs']} pairs of Table 4's variants that the paper orders, ours "
        f"keep the paper's order beyond the noise in {ch06['ch06_n_held']}, reverse it beyond the "
        f"noise in {ch06['ch06_n_reversed']} and leave {ch06['ch06_n_unresolved']} within the "
        f"noise; {rho_text}."
    )


def cam_sentence(ch08: Mapping[str, Any]) -> str:
    """Chapter 8's share of the activation inside the part boxes, against a uniform map."""
    keys = ("ch08_share_base", "ch08_share_pr", "ch08_area_share", "ch08_share_diff")
    if not _has_numbers(ch08, keys):
        return NOT_RUN.format(chapter=8)
    verdict = ch08.get("ch08_share_verdict", "")
    text = (
        f"The share of the class-activation map inside the part boxes is "
        f"{ch08['ch08_share_base']:.3f} for the baseline and {ch08['ch08_share_pr']:.3f} for "
        f"the part-regularized model, against {ch08['ch08_area_share']:.3f} for a uniform map "
        f"(the boxes' share of the image); part-regularized minus baseline: "
        f"{ch08['ch08_share_diff']:+.3f}" + (f": the part losses {verdict}" if verdict else "")
    )
    lead = ch08.get("ch08_uniform_lead")
    return text + "." + (f" {lead}." if isinstance(lead, str) and lead else "")


def locality_sentence(ch07: Mapping[str, Any]) -> str:
    """Chapter 7's locality measurement at the chapters' input size: the share of the grid a
    part's pooled cells cover against its box's share of the image, and the share of its
    pooled feature's effective receptive field inside the box."""
    parts = ("window", "light", "brand")
    keys = ["ch07_loc_size", "ch07_loc_grid"]
    keys += [f"ch07_loc_{p}_{w}" for p in parts for w in ("box", "cells", "erf")]
    if not _has_numbers(ch07, keys):
        return NOT_RUN.format(chapter=7)
    ratios = [ch07[f"ch07_loc_{p}_cells"] / ch07[f"ch07_loc_{p}_box"] for p in parts]
    erf = ", ".join(f"{p} {ch07[f'ch07_loc_{p}_erf']:.3f}" for p in parts)
    size, grid = ch07["ch07_loc_size"], ch07["ch07_loc_grid"]
    text = (
        f"At {size} px the last stage is a {grid} x {grid} grid: the cells a part's feature "
        f"pools cover {min(ratios):.1f} to {max(ratios):.1f} times the share of the image its "
        f"box covers, and the share of each part feature's effective receptive field that lies "
        f"inside its box is {erf}"
    )
    large = [ch07.get("ch07_loc_large_size")] + [ch07.get(f"ch07_loc_{p}_erf_large") for p in parts]
    if all(isinstance(v, int | float) for v in large):
        shares = ", ".join(f"{p} {v:.3f}" for p, v in zip(parts, large[1:], strict=True))
        text += f"; at {large[0]} px, {shares}"
    return text + "."


def training_sentence(ch04: Mapping[str, Any]) -> str:
    """How far chapter 4's trainings got: final training accuracy of both models."""
    base, full = ch04.get("ch04_base_train_acc"), ch04.get("ch04_pr_train_acc")
    if not isinstance(base, int | float):
        return NOT_RUN.format(chapter=4)
    text = f"The baseline's global classifier ends its training at accuracy {base:.3f}"
    if isinstance(full, int | float):
        text += f", the part-regularized model's at {full:.3f}"
    still = ch04.get("ch04_curve_text")
    return text + "." + (f" {still}" if isinstance(still, str) and still else "")


def detector_sentence(ch03: Mapping[str, Any]) -> str:
    """Chapter 3's part detector: its mAP50 and the share of part slots it left to imputation."""
    if not isinstance(ch03.get("ch03_map50"), int | float):
        return NOT_RUN.format(chapter=3)
    text = (
        f"The part detector reaches mAP50 {ch03['ch03_map50']:.3f} on the held-out annotated images"
    )
    imputed = ch03.get("ch03_imputed_share")
    if isinstance(imputed, int | float):
        text += f"; {imputed:.3f} of the training images' part slots were imputed, not detected"
    return text + "."


def book_findings(glued: Mapping[str, Mapping[str, Any]]) -> Findings:
    """Every sentence of the findings page from one build's glued values, by chapter."""
    headline, verdict = headline_sentence(glued.get("04_training", {}))
    ch07 = glued.get("07_resolution", {})
    return Findings(
        paper=paper_claim(),
        headline=headline,
        headline_verdict=verdict,
        ordering=ordering_sentence(glued.get("06_ablation", {})),
        regime_map=str(ch07.get("ch07_map_reading", NOT_RUN.format(chapter=7))),
        cue=str(ch07.get("ch07_cue_conclusion", NOT_RUN.format(chapter=7))),
        cam=cam_sentence(glued.get("08_cam", {})),
        locality=locality_sentence(ch07),
        training=training_sentence(glued.get("04_training", {})),
        detector=detector_sentence(glued.get("03_part_detection", {})),
    )


def load_findings(output_dir: str | Path) -> Findings:
    """:func:`book_findings` of the build whose chapters wrote to ``output_dir``."""
    return book_findings(load_glued(output_dir))
