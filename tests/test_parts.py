"""Parts: grid masks, box selection, light extension, imputation by identity, ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prreid_lib.parts import (
    PART_BOX_COLUMNS,
    PART_DEFINITIONS,
    PART_NAMES,
    boxes_to_grid_mask,
    extend_lights,
    ground_truth_part_boxes,
    impute_missing_parts,
    select_part_boxes,
)

DET_COLUMNS = ["path", "part", "x1", "y1", "x2", "y2", "score"]


def _det(rows, w=100, h=100) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=DET_COLUMNS).assign(img_w=w, img_h=h)


def _box(table: pd.DataFrame, path: str, part: str, side: str = "") -> pd.Series:
    rows = table[(table["path"] == path) & (table["part"] == part) & (table["side"] == side)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_every_part_has_a_definition():
    assert set(PART_DEFINITIONS) == set(PART_NAMES)
    assert "bottom" in PART_DEFINITIONS["light"]


def test_grid_mask_marks_every_overlapped_cell():
    # 4x4 grid, box x 0.3..0.6, y 0..0.2 -> columns 1, 2; row 0
    mask = boxes_to_grid_mask(torch.tensor([0.3, 0.0, 0.6, 0.2]), 4)
    expected = torch.zeros(4, 4)
    expected[0, 1:3] = 1
    assert torch.equal(mask, expected)
    assert boxes_to_grid_mask(torch.zeros(4), 4).sum() == 0


# --------------------------------------------------------------------------- selection


def test_selection_keeps_best_box_per_part_and_two_distinct_lights():
    det = _det(
        [
            ("a", "window", 10, 10, 90, 40, 0.6),
            ("a", "window", 12, 10, 90, 40, 0.9),
            ("a", "light", 5, 50, 20, 60, 0.8),  # best light: left
            ("a", "light", 6, 51, 21, 61, 0.7),  # duplicate of the same lamp
            ("a", "light", 80, 50, 95, 60, 0.5),  # the other lamp
            ("a", "light", 40, 50, 60, 60, 0.3),
            ("a", "brand", 40, 50, 60, 60, 0.4),
        ]
    )
    sel = select_part_boxes(det)
    assert set(PART_BOX_COLUMNS) <= set(sel.columns)
    assert len(sel) == 4 and not sel["imputed"].any()
    assert _box(sel, "a", "window")["score"] == 0.9
    left, right = _box(sel, "a", "light", "left"), _box(sel, "a", "light", "right")
    assert (left["x1"], left["score"]) == (5, 0.8)
    assert (right["x1"], right["score"]) == (80, 0.5)


def test_lone_light_side_is_judged_against_the_window_centre():
    det = _det(
        [
            # window centre x = 70: a light at x 50..60 (centre 55) is the left one
            ("a", "window", 40, 10, 100, 40, 0.9),
            ("a", "light", 50, 50, 60, 60, 0.9),
            # no window: the image centre (50) decides, centre 75 -> right
            ("b", "light", 70, 50, 80, 60, 0.9),
        ]
    )
    sel = select_part_boxes(det)
    assert _box(sel, "a", "light", "left")["x1"] == 50
    assert _box(sel, "b", "light", "right")["x1"] == 70


# --------------------------------------------------------------------------- light extension


def test_lights_extend_to_the_image_bottom_by_default():
    boxes = _det([("a", "light", 5, 50, 20, 60, 0.9), ("a", "brand", 40, 50, 60, 60, 0.9)], h=80)
    out = extend_lights(boxes)
    assert out["y2"].tolist() == [80, 60]  # light reaches y = img_h; brand untouched
    assert out["y1"].tolist() == [50, 50]
    assert boxes["y2"].tolist() == [60, 60]  # input not modified


def test_lights_extend_to_a_given_vehicle_bottom_and_never_shrink():
    boxes = _det([("a", "light", 5, 50, 20, 60, 0.9), ("b", "light", 5, 50, 20, 90, 0.9)])
    out = extend_lights(boxes, {"a": 72.5, "b": 70.0})
    assert out["y2"].tolist() == [72.5, 90]
    assert extend_lights(out, {"a": 72.5, "b": 70.0}).equals(out)  # idempotent


# --------------------------------------------------------------------------- imputation


def _selected():
    # identity 1: images a, b (b has no brand, no right light); identity 2: image c, nothing
    det = _det(
        [
            ("a", "window", 10, 10, 90, 40, 0.9),
            ("a", "light", 0, 50, 20, 60, 0.9),
            ("a", "light", 80, 50, 100, 60, 0.9),
            ("a", "brand", 40, 50, 60, 60, 0.9),
            ("b", "window", 20, 20, 80, 40, 0.9),
            ("b", "light", 10, 50, 20, 60, 0.9),
            ("d", "brand", 30, 50, 50, 70, 0.9),
        ]
    )
    return select_part_boxes(det)


def test_missing_part_gets_the_identity_average_box():
    images = pd.DataFrame({"path": ["a", "b", "a2"], "pid": [1, 1, 1]}).assign(img_w=100, img_h=100)
    out = impute_missing_parts(_selected()[lambda d: d["path"] != "d"], images)
    # a2 has nothing: window = mean of a and b = (15, 15, 85, 40)
    win = _box(out, "a2", "window")
    assert (win["x1"], win["y1"], win["x2"], win["y2"]) == pytest.approx((15, 15, 85, 40))
    assert win["imputed"] and win["impute_source"] == "identity" and win["score"] == 0
    # b lacks the brand and its right light: taken from a, the identity's only ones
    assert _box(out, "b", "brand")[["x1", "x2"]].tolist() == [40, 60]
    assert _box(out, "b", "light", "right")["x1"] == 80
    # detected boxes are kept as they were, unflagged
    assert not _box(out, "b", "light", "left")["imputed"]
    assert _box(out, "b", "light", "left")["x1"] == 10
    assert out["imputed"].sum() == 2 + 4  # b: brand, right light; a2: all four slots
    assert len(out) == 3 * 4


def test_imputation_scales_normalised_average_to_the_target_image():
    images = pd.DataFrame({"path": ["a", "big"], "pid": [1, 1], "img_w": [100, 200]}).assign(
        img_h=[100, 50]
    )
    out = impute_missing_parts(_selected()[lambda d: d["path"] == "a"], images)
    win = _box(out, "big", "window")
    assert (win["x1"], win["y1"], win["x2"], win["y2"]) == pytest.approx((20, 5, 180, 20))
    assert (win["img_w"], win["img_h"]) == (200, 50)


def test_fallbacks_same_view_then_all_images():
    images = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d"],
            "pid": [1, 1, 2, 3],
            "view": ["front", "front", "front", "rear"],
        }
    ).assign(img_w=100, img_h=100)
    out = impute_missing_parts(_selected(), images)
    # identity 2 (image c, front) has no box: same-view mean of a and b
    win = _box(out, "c", "window")
    assert win["impute_source"] == "view" and win["x1"] == pytest.approx(15)
    # the brand of c: front brands are a's only (b's is imputed, so not averaged)
    assert _box(out, "c", "brand")["impute_source"] == "view"
    assert _box(out, "c", "brand")["x1"] == 40
    # d (rear, identity 3) has a brand but no window; no rear window anywhere -> all images
    win_d = _box(out, "d", "window")
    assert win_d["impute_source"] == "all" and win_d["x1"] == pytest.approx(15)
    assert not _box(out, "d", "brand")["imputed"]
    # with fallback="all" the view is ignored
    out_all = impute_missing_parts(_selected(), images, fallback="all")
    assert _box(out_all, "c", "brand")["impute_source"] == "all"
    assert _box(out_all, "c", "brand")["x1"] == pytest.approx(35)  # mean of a (40) and d (30)


def test_slot_without_any_box_stays_missing_and_parts_can_be_restricted():
    images = pd.DataFrame({"path": ["a", "b"], "pid": [1, 2]}).assign(img_w=100, img_h=100)
    only_windows = _selected()[lambda d: (d["part"] == "window") & (d["path"] == "a")]
    out = impute_missing_parts(only_windows, images, parts=("window",))
    assert sorted(out["part"]) == ["window", "window"]
    out = impute_missing_parts(only_windows, images)
    assert set(out["part"]) == {"window"}  # no light or brand anywhere: nothing to impute


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fallback"):
        impute_missing_parts(_selected(), pd.DataFrame({"path": [], "pid": []}), fallback="x")
    with pytest.raises(ValueError, match="pid"):
        impute_missing_parts(_selected(), pd.DataFrame({"path": ["a"]}))


# --------------------------------------------------------------------------- ground truth


def test_ground_truth_keeps_visible_parts_and_extends_lights_to_vehicle_bottom(tmp_path):
    cols = ["image", "part", "side", "x1", "y1", "x2", "y2", "visible", "img_w", "img_h", "view"]
    rows = [
        ("i/a.jpg", "vehicle", "", 5, 5, 95, 88, 1, 100, 100, "front"),
        ("i/a.jpg", "window", "", 20, 10, 80, 40, 1, 100, 100, "front"),
        ("i/a.jpg", "light", "left", 10, 50, 25, 60, 1, 100, 100, "front"),
        ("i/a.jpg", "light", "right", 75, 50, 90, 60, 0, 100, 100, "front"),
        ("i/a.jpg", "brand", "", 40, 50, 60, 60, 1, 100, 100, "front"),
    ]
    gt = ground_truth_part_boxes(pd.DataFrame(rows, columns=cols), root=str(tmp_path))
    assert set(PART_BOX_COLUMNS) <= set(gt.columns)
    assert sorted(gt["part"]) == ["brand", "light", "window"]  # invisible light dropped
    assert gt["path"].iloc[0] == str(tmp_path / "i" / "a.jpg")
    light = gt[gt["part"] == "light"].iloc[0]
    assert (light["y1"], light["y2"], light["side"]) == (50, 88, "left")
    assert (gt["score"] == 1.0).all() and not gt["imputed"].any()
    assert gt[gt["part"] == "window"]["y2"].iloc[0] == 40
    with pytest.raises(ValueError, match="load_synthveh_parts"):
        ground_truth_part_boxes(pd.DataFrame(rows, columns=cols))


def test_match_boxes_hits_misses_and_false_detections():
    from prreid_lib.parts import match_boxes

    truth = _det([("a", "light", 0, 0, 10, 10, 1.0), ("a", "light", 50, 0, 60, 10, 1.0)])
    pred = _det(
        [
            ("a", "light", 0, 0, 10, 5, 0.9),  # IoU 0.5 with the first lamp: a hit
            ("a", "light", 1, 0, 10, 10, 0.8),  # duplicate of a matched lamp: false
            ("a", "brand", 20, 20, 30, 30, 0.7),  # no brand in the truth: false
        ]
    )
    m = match_boxes(pred, truth)
    assert sorted(m["outcome"]) == ["false", "false", "hit", "miss"]
    hit = m[m["outcome"] == "hit"].iloc[0]
    assert (hit["x1"], hit["iou"], hit["score"]) == (0, pytest.approx(0.5), 0.9)
    miss = m[m["outcome"] == "miss"].iloc[0]
    assert (miss["x1"], miss["iou"]) == (50, 0)
    dup = m[(m["outcome"] == "false") & (m["part"] == "light")].iloc[0]
    assert dup["iou"] == pytest.approx(0.9)


def test_box_iou_elementwise_by_hand():
    from prreid_lib.parts import box_iou

    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 5], [20, 20, 30, 30], [5, 0, 15, 10]])
    assert box_iou(a, b) == pytest.approx([0.5, 0.0, 50 / 150])
