"""Part annotations: YOLO/COCO reading, writing, conversion, every validation rule, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from prreid_lib import annotate
from prreid_lib.errors import DatasetFormatError

# --------------------------------------------------------------------------- helpers

PART_COLOURS = {0: (20, 30, 90), 1: (250, 170, 20), 2: (30, 200, 60)}


def make_part_dataset(
    root: Path, n_train: int = 16, n_val: int = 8, size: int = 64, seed: int = 0
) -> Path:
    """A tiny YOLO part dataset drawn by hand: a red 'vehicle' with a dark window,
    two orange lights and a green brand badge; returns its data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.new("RGB", (size, size), (90, 90, 90))
            d = ImageDraw.Draw(im)
            ox, oy = (int(v) for v in rng.integers(0, size // 8, 2))
            s = size * 0.85
            d.rectangle([ox, oy, ox + s, oy + s], fill=(200, 30, 30))
            rel = {
                0: [(0.2, 0.1, 0.8, 0.4)],
                1: [(0.05, 0.55, 0.25, 0.7), (0.75, 0.55, 0.95, 0.7)],
                2: [(0.42, 0.55, 0.58, 0.68)],
            }
            lines = []
            for c, boxes in rel.items():
                for a, b, e, f in boxes:
                    box = (ox + a * s, oy + b * s, ox + e * s, oy + f * s)
                    d.rectangle(box, fill=PART_COLOURS[c])
                    xc, yc = (box[0] + box[2]) / 2 / size, (box[1] + box[3]) / 2 / size
                    w, h = (box[2] - box[0]) / size, (box[3] - box[1]) / size
                    lines.append(f"{c} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}")
            im.save(root / "images" / split / f"img{i:03d}.jpg")
            (root / "labels" / split / f"img{i:03d}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\n"
        "names:\n  0: window\n  1: light\n  2: brand\n"
    )
    return root / "data.yaml"


def _images(folder: Path, names: list[str], size: tuple[int, int] = (100, 50)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.new("RGB", size).save(folder / n)


@pytest.fixture
def yolo_dir(tmp_path: Path) -> Path:
    """images/train with a.jpg (100x50) and b.jpg, labels for both."""
    img = tmp_path / "images" / "train"
    lab = tmp_path / "labels" / "train"
    _images(img, ["a.jpg", "b.jpg"])
    lab.mkdir(parents=True)
    # window: centre (0.5, 0.3), 0.4 x 0.2 -> pixels x 30..70, y 10..20
    (lab / "a.txt").write_text("0 0.5 0.3 0.4 0.2\n1 0.1 0.8 0.1 0.2\n")
    (lab / "b.txt").write_text("2 0.5 0.5 0.2 0.2\n")
    return img


# --------------------------------------------------------------------------- reading / writing


def test_read_yolo_converts_to_pixels(yolo_dir):
    boxes = annotate.read_yolo(yolo_dir)
    assert list(boxes.columns) == annotate.BOX_COLUMNS
    win = boxes[boxes["part"] == "window"].iloc[0]
    assert (win["x1"], win["y1"], win["x2"], win["y2"]) == pytest.approx((30, 10, 70, 20))
    assert (win["img_w"], win["img_h"]) == (100, 50)
    assert Path(win["path"]).name == "a.jpg" and Path(win["path"]).is_absolute()
    light = boxes[boxes["part"] == "light"].iloc[0]
    assert (light["x1"], light["y1"], light["x2"], light["y2"]) == pytest.approx((5, 35, 15, 45))
    assert sorted(boxes["part"]) == ["brand", "light", "window"]


def test_read_yolo_from_labels_folder_and_data_yaml(yolo_dir, tmp_path):
    via_labels = annotate.read_yolo(tmp_path / "labels" / "train")
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nnames: [window, light, brand]\n"
    )
    via_yaml = annotate.read_yolo(tmp_path / "data.yaml")
    pd.testing.assert_frame_equal(via_labels, annotate.read_yolo(yolo_dir))
    pd.testing.assert_frame_equal(via_yaml, via_labels)


def test_yolo_coco_round_trip(yolo_dir, tmp_path):
    before = annotate.read_yolo(yolo_dir)
    js = annotate.yolo_to_coco(yolo_dir, tmp_path / "parts.json")
    coco = json.loads(js.read_text())
    assert [c["name"] for c in coco["categories"]] == ["window", "light", "brand"]
    assert {im["file_name"] for im in coco["images"]} == {"a.jpg", "b.jpg"}
    win = next(a for a in coco["annotations"] if a["category_id"] == 1)
    assert win["bbox"] == pytest.approx([30, 10, 40, 10])
    assert win["area"] == pytest.approx(400)
    via_coco = annotate.read_coco(js, yolo_dir)
    pd.testing.assert_frame_equal(via_coco, before, check_dtype=False)
    out = tmp_path / "back"
    files = annotate.coco_to_yolo(js, yolo_dir, out)
    assert sorted(f.name for f in files) == ["a.txt", "b.txt"]
    assert (out / "a.txt").read_text().splitlines()[0] == "0 0.500000 0.300000 0.400000 0.200000"


def test_write_yolo_writes_empty_file_for_image_without_box(tmp_path):
    _images(tmp_path / "img", ["x.jpg", "y.jpg"])
    boxes = pd.DataFrame(
        [(str(tmp_path / "img" / "x.jpg"), "brand", 40, 20, 60, 30, 100, 50)],
        columns=annotate.BOX_COLUMNS,
    )
    annotate.write_yolo(boxes, tmp_path / "lab", images=[tmp_path / "img" / "y.jpg"])
    assert (tmp_path / "lab" / "x.txt").read_text() == "2 0.500000 0.500000 0.200000 0.200000\n"
    assert (tmp_path / "lab" / "y.txt").read_text() == ""
    with pytest.raises(ValueError, match="not in names"):
        annotate.write_yolo(boxes.assign(part="mirror"), tmp_path / "lab2")


def test_widget_boxes_are_clipped_to_the_image(tmp_path):
    drawn = [{"x": -5, "y": 10, "width": 30, "height": 100, "label": "light"}]
    table = annotate.widget_to_table(drawn, tmp_path / "a.jpg", 100, 50)
    row = table.iloc[0]
    assert (row["x1"], row["y1"], row["x2"], row["y2"]) == (0, 10, 25, 50)
    assert row["part"] == "light"


class _FakeBBoxWidget:
    """Stands in for jupyter_bbox_widget.BBoxWidget: keeps the submit callback."""

    def __init__(self, image, classes, colors):
        self.image, self.classes, self.bboxes, self.submit = image, classes, [], None

    def on_submit(self, callback):
        self.submit = callback
        return callback


def test_live_annotator_writes_one_label_file_per_submit(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.setitem(
        sys.modules, "jupyter_bbox_widget", types.SimpleNamespace(BBoxWidget=_FakeBBoxWidget)
    )
    _images(tmp_path / "img", ["x.jpg", "y.jpg"])
    todo = [tmp_path / "img" / "x.jpg", tmp_path / "img" / "y.jpg"]
    widget = annotate.annotation_widget(todo, tmp_path / "lab")
    assert widget.image == str(todo[0]) and widget.classes == ["window", "light", "brand"]
    widget.bboxes = [{"x": 40, "y": 20, "width": 20, "height": 10, "label": "brand"}]
    widget.submit()
    assert (tmp_path / "lab" / "x.txt").read_text().startswith("2 ")
    assert widget.image == str(todo[1]) and widget.bboxes == []


def test_live_annotator_without_its_extra_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jupyter_bbox_widget", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[annotate\]'"):
        annotate.annotation_widget([tmp_path / "a.jpg"], tmp_path / "lab")


# --------------------------------------------------------------------------- validation rules

BROKEN_LINES = {
    "malformed": "0 0.5 0.5 0.2",
    "unknown_class": "7 0.5 0.5 0.2 0.2",
    "non_positive_size": "1 0.5 0.5 0.0 0.2",
    "outside_image": "2 0.95 0.5 0.2 0.2",
}


@pytest.mark.parametrize("rule", sorted(BROKEN_LINES))
def test_each_line_rule_is_reported_with_file_and_line(yolo_dir, tmp_path, rule):
    label = tmp_path / "labels" / "train" / "b.txt"
    label.write_text("2 0.5 0.5 0.2 0.2\n" + BROKEN_LINES[rule] + "\n")
    problems = annotate.validate(yolo_dir, raise_errors=False)
    assert list(problems.columns) == annotate.PROBLEM_COLUMNS
    assert problems["rule"].tolist() == [rule]
    assert problems["file"].iloc[0] == str(label) and problems["line"].iloc[0] == 2
    assert problems["fix"].iloc[0] == annotate.RULES[rule]
    with pytest.raises(DatasetFormatError, match=rf"b\.txt, line 2: .*{rule}") as err:
        annotate.validate(yolo_dir)
    assert err.value.line == 2 and "Fix:" in str(err.value)
    with pytest.raises(DatasetFormatError):
        annotate.read_yolo(yolo_dir)


def test_negative_size_and_non_integer_class(yolo_dir, tmp_path):
    label = tmp_path / "labels" / "train" / "b.txt"
    label.write_text("1 0.5 0.5 -0.1 0.2\n0.5 0.5 0.5 0.1 0.1\nwindow 0.5 0.5 0.1 0.1\n")
    problems = annotate.validate(yolo_dir, raise_errors=False)
    assert problems["rule"].tolist() == ["non_positive_size", "unknown_class", "malformed"]
    assert problems["line"].tolist() == [1, 2, 3]


def test_image_without_label_and_label_without_image(yolo_dir, tmp_path):
    (tmp_path / "labels" / "train" / "b.txt").unlink()
    (tmp_path / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    problems = annotate.validate(yolo_dir, raise_errors=False)
    assert problems["rule"].tolist() == ["missing_label", "missing_image"]
    assert Path(problems["file"].iloc[0]).name == "b.jpg"
    assert Path(problems["file"].iloc[1]).name == "ghost.txt"
    assert problems["line"].isna().all()
    with pytest.raises(DatasetFormatError, match=r"b\.jpg: .*1 more problems"):
        annotate.validate(yolo_dir)


def test_clean_labels_give_an_empty_table(yolo_dir):
    problems = annotate.validate(yolo_dir, raise_errors=False)
    assert problems.empty and list(problems.columns) == annotate.PROBLEM_COLUMNS
    assert annotate.validate(yolo_dir).empty


def test_coco_rules(yolo_dir, tmp_path):
    js = annotate.yolo_to_coco(yolo_dir, yolo_dir / "parts.json")
    coco = json.loads(js.read_text())
    anns = coco["annotations"]
    anns[0]["bbox"] = [90, 10, 20, 10]  # 90 + 20 > width 100
    anns[1]["category_id"] = 9
    anns[2]["bbox"] = [10, 10, 0, 5]
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, 2]})
    coco["images"].append({"id": 3, "file_name": "gone.jpg", "width": 10, "height": 10})
    _images(yolo_dir, ["extra.jpg"])
    js.write_text(json.dumps(coco))
    problems = annotate.validate(js, raise_errors=False)
    assert set(problems["rule"]) == set(annotate.RULES)
    assert problems.loc[problems["rule"] == "outside_image", "line"].iloc[0] == 1
    assert problems.loc[problems["rule"] == "unknown_class", "line"].iloc[0] == 2
    assert problems.loc[problems["rule"] == "non_positive_size", "line"].iloc[0] == 3
    assert problems.loc[problems["rule"] == "malformed", "line"].iloc[0] == 4
    assert "gone.jpg" in problems.loc[problems["rule"] == "missing_image", "found"].iloc[0]
    assert problems.loc[problems["rule"] == "missing_label", "file"].iloc[0].endswith("extra.jpg")
    with pytest.raises(DatasetFormatError, match="parts.json"):
        annotate.read_coco(js, yolo_dir)


def test_invalid_json_is_reported(tmp_path):
    js = tmp_path / "bad.json"
    js.write_text('{"images": [\n')
    problems = annotate.validate(js, raise_errors=False)
    assert problems["rule"].tolist() == ["malformed"]
    assert problems["line"].iloc[0] == 2


def test_missing_labels_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="do not exist"):
        annotate.validate(tmp_path / "nope")


# --------------------------------------------------------------------------- statistics


def test_part_statistics_per_view_by_hand():
    rows = [
        # path, part, x1, y1, x2, y2, img_w, img_h, visible, view
        ("f1", "window", 0, 0, 50, 20, 100, 100, 1, "front"),
        ("f1", "light", 0, 50, 10, 60, 100, 100, 1, "front"),
        ("f1", "light", 90, 50, 100, 60, 100, 100, 1, "front"),
        ("f2", "window", 0, 0, 30, 40, 100, 100, 1, "front"),
        ("f2", "light", 0, 50, 10, 60, 100, 100, 0, "front"),
        ("r1", "window", 0, 0, 60, 60, 100, 100, 0, "rear"),
        ("r1", "brand", 40, 40, 60, 50, 100, 100, 1, "rear"),
    ]
    cols = [*annotate.BOX_COLUMNS, "visible", "view"]
    stats = annotate.part_statistics(pd.DataFrame(rows, columns=cols))
    front_win = stats.loc[("front", "window")]
    assert front_win["images"] == 2 and front_win["boxes"] == 2
    assert front_win["visibility"] == 1.0
    assert front_win["width_mean"] == pytest.approx(0.4)
    assert front_win["height_mean"] == pytest.approx(0.3)
    front_light = stats.loc[("front", "light")]
    assert front_light["boxes"] == 2 and front_light["images_with_part"] == 1
    assert front_light["visibility"] == 0.5
    assert front_light["instance_visibility"] == pytest.approx(2 / 3)
    assert ("rear", "window") not in stats.index  # never visible
    assert stats.loc[("rear", "brand"), "visibility"] == 1.0
    no_view = annotate.part_statistics(pd.DataFrame(rows, columns=cols).drop(columns="view"))
    assert no_view.loc[("all", "window"), "visibility"] == pytest.approx(2 / 3)


def test_plot_part_statistics_returns_a_figure():
    rows = [("a", p, 0, 0, 10, 10, 20, 20) for p in ("window", "light", "brand")]
    fig = annotate.plot_part_statistics(pd.DataFrame(rows, columns=annotate.BOX_COLUMNS))
    assert len(fig.axes) == 3
