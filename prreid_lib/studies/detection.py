"""The part detector's steps (chapter 3): train, measure, detect, repair, check.

The chapter trains YOLO on a labelled set (:func:`~prreid_lib.detector.train_detector`,
:func:`~prreid_lib.detector.evaluate_detector`), matches its detections on the
held-out images to the labels (:func:`held_out_matches`, :func:`outcome_table`),
detects parts on every image and repairs them
(:func:`~prreid_lib.detector.detect_part_box_steps`: selection, light extension,
imputation; :func:`imputation_summary`), and on SynthVeh compares the final boxes
with the true ones (:func:`compare_with_truth`, :func:`imputation_quality`). The
sentences the chapter quotes where a judgement depends on the build's numbers
(:func:`imputed_part_sentence`, :func:`imputed_iou_summary`,
:func:`hardest_part_sentence`, :func:`truth_agreement_sentence`) are made here from
those numbers. The library functions the chapter teaches by name are re-exported here.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from prreid_lib.annotate import read_yolo
from prreid_lib.config import PART_NAMES, DetectorConfig
from prreid_lib.detector import (
    dataset_images,
    detect_part_box_steps,
    evaluate_detector,
    predict_parts,
    train_detector,
)
from prreid_lib.parts import (
    box_iou,
    extend_lights,
    ground_truth_part_boxes,
    impute_missing_parts,
    match_boxes,
    select_part_boxes,
)
from prreid_lib.paths import canonical_paths
from prreid_lib.studies.part_labels import LabelledSet
from prreid_lib.synthveh_files import IDENTITIES_FILE, is_synthveh
from prreid_lib.yolo_env import prepare_dataset

__all__ = [
    "BOX_KINDS",
    "IOU_CORRECT",
    "PART_SLOTS",
    "TruthComparison",
    "bottom_gap",
    "compare_with_truth",
    "dataset_images",
    "detect_part_box_steps",
    "evaluate_detector",
    "extend_lights",
    "hardest_part_sentence",
    "held_out_matches",
    "impute_missing_parts",
    "imputation_examples",
    "imputation_glues",
    "imputation_quality",
    "imputation_summary",
    "imputed_iou_summary",
    "imputed_part_sentence",
    "imputed_per_part",
    "imputed_slot_titles",
    "iou_with_truth",
    "light_iou",
    "load_truth_parts",
    "match_boxes",
    "outcome_table",
    "relative_paths",
    "select_part_boxes",
    "train_detector",
    "truth_agreement_sentence",
    "vehicleid_groups",
]

PART_SLOTS: Mapping[str, int] = {"window": 1, "light": 2, "brand": 1}
"""Boxes of each part an image should have: one window, two lights, one brand."""
BOX_KINDS = ("detected", "imputed")
"""The two kinds of final part boxes, by the ``imputed`` flag."""
IOU_CORRECT = 0.5
"""The overlap with the true box at which AP50 counts a detection as correct."""
NO_TRUTH = (
    "Real data has no true boxes for the unlabelled images, so the final boxes cannot be "
    "compared with the truth."
)
"""What the chapter says about the final boxes' quality without SynthVeh's truth."""
NO_BOXES = "There is no final box to compare with the truth: the detector found no part."
"""What the chapter says when the truth is known but the pipeline produced no box."""
_XYXY = ["x1", "y1", "x2", "y2"]


def held_out_matches(
    labels: LabelledSet, weights: str | Path, cfg: DetectorConfig, device: str, work: Path
) -> pd.DataFrame:
    """The detector's boxes on the held-out (``val``) images matched to their labels, lights
    extended as the detector learnt them (:func:`~prreid_lib.parts.match_boxes`; the
    prepared labels go to ``work/labels``)."""
    paths = sorted(str(p.resolve()) for p in labels.images("val").glob("*.jpg"))
    predicted = predict_parts(weights, paths, cfg.imgsz, cfg.conf, device)
    prepared, _ = prepare_dataset(labels.parts_yaml, Path(work) / "labels")
    spec = yaml.safe_load(prepared.read_text())
    truth = read_yolo(Path(spec["path"]) / spec["val"])
    return match_boxes(predicted, truth)


def outcome_table(matched: pd.DataFrame) -> pd.DataFrame:
    """Per part: hits, misses and false detections of :func:`held_out_matches`, and the
    mean IoU of the hits."""
    outcomes = matched.groupby(["part", "outcome"]).size().unstack(fill_value=0)
    hits = matched[matched["outcome"] == "hit"]
    outcomes["mean IoU of hits"] = hits.groupby("part")["iou"].mean()
    return outcomes.reindex(PART_NAMES)


def relative_paths(table: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """``table`` with its ``path`` column relative to ``root``, for a page."""
    base = Path(root).resolve()
    return table.assign(path=[os.path.relpath(p, base) for p in table["path"]])


def imputation_summary(selected: pd.DataFrame, boxes: pd.DataFrame, n_images: int) -> pd.DataFrame:
    """Per part: the slots of ``n_images`` images (:data:`PART_SLOTS`), the boxes selected
    from the detections, the boxes after imputation and the imputed ones by source."""
    needed = pd.Series(PART_SLOTS) * n_images
    before = selected.groupby("part").size().reindex(PART_NAMES, fill_value=0)
    after = boxes.groupby("part").size().reindex(PART_NAMES, fill_value=0)
    summary = pd.DataFrame({"slots": needed, "detected": before, "after imputation": after})
    imputed = boxes[boxes["imputed"]]
    by_source = imputed.groupby(["part", "impute_source"]).size().unstack(fill_value=0)
    return summary.join(by_source.add_prefix("imputed from ")).fillna(0).astype(int)


def imputed_per_part(boxes: pd.DataFrame) -> dict[str, int]:
    """How many boxes of each part were imputed."""
    imputed = boxes.loc[boxes["imputed"], "part"]
    return {part: int(imputed.eq(part).sum()) for part in PART_NAMES}


def load_truth_parts(root: str | Path) -> pd.DataFrame:
    """SynthVeh's ground-truth table of every image of its VeRi-776 and VehicleID, with
    canonical image paths (:func:`prreid_lib.paths.canonical_path`, as the part boxes')."""
    from prreid_lib.synthveh import load_synthveh_parts

    root = Path(root)
    names = [name for name in ("VeRi-776", "VehicleID") if (root / name).is_dir()]
    if not names:
        raise FileNotFoundError(f"{root} holds neither VeRi-776 nor VehicleID of SynthVeh")
    return pd.concat([load_synthveh_parts(root / name) for name in names], ignore_index=True)


def bottom_gap(truth: pd.DataFrame) -> float:
    """Mean gap between the vehicle's bottom and the image's bottom edge, as a share of the
    image height: the error of extending lights to the image's bottom."""
    vehicle = truth[truth["part"] == "vehicle"]
    return float(((vehicle["img_h"] - vehicle["y2"]) / vehicle["img_h"]).mean())


def iou_with_truth(boxes: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per kind (detected, imputed) and part: boxes, mean IoU with the true box of the same
    part and side (lights extended in both; hidden parts too) and the share at IoU 0.5 or more.
    """
    true_boxes = ground_truth_part_boxes(truth.assign(visible=1))  # canonical paths
    boxes = boxes.assign(path=canonical_paths(boxes["path"]))
    pairs = boxes.merge(true_boxes, on=["path", "part", "side"], suffixes=("", "_true"))
    pairs["iou"] = box_iou(pairs[_XYXY].to_numpy(), pairs[[f"{c}_true" for c in _XYXY]].to_numpy())
    pairs["boxes"] = np.where(pairs["imputed"], "imputed", "detected")
    quality = pairs.groupby(["boxes", "part"]).agg(
        n=("iou", "size"),
        mean_iou=("iou", "mean"),
        iou_over_half=("iou", lambda v: (v >= 0.5).mean()),
    )
    quality.columns = ["n", "mean IoU with truth", "IoU >= 0.5"]
    return quality


def light_iou(quality: pd.DataFrame | None) -> dict[str, float]:
    """Mean IoU of the light boxes with the truth, per kind of :data:`BOX_KINDS`, from
    :func:`iou_with_truth`'s table; ``NaN`` for a kind it lacks or without a table."""
    return {
        kind: float(quality.loc[(kind, "light"), "mean IoU with truth"])
        if quality is not None and (kind, "light") in quality.index
        else float("nan")
        for kind in BOX_KINDS
    }


@dataclass(frozen=True)
class TruthComparison:
    """The final part boxes against SynthVeh's truth (:func:`compare_with_truth`)."""

    quality: pd.DataFrame
    """:func:`iou_with_truth`'s table."""
    bottom_gap: float
    """:func:`bottom_gap` of the data."""


def compare_with_truth(boxes: pd.DataFrame, root: str | Path) -> TruthComparison:
    """The final part boxes of a SynthVeh root against its true boxes."""
    truth = load_truth_parts(root)
    return TruthComparison(iou_with_truth(boxes, truth), bottom_gap(truth))


def _quality_column(quality: pd.DataFrame | None, kind: str, column: str) -> pd.Series:
    """One column of :func:`iou_with_truth`'s table for one kind of box, by part (NaN for a
    part or kind it lacks, or without a table)."""
    parts = list(PART_NAMES)
    if quality is None or quality.empty or kind not in quality.index.get_level_values(0):
        return pd.Series(float("nan"), index=parts, dtype=float)
    return quality.xs(kind, level=0)[column].astype(float).reindex(parts)


def imputation_quality(summary: pd.DataFrame, quality: pd.DataFrame | None) -> pd.DataFrame:
    """Per part: its slots, how many were imputed and their share (from
    :func:`imputation_summary`), and against SynthVeh's truth (:func:`iou_with_truth`) the
    mean IoU and the share at IoU :data:`IOU_CORRECT` or more, of the imputed and of the
    detected boxes; NaN without the truth or without boxes of that kind."""
    parts = list(PART_NAMES)
    imputed = summary.filter(like="imputed from ").sum(axis=1).reindex(parts, fill_value=0)
    slots = summary["slots"].reindex(parts)
    table = pd.DataFrame({"slots": slots, "imputed": imputed.astype(int)})
    table["share imputed"] = table["imputed"] / table["slots"].where(table["slots"] > 0)
    for kind in ("imputed", "detected"):
        table[f"mean IoU ({kind})"] = _quality_column(quality, kind, "mean IoU with truth")
        table[f"IoU >= 0.5 ({kind})"] = _quality_column(quality, kind, "IoU >= 0.5")
    return table


def imputed_part_sentence(table: pd.DataFrame, part: str) -> str:
    """What :func:`imputation_quality`'s ``table`` says of ``part``'s imputed boxes: how many
    slots were imputed, their mean IoU with the true box against the detected boxes', and
    whether most of them would count as correct detections (IoU :data:`IOU_CORRECT`)."""
    row = table.loc[part]
    n, slots = int(row["imputed"]), int(row["slots"])
    if n == 0:
        return f"No {part} box was imputed (0 of the {slots} {part} slots)."
    counted = f"{n} of the {slots} {part} slots ({row['share imputed']:.1%}) were imputed"
    iou, over = float(row["mean IoU (imputed)"]), float(row["IoU >= 0.5 (imputed)"])
    if math.isnan(iou):
        return f"{counted}; without true boxes their overlap cannot be measured."
    detected = float(row["mean IoU (detected)"])
    against = ""
    if not math.isnan(detected):
        diff = round(iou - detected, 3)
        side = "below" if diff < 0 else "above" if diff > 0 else "level with"
        against = f", {side} the {detected:.3f} of the detected {part} boxes"
    if over > 0.5:
        most = "most of them would count as correct detections"
    elif over < 0.5:
        most = "most of them would count as misses"
    else:
        most = "half of them would count as correct detections"
    return (
        f"{counted}. Their mean IoU with the true {part} is {iou:.3f}{against}; {over:.1%} of "
        f"them reach IoU {IOU_CORRECT}, the overlap at which AP50 counts a detection as "
        f"correct, so {most}."
    )


def imputed_iou_summary(table: pd.DataFrame, truth: bool = True) -> str:
    """:func:`imputation_quality`'s mean IoUs in one sentence: imputed against detected boxes
    per part, and the share of imputed brand boxes at IoU :data:`IOU_CORRECT` or more.
    ``truth``: whether the table was measured against true boxes (SynthVeh)."""
    if not truth:
        return NO_TRUTH
    if table[["mean IoU (imputed)", "mean IoU (detected)"]].isna().all().all():
        return NO_BOXES

    def shown(value: float) -> str:
        return "none" if math.isnan(value) else f"{value:.3f}"

    pairs = ", ".join(
        f"{part} {shown(row['mean IoU (imputed)'])} against {shown(row['mean IoU (detected)'])}"
        for part, row in table.iterrows()
    )
    text = f"Mean IoU with the true box, imputed against detected boxes: {pairs}."
    brand = table.loc["brand"]
    if brand["imputed"] > 0 and not math.isnan(brand["IoU >= 0.5 (imputed)"]):
        text += (
            f" {brand['share imputed']:.1%} of the brand slots were imputed, and "
            f"{brand['IoU >= 0.5 (imputed)']:.1%} of those boxes reach IoU {IOU_CORRECT}."
        )
    return text


def imputation_glues(table: pd.DataFrame, truth: bool = True) -> dict[str, float | str]:
    """The values chapter 3 glues from :func:`imputation_quality`'s ``table``, by key: per
    part the share of slots imputed, the imputed boxes' mean IoU and share at IoU 0.5 or
    more (NaN without ``truth``), and :func:`imputed_part_sentence`; and
    :func:`imputed_iou_summary`."""
    out: dict[str, float | str] = {}
    for part, row in table.iterrows():
        out[f"ch03_imputed_share_{part}"] = float(row["share imputed"])
        out[f"ch03_imputed_iou_{part}"] = float(row["mean IoU (imputed)"])
        out[f"ch03_imputed_over_half_{part}"] = float(row["IoU >= 0.5 (imputed)"])
        out[f"ch03_imputed_{part}_text"] = imputed_part_sentence(table, str(part))
    out["ch03_imputed_iou_text"] = imputed_iou_summary(table, truth)
    return out


def truth_agreement_sentence(quality: pd.DataFrame | None) -> str:
    """How close all final boxes (detected and imputed) come to SynthVeh's true boxes, from
    :func:`iou_with_truth`'s table: their mean IoU, the share at IoU :data:`IOU_CORRECT` or
    more, whether most of them would count as correct detections, and what that predicts
    for chapter 4's choice of part source (true or detected boxes)."""
    if quality is None:
        return NO_TRUTH
    if quality.empty or quality["n"].sum() == 0:
        return NO_BOXES
    n = quality["n"].astype(float)
    iou = float((n * quality["mean IoU with truth"]).sum() / n.sum())
    over = float((n * quality["IoU >= 0.5"]).sum() / n.sum())
    if over > 0.5:
        verdict = (
            "most of them would count as correct detections: the detected part source hands "
            "the part branches nearly the regions the true boxes do, so expect chapter 4's "
            "difference (part-regularized minus baseline) to change little between the two "
            "part sources"
        )
    else:
        verdict = (
            "at most half of them would count as correct detections: the detected part source "
            "hands the part branches other regions than the true boxes do, so expect chapter "
            "4's difference (part-regularized minus baseline) to change with the part source"
        )
    return (
        f"The final boxes overlap the true boxes with a mean IoU of {iou:.3f} over "
        f"{int(n.sum())} boxes, {over:.1%} of them at IoU {IOU_CORRECT} or more; {verdict}."
    )


def hardest_part_sentence(per_part: pd.DataFrame) -> str:
    """Which part has the lowest AP50 in ``per_part`` (columns ``part``, ``ap50``) and by how
    much it trails the next one; a tie (at three decimals) ranks no part hardest."""
    ranked = per_part.sort_values("ap50", kind="stable")
    low, nxt = ranked.iloc[0], ranked.iloc[1]
    gap = round(float(nxt["ap50"]) - float(low["ap50"]), 3)
    if gap <= 0:
        return (
            f"The {low['part']} and the {nxt['part']} tie for the lowest AP50 here "
            f"({low['ap50']:.3f}): this training ranks no part hardest."
        )
    return (
        f"The {low['part']} has the lowest AP50 here, {low['ap50']:.3f}, {gap:.3f} below the "
        f"next part (the {nxt['part']}, {nxt['ap50']:.3f}): another seed keeps the "
        f"{low['part']} hardest if it moves the AP50s by less than that gap."
    )


def imputation_examples(boxes: pd.DataFrame, seed: int = 0, n: int = 6) -> list[str]:
    """Up to ``n`` images with at least one imputed box, drawn with ``seed``."""
    paths = boxes.loc[boxes["imputed"], "path"].drop_duplicates()
    return paths.sample(min(n, len(paths)), random_state=seed).tolist()


def imputed_slot_titles(boxes: pd.DataFrame, paths: Sequence[str], width: int = 20) -> list[str]:
    """One title per image of ``paths``: its imputed slots ("imputed: left light, brand"),
    window, left light, right light, brand in that order, wrapped at ``width`` characters."""
    imputed = boxes[boxes["imputed"].astype(bool)]
    order = {("window", ""): 0, ("light", "left"): 1, ("light", "right"): 2, ("brand", ""): 3}
    titles = []
    for path in paths:
        mine = imputed[imputed["path"] == path]
        sides = mine["side"].fillna("") if "side" in mine else pd.Series("", index=mine.index)
        slots = sorted(zip(mine["part"], sides, strict=True), key=lambda s: order.get(s, 4))
        names = [f"{side} {part}".strip() for part, side in slots]
        titles.append(textwrap.fill("imputed: " + (", ".join(names) or "none"), width))
    return titles


def vehicleid_groups(images: pd.DataFrame, root: str | Path) -> pd.DataFrame | None:
    """The VehicleID rows of ``images`` with their identity's near-duplicate ``group``
    (SynthVeh's make, model and colour); ``None`` unless ``root`` is SynthVeh with VehicleID."""
    root = Path(root)
    if not (is_synthveh(root) and (root / "VehicleID").is_dir()):
        return None
    ids = pd.read_csv(root / "VehicleID" / IDENTITIES_FILE)
    return images[images["dataset"] == "VehicleID"].merge(ids[["pid", "group"]], on="pid")
