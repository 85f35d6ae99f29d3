"""Chapter 1's steps (prreid_lib.studies.dataset_tour) and figures (prreid_lib.viz.data),
on small hand-made data sets."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from prreid_lib.datasets import VehicleID, VeRi776
from prreid_lib.studies import dataset_tour as tour
from prreid_lib.synthveh_files import IDENTITIES_FILE, PARTS_FILE
from prreid_lib.viz import data as figures


def _frame(root: Path, pids: list[int], camids: list[int] | None = None) -> pd.DataFrame:
    cams = camids or pids
    names = [f"{p:04d}_c{c:03d}_{k}.jpg" for k, (p, c) in enumerate(zip(pids, cams, strict=True))]
    frame = pd.DataFrame({"path": [str(root / n) for n in names], "name": names, "pid": pids})
    return frame.assign(camid=camids) if camids is not None else frame


def _veri(root: Path) -> VeRi776:
    return VeRi776(
        root=root / "VeRi-776",
        train=_frame(root / "VeRi-776", [1, 1, 1, 2], [3, 1, 3, 2]),
        query=_frame(root / "VeRi-776", [5], [1]),
        gallery=_frame(root / "VeRi-776", [5, 6], [2, 4]),
    )


def _vid(root: Path, model_ids: list[object] | None = None) -> VehicleID:
    train = _frame(root / "VehicleID", [1, 1, 2, 3, 4, 5])
    train = train.assign(model_id=pd.array(model_ids or [pd.NA] * 6, dtype="Int64"))
    train = train.assign(colour_id=pd.array([7, 7, 7, 7, 8, 8], dtype="Int64"))
    return VehicleID(root=root / "VehicleID", train=train, test=_frame(root, [9, 9]), test_size=800)


def _parts(paths: list[str], views: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"path": paths, "part": "window", "view": views})


# ----------------------------------------------------------------- splits and their counts


def test_with_views_adds_each_images_view_and_leaves_the_loaders_frames_alone(tmp_path):
    veri, vid = _veri(tmp_path), _vid(tmp_path)
    paths = [*veri.train["path"], *veri.query["path"], *veri.gallery["path"]]
    views = ["front", "rear", "front", "rear", "front", "rear", "rear"]
    vid_parts = _parts(list(vid.train["path"]), ["front"] * 3 + ["rear"] * 3)
    parts = {"VeRi-776": _parts(paths, views), "VehicleID": vid_parts}
    seen_veri, seen_vid = tour.with_views(veri, vid, parts)
    assert seen_veri.train["view"].tolist() == ["front", "rear", "front", "rear"]
    assert seen_veri.gallery["view"].tolist() == ["rear", "rear"]
    assert seen_vid.train["view"].tolist() == ["front"] * 3 + ["rear"] * 3
    assert seen_vid.test["view"].isna().all()  # no box for those images: no view
    assert "view" not in veri.train.columns and "view" not in vid.train.columns
    same_veri, same_vid = tour.with_views(veri, vid, {})  # real data: unchanged
    assert same_veri is veri and same_vid is vid


def test_tour_splits_name_only_the_data_sets_the_folder_has(tmp_path):
    vid = _vid(tmp_path)
    assert list(tour.tour_splits(None, vid)) == ["VehicleID train", "VehicleID test (small)"]
    both = tour.tour_splits(_veri(tmp_path), vid)
    assert list(both)[:3] == ["VeRi-776 train", "VeRi-776 query", "VeRi-776 gallery"]
    assert both["VeRi-776 gallery"] is not None and len(both["VeRi-776 gallery"]) == 2


def test_count_glues_give_whole_numbers_or_na_for_a_missing_split(tmp_path):
    stats = tour.split_statistics(tour.tour_splits(_veri(tmp_path), None))
    counts = tour.count_glues(stats)
    assert list(counts) == list(tour.COUNT_GLUES)
    assert counts["ch01_veri_train_ids"] == 2 and type(counts["ch01_veri_train_ids"]) is int
    assert counts["ch01_veri_train_images"] == 4
    assert counts["ch01_veri_cameras"] == 2  # the gallery's cameras
    assert counts["ch01_vid_train_ids"] == "n/a" and counts["ch01_vid_train_images"] == "n/a"


def test_count_glues_say_na_for_a_split_without_cameras(tmp_path):
    vid = _vid(tmp_path)
    stats = tour.split_statistics({"VeRi-776 gallery": vid.test, "VehicleID train": vid.train})
    assert tour.count_glues(stats)["ch01_veri_cameras"] == "n/a"
    assert tour.count_glues(stats)["ch01_vid_train_images"] == 6


# ----------------------------------------------------------------- near-duplicate groups


def test_near_duplicate_summary_of_synthveh_groups_its_training_identities(tmp_path):
    vid = _vid(tmp_path)
    vid.root.mkdir(parents=True)
    rows = [  # pid 6 is no training identity: left out, so pid 5 has no near-duplicate
        (1, "a", "x", "red", 0),
        (2, "a", "x", "red", 0),
        (3, "a", "x", "red", 0),
        (4, "a", "x", "blue", 1),
        (5, "b", "y", "red", 2),
        (6, "b", "y", "red", 2),
    ]
    columns = ["pid", "make", "model", "colour", "group"]
    pd.DataFrame(rows, columns=columns).to_csv(vid.root / IDENTITIES_FILE, index=False)
    summary = tour.near_duplicate_summary(vid, synthetic=True)
    assert summary.glues() == {
        "ch01_near_dup_share": pytest.approx(0.6),
        "ch01_n_groups": 3,
        "ch01_n_dup_groups": 1,
        "ch01_n_alone": 2,
    }
    assert summary.sentence() == (
        "1 near-duplicate groups of two or more identities; 2 identities have no "
        "near-duplicate; 60% of identities have at least one"
    )
    images = tour.example_images(vid, summary)
    assert images["group"].tolist() == [0, 0, 0, 0, 1, 2]
    assert len(images) == len(vid.train)


def test_near_duplicate_summary_of_real_vehicleid_uses_model_and_colour_ids(tmp_path):
    vid = _vid(tmp_path, model_ids=[10, 10, 10, 11, 12, 12])
    summary = tour.near_duplicate_summary(vid, synthetic=False)
    assert sorted(summary.groups["group_size"]) == [1, 2, 2]  # pids (1, 2), (3), (4, 5)
    assert summary.glues()["ch01_near_dup_share"] == pytest.approx(0.8)
    assert tour.example_images(vid, summary) is vid.train  # no group column: no merge


def test_without_attributes_every_near_duplicate_value_is_na(tmp_path):
    summary = tour.near_duplicate_summary(_vid(tmp_path), synthetic=False)
    assert summary.groups is None
    assert set(summary.glues().values()) == {"n/a"}
    assert summary.sentence().startswith("no make/model/colour attributes")
    with pytest.raises(ValueError, match="no near-duplicate groups"):
        _ = summary.share
    assert tour.near_duplicate_summary(None, synthetic=False).groups is None


def test_one_image_per_camera_follows_the_first_training_vehicle(tmp_path):
    strip = tour.one_image_per_camera(_veri(tmp_path).train)
    assert strip["pid"].tolist() == [1, 1] and strip["camid"].tolist() == [1, 3]
    assert strip["name"].tolist() == ["0001_c001_1.jpg", "0001_c003_0.jpg"]


# ----------------------------------------------------------------- part boxes


def _boxes() -> pd.DataFrame:
    rows = [  # part, view, visible, box 10x10 / 20x10 in a 100x50 image
        ("light", "front", 1, 10),
        ("light", "front", 0, 20),
        ("light", "rear", 1, 10),
        ("brand", "front", 1, 10),
        ("vehicle", "front", 1, 100),
    ]
    frame = pd.DataFrame(rows, columns=["part", "view", "visible", "w"])
    return frame.assign(x1=0, y1=0, x2=frame["w"], y2=10, img_w=100, img_h=50)


def test_part_visibility_per_part_and_view_leaves_out_the_vehicle_box():
    table = tour.part_visibility(_boxes())
    assert list(table.index) == [("brand", "front"), ("light", "front"), ("light", "rear")]
    assert table.loc[("light", "front"), "visible"] == 0.5
    assert table.loc[("light", "front"), "rel_area"] == pytest.approx((100 + 200) / 2 / 5000)
    assert table["boxes"].tolist() == [1, 2, 1]
    assert tour.light_visible_share(_boxes()) == pytest.approx(2 / 3)


def test_synthveh_part_boxes_read_both_layouts(tmp_path):
    for layout in ("VeRi-776", "VehicleID"):
        (tmp_path / layout).mkdir()
        row = "image,part,view\nimage/a.jpg,window,front\n"
        (tmp_path / layout / PARTS_FILE).write_text(row)
    veri = VeRi776(tmp_path / "VeRi-776", *(pd.DataFrame(),) * 3)
    vid = VehicleID(tmp_path / "VehicleID", pd.DataFrame(), pd.DataFrame(), 800)
    parts = tour.synthveh_part_boxes(veri, vid)
    assert list(parts) == ["VeRi-776", "VehicleID"]
    expected = (tmp_path / "VehicleID" / "image" / "a.jpg").resolve()
    assert Path(parts["VehicleID"]["path"].iloc[0]) == expected


def _light_rows() -> pd.DataFrame:
    """Light boxes of VeRi-776 images by camera: camera 1 shows both, camera 2 hides one of
    two, camera 3 hides both; and one window (not a light) that camera 3 hides."""
    rows = [(1, 1), (1, 1), (2, 1), (2, 0), (3, 0), (3, 0)]
    paths = [
        f"/d/VeRi-776/image_train/0001_c{c:03d}_0000000{k}_0.jpg" for k, (c, _) in enumerate(rows)
    ]
    lights = pd.DataFrame({"path": paths, "part": "light", "visible": [v for _, v in rows]})
    window = pd.DataFrame({"path": [paths[-1]], "part": ["window"], "visible": [0]})
    return pd.concat([lights, window], ignore_index=True)


def test_hidden_lights_per_camera_count_only_light_boxes():
    hidden = tour.hidden_lights_per_camera(_light_rows())
    assert hidden.index.tolist() == [1, 2, 3] and hidden.index.name == "camera"
    assert hidden.tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert tour.hidden_lights_sentence(_light_rows()) == (
        "Camera 3 hides the lights most often: 1.000 of its light boxes are hidden, against "
        "0.500 over all cameras."
    )
    tied = _light_rows()
    tied.loc[2, "visible"] = 0  # camera 2 now hides both of its lights too
    assert tour.hidden_lights_sentence(tied).startswith(
        "Cameras 2 and 3 each hide the lights most often: 1.000 of their light boxes"
    )


def test_the_combination_sentence_follows_the_profiles_settings():
    from dataclasses import replace

    from prreid_lib.config import get_profile

    smoke = get_profile("smoke")
    mine = replace(
        smoke,
        name="mine",
        synth=replace(
            smoke.synth, n_makes=2, models_per_make=3, n_colours=5, vehicleid_train_ids=45
        ),
    )
    paper = get_profile("paper").synth
    combos = paper.n_makes * paper.models_per_make * paper.n_colours
    per = paper.vehicleid_train_ids / combos
    assert tour.combination_sentence(mine) == (
        "The mine profile spreads 45 VehicleID training identities over 30 make-model-colour "
        f"combinations, 1.5 per combination; the paper profile spreads "
        f"{paper.vehicleid_train_ids:,} over {combos}, {per:.1f} per combination "
        f"({per / 1.5:.1f} times as many)."
    )
    alone = tour.combination_sentence(mine, other="mine")
    assert alone.endswith("1.5 per combination.") and "paper" not in alone
    assert tour.near_duplicate_target(mine) == smoke.synth.near_duplicate_share
    lower = replace(mine, synth=replace(mine.synth, near_duplicate_share=0.6))
    assert tour.near_duplicate_target(lower) == pytest.approx(0.6)


# ----------------------------------------------------------------- files and paths


def test_file_heads_show_the_first_lines_of_each_list_file(tmp_path):
    veri, vid = _veri(tmp_path), _vid(tmp_path)
    veri.root.mkdir()
    (veri.root / "name_train.txt").write_text("a.jpg\nb.jpg\nc.jpg\nd.jpg\n")
    (veri.root / "test_track.txt").write_text("x" * 120 + "\n")
    xml = '<?xml version="1.0" encoding="gb2312"?>\n<TrainingImages Version="1.0">\n<Items>\n'
    (veri.root / "train_label.xml").write_bytes((xml + "<Item 车/>\n<more/>\n").encode("gb2312"))
    split = vid.root / "train_test_split"
    split.mkdir(parents=True)
    (split / "train_list.txt").write_text("0000001 1\n")
    (split / "test_list_800.txt").write_text("0000009 9\n")
    lines = tour.file_heads(veri, vid, tmp_path).splitlines()
    assert lines[:4] == ["--- VeRi-776/name_train.txt", "    a.jpg", "    b.jpg", "    c.jpg"]
    assert lines[4:6] == ["--- VeRi-776/test_track.txt", "    " + "x" * 110 + " ..."]
    assert lines[6] == "--- VeRi-776/train_label.xml" and lines[10] == "    <Item 车/>"
    assert lines[11:] == [
        "--- VehicleID/train_test_split/train_list.txt",
        "    0000001 1",
        "--- VehicleID/train_test_split/test_list_800.txt",
        "    0000009 9",
    ]


def test_relative_paths_show_no_machine_folder(tmp_path):
    frame = _veri(tmp_path).query
    shown = tour.relative_paths(frame, tmp_path)
    assert shown["path"].tolist() == ["VeRi-776/0005_c001_0.jpg"]
    assert frame["path"].iloc[0] == str(tmp_path / "VeRi-776" / "0005_c001_0.jpg")


def test_pretraining_images_only_for_synthveh_with_a_pretraining_split(tmp_path):
    assert tour.pretraining_images(tmp_path, synthetic=True) is None  # no pretrain/
    pre = tmp_path / "pretrain"
    pre.mkdir()
    (pre / "image_list.txt").write_text("image/1.jpg 1\nimage/2.jpg 1\nimage/3.jpg 2\n")
    (pre / IDENTITIES_FILE).write_text("pid,make,model,colour,group\n1,a,x,red,4\n2,a,x,red,4\n")
    assert tour.pretraining_images(tmp_path, synthetic=False) is None
    frame = tour.pretraining_images(tmp_path, synthetic=True)
    assert frame["pid"].tolist() == [4, 4, 4] and frame["vehicle"].tolist() == [1, 1, 2]
    assert tour.pretraining_summary(frame) == (
        "3 images of 2 vehicles in 1 make-model-colour groups"
    )


# ----------------------------------------------------------------- figures


def _images(tmp_path: Path, n: int) -> list[str]:
    paths = []
    for k in range(n):
        path = tmp_path / f"{k}.png"
        Image.new("RGB", (8, 6), (10 * k, 0, 0)).save(path)
        paths.append(str(path))
    return paths


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_group_size_bars_count_groups_of_each_size():
    groups = pd.DataFrame({"group_size": [3, 1, 2, 2, 1, 1]})
    fig = figures.group_size_bars(groups)
    (ax,) = fig.axes
    assert [p.get_height() for p in ax.patches] == [3, 2, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert ax.get_ylabel() == "groups"
    assert ax.get_xlabel().startswith("identities in the group")


def test_identity_examples_show_groups_when_there_are_some(tmp_path):
    paths = _images(tmp_path, 6)
    images = pd.DataFrame(
        {"path": paths, "pid": [1, 2, 3, 4, 5, 6], "group": [0, 0, 0, 1, 1, 2], "view": "front"}
    )
    fig = figures.identity_examples(images, seed=0)
    assert len(fig.axes) == 2 * 5  # the two groups of two identities or more, five columns
    assert _titles(fig) == [
        "group 0 · id 1",
        "group 0 · id 2",
        "group 0 · id 3",
        "group 1 · id 4",
        "group 1 · id 5",
    ]
    plain = figures.identity_examples(images.drop(columns="group"))
    assert _titles(plain) == [f"id {p}" for p in range(1, 7)]


def test_camera_strip_shows_at_most_eight_cameras(tmp_path):
    paths = _images(tmp_path, 10)
    strip = pd.DataFrame({"path": paths, "pid": 7, "camid": range(1, 11)})
    fig = figures.camera_strip(strip)
    assert len(fig.axes) == figures.STRIP_LENGTH
    assert _titles(fig)[0] == "id 7 · camera 1" and _titles(fig)[-1] == "id 7 · camera 8"
    assert len(figures.camera_strip(strip.head(3)).axes) == 3
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(rows) == 2  # two rows of four: legible at the page's width
    assert fig.get_size_inches()[0] <= 7.5


def test_pretraining_examples_show_one_image_of_the_first_eight_groups(tmp_path):
    paths = _images(tmp_path, 12)
    pre = pd.DataFrame({"path": paths, "pid": [0, 0, *range(1, 11)], "vehicle": range(12)})
    fig = figures.pretraining_examples(pre)
    assert len(fig.axes) == 8
    assert _titles(fig) == [f"group {g}" for g in range(8)]
    first = fig.axes[0].get_images()[0].get_array()
    assert int(first[0, 0, 0]) == 0  # the group's first image (image 0, red 0), not image 1


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
