"""Chapter 3's tables and figures, on hand-made detections and truth (no detector training)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prreid_lib.parts import ground_truth_part_boxes
from prreid_lib.studies import detection as ds
from prreid_lib.viz.parts import (
    LOSSES,
    ap_per_part_figure,
    failure_cases,
    outcome_boxes,
    training_curves,
)

XYXY = ["x1", "y1", "x2", "y2"]


def box(path: str, part: str, xyxy: tuple[float, float, float, float], **extra) -> dict:
    """One row of a part box table of a 100 x 50 image."""
    row = {"path": path, "part": part, **dict(zip(XYXY, xyxy, strict=True))}
    return {**row, "img_w": 100, "img_h": 50, **extra}


A, B = "/data/a.jpg", "/data/b.jpg"


def final_boxes(**extra) -> pd.DataFrame:
    """Image a: a detected window and left light, an imputed right light; image b: an
    imputed brand."""
    rows = [
        box(A, "window", (10, 5, 90, 20), side="", imputed=False),
        box(A, "light", (10, 25, 20, 50), side="left", imputed=False),
        box(A, "light", (80, 25, 90, 50), side="right", imputed=True, impute_source="identity"),
        box(B, "brand", (40, 25, 60, 35), side="", imputed=True, impute_source="view"),
    ]
    table = pd.DataFrame(rows).assign(**extra)
    table["impute_source"] = table["impute_source"].fillna("")
    return table


def truth_table() -> pd.DataFrame:
    """SynthVeh's truth for images a and b: the right light of a is hidden, the vehicle's
    bottom 45 px (so lights end at 45)."""
    rows = [
        box(A, "window", (10, 5, 90, 20), side="", visible=1),
        box(A, "light", (10, 25, 20, 30), side="left", visible=1),
        box(A, "light", (85, 25, 95, 30), side="right", visible=0),
        box(A, "vehicle", (0, 0, 100, 45), side="", visible=1),
        box(B, "brand", (40, 25, 60, 35), side="", visible=1),
        box(B, "vehicle", (0, 0, 100, 40), side="", visible=1),
    ]
    return pd.DataFrame(rows)


def test_iou_with_truth_compares_each_box_with_its_true_part_and_side():
    quality = ds.iou_with_truth(final_boxes(), truth_table())
    assert quality.columns.tolist() == ["n", "mean IoU with truth", "IoU >= 0.5"]
    assert quality.index.tolist() == [
        ("detected", "light"),
        ("detected", "window"),
        ("imputed", "brand"),
        ("imputed", "light"),
    ]
    # left light: 10 x 25 detected against 10 x 20 true (extended to 45): IoU 0.8
    assert quality.loc[("detected", "light")].tolist() == pytest.approx([1, 0.8, 1.0])
    assert quality.loc[("detected", "window")].tolist() == pytest.approx([1, 1.0, 1.0])
    # hidden right light: [80, 90] against [85, 95], both 25..45 vs 25..50: 5*20 / (250+200-100)
    assert quality.loc[("imputed", "light"), "mean IoU with truth"] == pytest.approx(100 / 350)
    assert quality.loc[("imputed", "light"), "IoU >= 0.5"] == 0.0


def test_light_iou_reads_each_kind_and_is_nan_without_truth():
    quality = ds.iou_with_truth(final_boxes(), truth_table())
    assert ds.light_iou(quality) == pytest.approx({"detected": 0.8, "imputed": 100 / 350})
    assert all(math.isnan(v) for v in ds.light_iou(None).values())
    only_detected = quality.drop(index=("imputed", "light"))
    values = ds.light_iou(only_detected)
    assert values["detected"] == pytest.approx(0.8) and math.isnan(values["imputed"])
    assert list(values) == list(ds.BOX_KINDS)


def test_bottom_gap_is_the_mean_share_below_the_vehicle():
    assert ds.bottom_gap(truth_table()) == pytest.approx((5 / 50 + 10 / 50) / 2)


def test_the_truth_needs_a_synthveh_data_set(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="neither VeRi-776 nor VehicleID"):
        ds.load_truth_parts(tmp_path)


def test_compare_with_truth_on_synthveh(smoke_data: Path):
    truth = ds.load_truth_parts(smoke_data)
    boxes = ground_truth_part_boxes(truth).assign(imputed=False)
    comparison = ds.compare_with_truth(boxes, smoke_data)
    assert comparison.quality["mean IoU with truth"].to_numpy() == pytest.approx(1.0)
    assert set(comparison.quality.index.get_level_values("boxes")) == {"detected"}
    assert 0.0 < comparison.bottom_gap < 0.2


def test_the_imputation_summary_counts_slots_and_sources():
    final = final_boxes()
    selected = final[~final["imputed"]]
    summary = ds.imputation_summary(selected, final, n_images=2)
    assert summary.index.tolist() == ["window", "light", "brand"]
    assert summary.columns.tolist() == [
        "slots",
        "detected",
        "after imputation",
        "imputed from identity",
        "imputed from view",
    ]
    assert summary.loc["light"].tolist() == [4, 1, 2, 1, 0]
    assert summary.loc["brand"].tolist() == [2, 0, 1, 0, 1]
    assert ds.imputed_per_part(final) == {"window": 0, "light": 1, "brand": 1}


def test_the_imputation_summary_without_any_detection():
    empty = final_boxes().iloc[:0]
    summary = ds.imputation_summary(empty, empty, n_images=3)
    assert summary["slots"].tolist() == [3, 6, 3]
    assert summary[["detected", "after imputation"]].to_numpy().sum() == 0


def quality_table(truth: bool = True) -> pd.DataFrame:
    """imputation_quality of final_boxes() on two images, with or without the truth."""
    final = final_boxes()
    summary = ds.imputation_summary(final[~final["imputed"]], final, n_images=2)
    quality = ds.iou_with_truth(final, truth_table()) if truth else None
    return ds.imputation_quality(summary, quality)


def test_imputation_quality_gives_each_part_its_imputed_share_and_overlap():
    table = quality_table()
    assert table.index.tolist() == ["window", "light", "brand"]
    assert table.columns.tolist() == [
        "slots",
        "imputed",
        "share imputed",
        "mean IoU (imputed)",
        "IoU >= 0.5 (imputed)",
        "mean IoU (detected)",
        "IoU >= 0.5 (detected)",
    ]
    assert table["slots"].tolist() == [2, 4, 2] and table["imputed"].tolist() == [0, 1, 1]
    assert table["share imputed"].tolist() == pytest.approx([0.0, 0.25, 0.5])
    assert table.loc["light", "mean IoU (imputed)"] == pytest.approx(100 / 350)
    assert table.loc["light", "IoU >= 0.5 (imputed)"] == 0.0
    assert table.loc["brand", "IoU >= 0.5 (imputed)"] == 1.0
    assert math.isnan(table.loc["window", "mean IoU (imputed)"])  # nothing imputed
    assert math.isnan(table.loc["brand", "mean IoU (detected)"])  # nothing detected
    blind = quality_table(truth=False)
    assert blind["share imputed"].tolist() == pytest.approx([0.0, 0.25, 0.5])
    assert blind.filter(like="IoU").isna().all().all()


def test_the_imputed_part_sentences_follow_the_numbers():
    table = quality_table()
    assert ds.imputed_part_sentence(table, "window") == (
        "No window box was imputed (0 of the 2 window slots)."
    )
    assert ds.imputed_part_sentence(table, "light") == (
        "1 of the 4 light slots (25.0%) were imputed. Their mean IoU with the true light is "
        "0.286, below the 0.800 of the detected light boxes; 0.0% of them reach IoU 0.5, the "
        "overlap at which AP50 counts a detection as correct, so most of them would count as "
        "misses."
    )
    brand = ds.imputed_part_sentence(table, "brand")
    assert "mean IoU with the true brand is 1.000;" in brand  # no detected brand to compare
    assert brand.endswith("so most of them would count as correct detections.")
    assert ds.imputed_part_sentence(quality_table(truth=False), "brand") == (
        "1 of the 2 brand slots (50.0%) were imputed; without true boxes their overlap "
        "cannot be measured."
    )


def test_the_imputed_iou_summary_names_every_part_and_the_brand():
    assert ds.imputed_iou_summary(quality_table()) == (
        "Mean IoU with the true box, imputed against detected boxes: window none against "
        "1.000, light 0.286 against 0.800, brand 1.000 against none. 50.0% of the brand slots "
        "were imputed, and 100.0% of those boxes reach IoU 0.5."
    )
    assert ds.imputed_iou_summary(quality_table(truth=False), truth=False) == ds.NO_TRUTH
    final = final_boxes()
    empty = final.iloc[:0]
    nothing = ds.imputation_quality(
        ds.imputation_summary(empty, empty, 2), ds.iou_with_truth(empty, truth_table())
    )
    assert ds.imputed_iou_summary(nothing) == ds.NO_BOXES


def test_imputation_glues_hold_the_numbers_and_the_sentences():
    table = quality_table()
    glues = ds.imputation_glues(table)
    assert glues["ch03_imputed_share_brand"] == pytest.approx(0.5)
    assert glues["ch03_imputed_iou_brand"] == pytest.approx(1.0)
    assert glues["ch03_imputed_over_half_light"] == 0.0
    assert math.isnan(glues["ch03_imputed_iou_window"])
    assert glues["ch03_imputed_brand_text"] == ds.imputed_part_sentence(table, "brand")
    assert glues["ch03_imputed_iou_text"] == ds.imputed_iou_summary(table)
    assert ds.imputation_glues(table, truth=False)["ch03_imputed_iou_text"] == ds.NO_TRUTH


def test_the_truth_agreement_sentence_judges_by_the_ap50_overlap():
    quality = ds.iou_with_truth(final_boxes(), truth_table())
    good = ds.truth_agreement_sentence(quality)
    # four boxes: IoU 0.8, 1, 1 and 100/350; three of them at 0.5 or more
    assert good.startswith(
        "The final boxes overlap the true boxes with a mean IoU of 0.771 over 4 boxes, 75.0% "
        "of them at IoU 0.5 or more; most of them would count as correct detections"
    )
    assert "to change little between the two part sources" in good
    poor = ds.truth_agreement_sentence(quality.loc[[("imputed", "light")]])
    assert "0.286 over 1 boxes, 0.0% of them" in poor and "at most half" in poor
    assert poor.endswith("to change with the part source.")
    assert ds.truth_agreement_sentence(None) == ds.NO_TRUTH
    assert ds.truth_agreement_sentence(quality.iloc[:0]) == ds.NO_BOXES


def test_the_hardest_part_is_the_one_with_the_lowest_ap50_unless_they_tie():
    per_part = pd.DataFrame({"part": ["window", "light", "brand"], "ap50": [0.99, 0.97, 0.91]})
    assert ds.hardest_part_sentence(per_part) == (
        "The brand has the lowest AP50 here, 0.910, 0.060 below the next part (the light, "
        "0.970): another seed keeps the brand hardest if it moves the AP50s by less than that "
        "gap."
    )
    flat = per_part.assign(ap50=0.0)
    assert ds.hardest_part_sentence(flat) == (
        "The window and the light tie for the lowest AP50 here (0.000): this training ranks "
        "no part hardest."
    )


def test_imputed_slot_titles_name_the_imputed_slots_in_the_book_order():
    final = final_boxes()
    more = pd.DataFrame(
        [
            box(A, "brand", (40, 25, 60, 35), side="", imputed=True, impute_source="view"),
            box(A, "light", (10, 25, 20, 50), side="left", imputed=True, impute_source="all"),
        ]
    )
    titles = ds.imputed_slot_titles(final, [A, B, "/data/c.jpg"])
    assert titles == ["imputed: right light", "imputed: brand", "imputed: none"]
    both = pd.concat([final[final["path"] != A], final[final["path"] == A].iloc[2:], more])
    assert ds.imputed_slot_titles(both, [A]) == ["imputed: left light,\nright light, brand"]


def test_outcome_table_counts_per_part_in_the_book_order():
    matched = pd.DataFrame(
        {
            "part": ["brand", "window", "window", "light", "light"],
            "outcome": ["miss", "hit", "false", "hit", "hit"],
            "iou": [0.1, 0.9, 0.0, 0.6, 0.8],
        }
    )
    table = ds.outcome_table(matched)
    assert table.index.tolist() == ["window", "light", "brand"]
    assert table.loc["light", ["hit", "miss", "false"]].tolist() == [2, 0, 0]
    assert table.loc["window", "mean IoU of hits"] == pytest.approx(0.9)
    assert table.loc["light", "mean IoU of hits"] == pytest.approx(0.7)
    assert math.isnan(table.loc["brand", "mean IoU of hits"])


def test_imputation_examples_are_imputed_images_drawn_by_seed():
    final = pd.concat([final_boxes().assign(path=f"img{k}") for k in range(10)])
    final.loc[final["path"] == "img3", "imputed"] = False
    shown = ds.imputation_examples(final, seed=1)
    assert len(shown) == 6 and len(set(shown)) == 6 and "img3" not in shown
    assert ds.imputation_examples(final, seed=1) == shown
    assert ds.imputation_examples(final, seed=2) != shown
    assert ds.imputation_examples(final.assign(imputed=False), seed=1) == []


def test_relative_paths_are_relative_to_the_data_root(tmp_path: Path):
    table = pd.DataFrame({"path": [str(tmp_path / "VehicleID" / "image" / "1.jpg")], "x1": [3]})
    shown = ds.relative_paths(table, tmp_path)
    assert shown["path"].tolist() == [str(Path("VehicleID/image/1.jpg"))]
    assert table["path"].iloc[0].startswith(str(tmp_path))  # the input stays as it was


def test_vehicleid_groups_only_on_synthveh(smoke_data: Path, tmp_path: Path):
    images = ds.dataset_images(smoke_data)
    groups = ds.vehicleid_groups(images, smoke_data)
    assert groups is not None and (groups["dataset"] == "VehicleID").all()
    assert groups["group"].notna().all() and len(groups) == (images["dataset"] == "VehicleID").sum()
    assert ds.vehicleid_groups(images, tmp_path) is None


# ----------------------------------------------------------------------------- the figures


def history(epochs: int = 3) -> pd.DataFrame:
    data = {"epoch": np.arange(1, epochs + 1)}
    for name in ("box_loss", "cls_loss", "dfl_loss"):
        data[f"train/{name}"] = np.linspace(2, 1, epochs)
        data[f"val/{name}"] = np.linspace(2.5, 1.5, epochs)
    data["metrics/mAP50(B)"] = np.linspace(0.1, 0.6, epochs)
    data["metrics/mAP50-95(B)"] = np.linspace(0.05, 0.3, epochs)
    return pd.DataFrame(data)


def test_training_curves_show_three_losses_and_two_maps():
    fig = training_curves(history())
    losses, maps = fig.axes
    assert [line.get_label() for line in losses.lines] == [
        f"{kind} {name}" for name in LOSSES for kind in ("train", "val")
    ]
    assert [line.get_linestyle() for line in losses.lines] == ["-", "--"] * 3
    assert [line.get_label() for line in maps.lines] == ["mAP50", "mAP50-95"]
    assert maps.get_ylim() == (0, 1) and maps.get_title() == "validation"
    assert maps.lines[0].get_ydata()[-1] == pytest.approx(0.6)
    plt.close(fig)


def test_ap_bars_per_part():
    per_part = pd.DataFrame(
        {"part": ["window", "light", "brand"], "ap50": [0.9, 0.5, 0.2], "ap50_95": [0.6, 0.3, 0.1]}
    )
    fig = ap_per_part_figure(per_part)
    (ax,) = fig.axes
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([0.9, 0.5, 0.2, 0.6, 0.3, 0.1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["window", "light", "brand"]
    assert [bar.get_alpha() for bar in ax.patches[3:]] == [0.5] * 3
    plt.close(fig)


def image_file(folder: Path, name: str) -> str:
    path = folder / name
    Image.new("RGB", (100, 50), (120, 120, 120)).save(path)
    return str(path)


def matched_table(folder: Path) -> pd.DataFrame:
    """Image a: a hit, a miss and a false detection; image b: two misses; image c: a hit."""
    a, b, c = (image_file(folder, f"{n}.jpg") for n in "abc")
    rows = [
        box(a, "window", (10, 5, 90, 20), outcome="hit"),
        box(a, "light", (10, 25, 20, 50), outcome="miss"),
        box(a, "brand", (40, 25, 60, 35), outcome="false"),
        box(b, "light", (10, 25, 20, 50), outcome="miss"),
        box(b, "light", (80, 25, 90, 50), outcome="miss"),
        box(b, "window", (10, 5, 90, 20), outcome="miss"),
        box(b, "brand", (40, 25, 60, 35), outcome="miss"),
        box(c, "window", (10, 5, 90, 20), outcome="hit"),
    ]
    return pd.DataFrame(rows)


def test_failure_cases_draw_the_worst_images_with_outcome_styles(tmp_path: Path):
    matched = matched_table(tmp_path)
    fig = failure_cases(matched)
    assert fig is not None
    first, second = fig.axes
    assert first.get_title() == "miss light\nmiss light\nmiss window"  # four failures, three shown
    assert second.get_title() == "miss light\nfalse brand"
    assert [p.get_linestyle() for p in second.patches] == ["-", ":", "--"]
    colours = [p.get_edgecolor() for p in second.patches]
    assert len(set(colours)) == 3  # one colour per part
    assert fig.get_size_inches() == pytest.approx((3.6, 2.2))
    plt.close(fig)


def test_failure_cases_none_without_a_failure(tmp_path: Path):
    matched = matched_table(tmp_path)
    assert failure_cases(matched[matched["outcome"] == "hit"]) is None


def test_failure_cases_lay_out_four_a_row_and_blank_the_rest(tmp_path: Path):
    paths = [image_file(tmp_path, f"{k}.jpg") for k in range(9)]
    matched = pd.DataFrame([box(p, "window", (10, 5, 90, 20), outcome="miss") for p in paths])
    fig = failure_cases(matched)
    assert len(fig.axes) == 8  # two rows of four: at most eight images
    assert sum(len(ax.images) for ax in fig.axes) == 8
    plt.close(fig)
    fig = failure_cases(matched.iloc[:5])
    assert len(fig.axes) == 8 and sum(len(ax.images) for ax in fig.axes) == 5
    plt.close(fig)


def test_outcome_boxes_refuse_an_unknown_outcome():
    matched = pd.DataFrame([box("a", "window", (1, 1, 2, 2), outcome="maybe")])
    with pytest.raises(ValueError, match=r"outcome column: expected .* found \['maybe'\]"):
        outcome_boxes(matched)
