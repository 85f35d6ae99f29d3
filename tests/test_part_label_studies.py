"""Chapter 2's study functions and the before/after box grid, on small labelled sets."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from prreid_lib.studies import part_labels as pl
from prreid_lib.viz.parts import PAGE_FONT, before_after_grid, part_statistics_figure

# class x_center y_center width height: a window, two lights, a brand
LABEL_LINES = "0 0.5 0.3 0.6 0.2\n1 0.2 0.6 0.1 0.1\n1 0.8 0.6 0.1 0.1\n2 0.5 0.6 0.2 0.1\n"


def labelled_folder(root: Path, n_train: int = 7, n_val: int = 2) -> Path:
    """A YOLO part dataset of 100 x 50 images, as an annotation tool exports it; its data.yaml."""
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (100, 50), (30 * k % 255, 90, 160)).save(
                root / "images" / split / f"{split}{k}.jpg"
            )
            (root / "labels" / split / f"{split}{k}.txt").write_text(LABEL_LINES)
    spec = {"path": ".", "train": "images/train", "val": "images/val"}
    spec["names"] = {0: "window", 1: "light", 2: "brand"}
    (root / "data.yaml").write_text(yaml.safe_dump(spec))
    return root / "data.yaml"


@pytest.fixture
def own_labels(tmp_path: Path) -> pl.LabelledSet:
    data_yaml = labelled_folder(tmp_path / "my parts")
    (tmp_path / "data").mkdir()
    return pl.labelled_set("smoke", tmp_path / "data", parts_yaml=data_yaml)


def test_a_labelled_set_names_its_images_and_labels(own_labels: pl.LabelledSet):
    assert own_labels.images("train").name == "train"
    assert own_labels.images("train").parent.name == "images"
    assert own_labels.labels("val") == own_labels.parts_root / "labels" / "val"
    assert (own_labels.n_images("train"), own_labels.n_images("val")) == (7, 2)
    assert own_labels.synthetic is False
    assert own_labels.profile.name == "smoke"


def test_a_missing_data_yaml_is_refused_with_its_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        pl.labelled_set("smoke", tmp_path, parts_yaml=tmp_path / "nowhere.yaml")


def test_own_labels_are_read_from_their_files_and_lights_extended(own_labels: pl.LabelledSet):
    labels = pl.load_part_labels(own_labels)
    assert labels.truth is None
    assert len(labels.labelled) == 7 * 4
    assert len(labels.examples) == 4 and labels.examples == sorted(labels.examples)
    lights = labels.used[labels.used["part"] == "light"]
    assert np.allclose(lights["y2"], 50.0)  # extended to the image's bottom edge
    drawn = labels.labelled[labels.labelled["part"] == "light"]
    assert np.allclose(drawn["y2"], 0.65 * 50)
    assert labels.statistics_boxes is labels.labelled


def test_synthveh_labels_come_from_its_truth_with_both_views(smoke_data: Path):
    labels = pl.load_part_labels(pl.labelled_set("smoke", smoke_data))
    assert labels.truth is not None
    views = labels.truth.drop_duplicates("path").set_index("path")["view"]
    assert views[labels.examples].tolist() == ["front", "front", "rear", "rear"]
    assert set(labels.labelled["part"]) == {"window", "light", "brand"}
    assert (labels.labelled["visible"] == 1).all()
    assert set(labels.statistics_boxes["visible"]) == {0, 1}  # hidden parts counted too
    assert labels.truth["image"].str.startswith("images/train").all()


def test_the_round_trip_gives_the_boxes_back(own_labels: pl.LabelledSet, tmp_path: Path):
    coco = pl.yolo_to_coco(own_labels.images("train"), tmp_path / "train.json")
    trip = pl.round_trip(coco, own_labels.images("train"), tmp_path / "back")
    assert len(trip.before) == len(trip.after) == 28
    assert 0 <= trip.error < 0.01


def test_a_round_trip_that_loses_a_box_is_refused(own_labels: pl.LabelledSet, tmp_path: Path):
    coco = pl.yolo_to_coco(own_labels.images("train"), tmp_path / "train.json")
    content = json.loads(coco.read_text())
    content["annotations"] = content["annotations"][1:]
    coco.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="expected 28 boxes back .* found 27"):
        pl.round_trip(coco, own_labels.images("train"), tmp_path / "back")


def test_broken_labels_break_each_rule_once(own_labels: pl.LabelledSet, tmp_path: Path):
    images = pl.break_labels(own_labels.images(), own_labels.labels(), tmp_path / "broken")
    problems = pl.validate(images, raise_errors=False)
    assert sorted(problems["rule"]) == sorted(pl.RULES)
    shown = pl.shown_problems(problems, images.parent, "broken")
    assert not shown["found"].str.contains(str(tmp_path)).any()
    whole_file = shown[shown["rule"].isin(["missing_label", "missing_image"])]
    assert (whole_file["line"] == "-").all()
    assert shown["file"].str.fullmatch(r"train\d\.(jpg|txt)").all()
    with pytest.raises(pl.DatasetFormatError, match="broken"):
        pl.read_yolo(images)


def test_breaking_labels_needs_six_images(tmp_path: Path):
    data_yaml = labelled_folder(tmp_path / "few", n_train=5)
    with pytest.raises(ValueError, match="six .jpg images or more, found 5"):
        pl.break_labels(
            data_yaml.parent / "images/train", data_yaml.parent / "labels/train", tmp_path / "b"
        )


def test_one_image_with_my_label_lines(own_labels: pl.LabelledSet, tmp_path: Path):
    image = sorted(own_labels.images().glob("*.jpg"))[0]
    images = pl.single_image_labels(image, "2 0.5 0.7 0.2 0.0\n3 0.5 0.5 0.2 0.2\n", tmp_path / "x")
    problems = pl.validate(images, raise_errors=False)
    shown = pl.shown_problems(problems, images.parent, "x", ["file", "line", "rule"])
    assert list(shown.columns) == ["file", "line", "rule"]
    assert shown.values.tolist() == [
        ["train0.txt", 1, "non_positive_size"],
        ["train0.txt", 2, "unknown_class"],
    ]
    assert str(shown["line"].dtype) == "Int64"  # numbers, printed as the validator gives them


def test_hide_folder_and_work_folder(tmp_path: Path):
    assert pl.hide_folder(f"{tmp_path}/a.txt line 2", tmp_path, "set") == "set/a.txt line 2"
    work = pl.work_folder(tmp_path / "runs", "ch02")
    assert work.is_dir() and work == tmp_path / "runs" / "ch02"


def test_lamp_share_counts_the_visible_light_rows():
    boxes = pd.DataFrame({"part": ["light"] * 4 + ["window"], "visible": [1, 1, 1, 0, 0]})
    assert pl.lamp_share(boxes) == 0.75
    assert pl.lamp_share(boxes.drop(columns="visible")) == 1.0


def test_light_heights_are_scaled_to_the_detector_input():
    # a 100 x 50 image at imgsz 64: the longer side 100 -> 64 px, scale 0.64
    tight = pd.DataFrame(
        {"path": ["a"], "part": ["light"], "x1": [0], "y1": [20], "x2": [10], "y2": [30]}
    ).assign(img_w=100, img_h=50)
    window = tight.assign(part="window", y2=45)
    labels = pl.PartLabels(
        pd.concat([tight, window]), pd.concat([tight.assign(y2=60), window]), ["a"]
    )
    heights = pl.light_box_heights(labels, 64)
    assert heights.columns.tolist() == ["mean light box height, px at imgsz 64"]
    assert heights.iloc[:, 0].to_dict() == pytest.approx(
        {"tight (as labelled)": 6.4, "extended": 25.6}
    )


def test_the_before_after_grid_draws_each_table_in_its_row(own_labels: pl.LabelledSet):
    labels = pl.load_part_labels(own_labels)
    before = labels.labelled[labels.labelled["part"] != "brand"]  # three boxes an image
    fig = before_after_grid(labels.examples[:3], before, labels.used, ("drawn", "used"))
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[:, 0]] == ["drawn", "used"]
    assert [len(ax.patches) for ax in axes.ravel()] == [3, 3, 3, 4, 4, 4]
    assert all(len(ax.images) == 1 for ax in axes.ravel())
    assert fig.get_size_inches() == pytest.approx((1.7 * 3, 3.8))
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one image"):
        before_after_grid([], before, labels.used)


def test_the_before_after_grid_puts_column_titles_above_the_top_row(own_labels: pl.LabelledSet):
    labels = pl.load_part_labels(own_labels)
    paths = labels.examples[:2]
    titles = ["one", "two"]
    fig = before_after_grid(
        paths, labels.labelled, labels.used, ("drawn", "used"), fontsize=10, column_titles=titles
    )
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["one\ndrawn", "two\ndrawn"]
    assert [ax.get_title() for ax in axes[1]] == ["used", "used"]
    assert axes[0, 0].title.get_fontsize() == 10
    plt.close(fig)
    with pytest.raises(ValueError, match="one title per image"):
        before_after_grid(paths, labels.labelled, labels.used, column_titles=["one"])


def statistics_boxes() -> pd.DataFrame:
    """Two front views of 100 x 50: a 60 x 10 window, two 10 x 5 lamps and a 20 x 5 brand;
    in image b the right lamp and the brand are hidden."""
    rows = []
    for path, shown in (("a.jpg", 1), ("b.jpg", 0)):
        rows += [
            (path, "window", 20, 5, 80, 15, 1),
            (path, "light", 10, 30, 20, 35, 1),
            (path, "light", 80, 30, 90, 35, shown),
            (path, "brand", 40, 30, 60, 35, shown),
        ]
    frame = pd.DataFrame(rows, columns=["path", "part", "x1", "y1", "x2", "y2", "visible"])
    return frame.assign(img_w=100, img_h=50, view="front")


def test_the_label_size_sentence_names_the_largest_and_the_most_hidden_part():
    boxes = statistics_boxes()
    # areas 0.12 (window), 0.01 (lamp), 0.02 (brand); visible 1, 3/4 and 1/2 of the rows
    assert pl.label_size_sentence(boxes) == (
        "The window is the largest part: its mean box covers 0.120 of the image; on average a "
        "light box covers 0.083 times that and a brand box covers 0.167 times that. The part "
        "hidden most often is the brand: 0.500 of its boxes are visible, against 1.000 "
        "(window), 0.750 (light)."
    )
    tied = boxes.assign(visible=np.where(boxes["part"] == "window", 0.5, boxes["visible"]))
    assert "The parts hidden most often are the window and the brand: 0.500 of their" in (
        pl.label_size_sentence(tied)
    )
    assert pl.label_size_sentence(boxes.assign(visible=1)).endswith(
        "No part is hidden in these labels."
    )
    drawn = boxes[boxes["visible"] == 1].drop(columns="visible")
    assert pl.label_size_sentence(drawn).endswith("so they do not say which part is hidden.")


def test_problem_lines_name_each_row_by_its_line():
    problems = pd.DataFrame(
        {
            "line": [1.0, 2.0, np.nan],
            "rule": ["non_positive_size", "unknown_class", "missing_label"],
        }
    )
    assert pl.problem_lines(problems) == (
        "line 1: non_positive_size; line 2: unknown_class; whole file: missing_label"
    )
    assert pl.problem_lines(problems.iloc[:0]) == "no problem"


def test_the_light_height_sentence_compares_tight_and_extended():
    heights = pd.DataFrame(
        {"mean light box height, px at imgsz 64": [6.4, 25.6]},
        index=["tight (as labelled)", "extended"],
    )
    assert pl.light_height_sentence(heights) == (
        "At the detector's input size a tight light box is 6.4 px high on average and an "
        "extended one 25.6 px, 4.0 times as high."
    )


def test_the_part_statistics_figure_is_legible_at_the_page_width():
    boxes = statistics_boxes()
    fig = part_statistics_figure(boxes, pl.part_statistics(boxes))
    width, height, visibility = fig.axes
    assert fig.get_size_inches()[0] <= 7.5
    # six visible boxes, each counted once across the three parts' histograms
    assert sum(p.get_height() for p in width.patches) == 6
    assert sum(p.get_height() for p in height.patches) == 6
    # images showing each part: both show a window and a lamp, one the brand
    assert [p.get_height() for p in visibility.patches] == pytest.approx([1.0, 1.0, 0.5])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["window", "light", "brand"]
    for ax in fig.axes:
        assert ax.xaxis.label.get_size() >= 10 and ax.yaxis.label.get_size() >= 10
        assert all(t.get_size() >= 10 for t in ax.get_yticklabels())
    assert PAGE_FONT >= 10
    plt.close(fig)


def test_a_folder_with_other_files_is_refused_not_deleted(
    own_labels: pl.LabelledSet, tmp_path: Path
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"mine: expected an empty folder .*notes\.md"):
        pl.break_labels(own_labels.images(), own_labels.labels(), mine)
    coco = pl.yolo_to_coco(own_labels.images(), tmp_path / "train.json")
    with pytest.raises(FileExistsError, match="notes.md"):
        pl.round_trip(coco, own_labels.images(), mine)
    assert (mine / "notes.md").read_text() == "keep me"
    again = pl.break_labels(own_labels.images(), own_labels.labels(), tmp_path / "b")
    assert pl.break_labels(own_labels.images(), own_labels.labels(), tmp_path / "b") == again
