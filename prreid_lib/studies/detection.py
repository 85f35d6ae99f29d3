"""The part detector's steps (chapter 3): train, measure, detect, repair, check.

The chapter trains YOLO on a labelled set (:func:`~prreid_lib.detector.train_detector`,
:func:`~prreid_lib.detector.evaluate_detector`), matches its detections on the
held-out images to the labels (:func:`held_out_matches`, :func:`outcome_table`),
detects parts on every image and repairs them
(:func:`~prreid_lib.detector.detect_part_box_steps`: selection, light extension,
imputation; :func:`imputation_summary`), and on SynthVeh compares the final boxes
with the true ones (:func:`compare_with_truth`). The library functions the chapter
teaches by name are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    "PART_SLOTS",
    "TruthComparison",
    "bottom_gap",
    "compare_with_truth",
    "dataset_images",
    "detect_part_box_steps",
    "evaluate_detector",
    "extend_lights",
    "held_out_matches",
    "impute_missing_parts",
    "imputation_examples",
    "imputation_summary",
    "imputed_per_part",
    "iou_with_truth",
    "light_iou",
    "load_truth_parts",
    "match_boxes",
    "outcome_table",
    "relative_paths",
    "select_part_boxes",
    "train_detector",
    "vehicleid_groups",
]

PART_SLOTS: Mapping[str, int] = {"window": 1, "light": 2, "brand": 1}
"""Boxes of each part an image should have: one window, two lights, one brand."""
BOX_KINDS = ("detected", "imputed")
"""The two kinds of final part boxes, by the ``imputed`` flag."""
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


def imputation_examples(boxes: pd.DataFrame, seed: int = 0, n: int = 6) -> list[str]:
    """Up to ``n`` images with at least one imputed box, drawn with ``seed``."""
    paths = boxes.loc[boxes["imputed"], "path"].drop_duplicates()
    return paths.sample(min(n, len(paths)), random_state=seed).tolist()


def vehicleid_groups(images: pd.DataFrame, root: str | Path) -> pd.DataFrame | None:
    """The VehicleID rows of ``images`` with their identity's near-duplicate ``group``
    (SynthVeh's make, model and colour); ``None`` unless ``root`` is SynthVeh with VehicleID."""
    root = Path(root)
    if not (is_synthveh(root) and (root / "VehicleID").is_dir()):
        return None
    ids = pd.read_csv(root / "VehicleID" / IDENTITIES_FILE)
    return images[images["dataset"] == "VehicleID"].merge(ids[["pid", "group"]], on="pid")
