"""Paths mean one thing.

A data root given relatively with ``..`` from another working directory, through a
symbolic link, or in a folder named with spaces, ``#``, ``:`` and non-ASCII letters
gives the same images and part boxes as its resolved absolute path; a training asked
for parts whose boxes name other images stops before training and says why; a part
label folder's ``data.yaml`` names its own folder, so a copy is read as itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from prreid_lib import studies
from prreid_lib.annotate import validate
from prreid_lib.cli import main
from prreid_lib.config import PART_NAMES, TrainConfig, get_profile
from prreid_lib.datasets import load_vehicleid, load_veri776
from prreid_lib.parts import ground_truth_part_boxes, read_part_boxes
from prreid_lib.paths import canonical_path, canonical_paths, yaml_data_root
from prreid_lib.pipeline.imageset import ReIDImageSet, boxes_to_tensors
from prreid_lib.synthveh import load_synthveh_parts
from prreid_lib.synthveh.export import data_yaml_is_current, data_yaml_spec, write_data_yaml
from prreid_lib.train import _load_training_data, check_part_coverage, train_reid
from prreid_lib.yolo_env import prepare_dataset

WEIRD = "my data #1:é"
"""A folder name with a space, a YAML comment sign, a colon and a non-ASCII letter."""


def _ground_truth(root: str | Path, dataset: str = "VehicleID"):
    """The training frame and ground-truth part boxes of the SynthVeh data set under ``root``."""
    folder = Path(root) / dataset
    train = (load_vehicleid(folder) if dataset == "VehicleID" else load_veri776(folder)).train
    return train, ground_truth_part_boxes(load_synthveh_parts(folder), train)


def _coverage(train: pd.DataFrame, boxes: pd.DataFrame) -> dict[str, float]:
    """Share of ``train``'s images with a box of each part, as the training joins them."""
    _, valid = boxes_to_tensors(list(train["path"]), boxes)
    return dict(zip(PART_NAMES, valid.any(-1).float().mean(0).tolist(), strict=True))


def _args(data_root: str, parts: str = "gt", dataset: str = "vehicleid") -> argparse.Namespace:
    return argparse.Namespace(data_root=data_root, dataset=dataset, parts=parts, data_seed=0)


@pytest.fixture(scope="module")
def reference(smoke_data: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The smoke data read through its absolute root."""
    train, boxes = _ground_truth(smoke_data)
    return train, boxes, _coverage(train, boxes)


@pytest.fixture
def spellings(smoke_data: Path, tmp_path: Path, monkeypatch) -> dict[str, str]:
    """Other ways to name the smoke data, seen from ``tmp_path/work`` (the working folder)."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "link").symlink_to(smoke_data, target_is_directory=True)
    (tmp_path / f"link {WEIRD}").symlink_to(smoke_data, target_is_directory=True)
    monkeypatch.chdir(work)
    relative = os.path.relpath(smoke_data, work)
    assert relative.startswith("..")
    return {
        "relative with ..": relative,
        "relative through a link": "../link",
        "absolute through a link": str(tmp_path / "link"),
        "link named with spaces, #, : and é": f"../link {WEIRD}",
        "with . and ..": f"../work/{relative}/./",
        "a link, then ..": f"../link/../{smoke_data.name}",  # .. of the link's target
    }


# ----------------------------------------------------------------------------- the rule


def test_canonical_path_resolves_folders_and_keeps_a_file_its_name(tmp_path, monkeypatch):
    tmp = tmp_path.resolve()
    (tmp / "real" / WEIRD).mkdir(parents=True)
    image = tmp / "real" / WEIRD / "a.jpg"
    image.write_bytes(b"x")
    (tmp / "real" / WEIRD / "b.jpg").symlink_to(image)  # an image that is a link
    (tmp / "ln").symlink_to(tmp / "real", target_is_directory=True)
    (tmp / "work").mkdir()
    monkeypatch.chdir(tmp / "work")
    monkeypatch.setenv("HOME", str(tmp))
    for spelled in (
        f"../ln/{WEIRD}/a.jpg",
        f"../ln/{WEIRD}/../{WEIRD}/./a.jpg",
        f"~/ln/{WEIRD}/a.jpg",
        str(image),
    ):
        assert canonical_path(spelled) == image, spelled
    assert canonical_path("../ln") == tmp / "real"  # a folder: the link resolved
    assert canonical_path(f"../ln/{WEIRD}/b.jpg") == tmp / "real" / WEIRD / "b.jpg"  # its name
    assert canonical_path("../ln/missing/c.jpg") == tmp / "real" / "missing" / "c.jpg"
    many = ["../ln", f"../ln/{WEIRD}/a.jpg", Path(f"../ln/{WEIRD}/b.jpg"), "../ln/x/../y.jpg"]
    assert canonical_paths(many) == [str(canonical_path(p)) for p in many]


def test_a_yaml_path_is_relative_to_the_yaml_folder(tmp_path, monkeypatch):
    tmp = tmp_path.resolve()
    (tmp / WEIRD).mkdir()
    (tmp / "elsewhere").mkdir()
    monkeypatch.chdir(tmp / "elsewhere")
    spelled = f"../{WEIRD}/data.yaml"
    assert yaml_data_root(spelled) == tmp / WEIRD
    assert yaml_data_root(spelled, ".") == tmp / WEIRD
    assert yaml_data_root(spelled, "../elsewhere") == tmp / "elsewhere"
    assert yaml_data_root(spelled, str(tmp)) == tmp


# ----------------------------------------------------------------------------- data roots


def test_every_spelling_of_the_root_gives_the_same_part_boxes(reference, spellings):
    ref_train, ref_boxes, ref_cov = reference
    assert min(ref_cov.values()) > 0.99  # ground truth, missing parts imputed
    for how, root in spellings.items():
        train, boxes = _ground_truth(root)
        assert train["path"].tolist() == ref_train["path"].tolist(), how
        pd.testing.assert_frame_equal(boxes, ref_boxes, obj=how)
        assert _coverage(train, boxes) == ref_cov, how


def test_a_copy_in_a_folder_named_with_spaces_hash_colon_and_accent_is_itself(
    smoke_data, reference, tmp_path
):
    ref_train, ref_boxes, ref_cov = reference
    copy = tmp_path / WEIRD
    shutil.copytree(smoke_data / "VehicleID", copy / "VehicleID")
    train, boxes = _ground_truth(copy)
    base = str(tmp_path.resolve() / WEIRD / "VehicleID") + os.sep
    assert all(p.startswith(base) for p in train["path"])
    ref_base = str(Path(ref_train["path"].iloc[0]).parents[1]) + os.sep
    assert [p.removeprefix(base) for p in train["path"]] == [
        p.removeprefix(ref_base) for p in ref_train["path"]
    ]
    assert _coverage(train, boxes) == ref_cov
    pd.testing.assert_frame_equal(boxes.drop(columns="path"), ref_boxes.drop(columns="path"))


@pytest.mark.parametrize("dataset", ["vehicleid", "veri776"])
def test_the_training_data_of_any_spelling_has_the_boxes_of_the_absolute_root(
    smoke_data, spellings, dataset
):
    profile = get_profile("smoke")
    ref_train, ref_boxes = _load_training_data(_args(str(smoke_data), dataset=dataset), profile)
    ref_cov = _coverage(ref_train, ref_boxes)
    assert min(ref_cov.values()) > 0.99
    for how, root in spellings.items():
        train, boxes = _load_training_data(_args(root, dataset=dataset), profile)
        assert train["path"].tolist() == ref_train["path"].tolist(), how
        assert _coverage(train, boxes) == ref_cov, how


def test_a_part_box_csv_with_relative_or_linked_paths_joins_the_images(
    smoke_data, reference, spellings, tmp_path
):
    ref_train, ref_boxes, ref_cov = reference
    folder = tmp_path / "boxes"
    folder.mkdir()
    relative = ref_boxes.assign(path=[os.path.relpath(p, folder) for p in ref_boxes["path"]])
    assert relative["path"].str.startswith("..").all()
    relative.to_csv(folder / "relative.csv", index=False)  # relative to the CSV's folder
    linked = ref_boxes.assign(
        path=[p.replace(str(smoke_data), str(tmp_path / "link"), 1) for p in ref_boxes["path"]]
    )
    assert not linked["path"].isin(ref_boxes["path"]).any()
    linked.to_csv(folder / "linked.csv", index=False)
    profile = get_profile("smoke")
    for csv in ("../boxes/relative.csv", "../boxes/linked.csv"):
        assert read_part_boxes(csv)["path"].tolist() == ref_boxes["path"].tolist(), csv
        train, boxes = _load_training_data(_args(spellings["relative with .."], csv), profile)
        assert _coverage(train, boxes) == ref_cov, csv


# ----------------------------------------------------------------------------- refusals


def _tiny_images(folder: Path, n: int = 4) -> pd.DataFrame:
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(path)
        rows.append({"path": str(path), "pid": i // 2})
    return pd.DataFrame(rows)


def _boxes(paths, parts=PART_NAMES) -> pd.DataFrame:
    rows = [(str(p), part, 2, 2, 10, 10, 20, 20) for p in paths for part in parts]
    return pd.DataFrame(rows, columns=["path", "part", "x1", "y1", "x2", "y2", "img_w", "img_h"])


def test_coverage_check_names_the_parts_below_one_half(tmp_path):
    frame = _tiny_images(tmp_path / "img")
    covered = list(frame["path"][:3]) + [frame["path"][3]]
    boxes = pd.concat([_boxes(covered, ["window", "light"]), _boxes(covered[:1], ["brand"])])
    data = ReIDImageSet(frame, boxes, input_size=16, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"brand 25% \(1 of 4\).* lambda_p of brand to 0"):
        check_part_coverage(data, boxes)
    three = pd.concat([boxes, _boxes(covered[1:3], ["brand"])])
    data = ReIDImageSet(frame, three, input_size=16, cache_dir=tmp_path / "c")
    check_part_coverage(data, three)  # 75%: trains


def test_training_with_boxes_of_another_root_stops_before_training(tmp_path):
    frame = _tiny_images(tmp_path / "data" / "img")
    shutil.copytree(tmp_path / "data", tmp_path / "moved copy")
    boxes = _boxes(str(tmp_path / "moved copy" / "img" / f"{i}.png") for i in range(4))
    cfg = TrainConfig(input_size=32, feat_dim=8, epochs=1, batch_size=4)
    out = tmp_path / "run"
    with pytest.raises(ValueError) as err:
        train_reid(cfg, frame, boxes, out, progress=False, cache_dir=tmp_path / "c")
    message = str(err.value)
    assert "window 0% (0 of 4), light 0% (0 of 4), brand 0% (0 of 4)" in message
    assert f"under {tmp_path.resolve() / 'data' / 'img'};" in message
    assert str(tmp_path.resolve() / "moved copy" / "img") in message and "0 of them" in message
    assert not out.exists()  # nothing written under a part-regularized name


def test_cli_train_with_a_csv_of_another_copy_is_one_line(
    smoke_data, reference, spellings, tmp_path, capsys
):
    _, ref_boxes, _ = reference
    copy = tmp_path / WEIRD
    shutil.copytree(smoke_data / "VehicleID", copy / "VehicleID")
    _, copy_boxes = _ground_truth(copy)
    copy_boxes.to_csv(tmp_path / "copy_boxes.csv", index=False)
    code = main(
        [
            "train",
            "--profile",
            "smoke",
            "--data-root",
            spellings["relative with .."],
            "--parts",
            "../copy_boxes.csv",
            "--output-dir",
            str(tmp_path / "runs"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("prreid train: error: part boxes cover too few training images")
    assert "window 0% (0 of 64)" in err and str(copy.resolve()) in err
    assert str(Path(ref_boxes["path"].iloc[0]).parent) in err  # the training images' folder
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- data.yaml


def test_a_copied_part_folder_is_validated_and_prepared_as_itself(
    smoke_data, tmp_path, monkeypatch
):
    original = smoke_data / "parts"
    copy = tmp_path / WEIRD / "parts"
    shutil.copytree(original, copy)
    text = (copy / "data.yaml").read_text(encoding="utf-8")
    assert "path" not in yaml.safe_load(text) and yaml.safe_load(text) == data_yaml_spec()
    dropped = sorted((copy / "labels" / "train").glob("*.txt"))[0]
    dropped.unlink()  # the copy now differs from the original
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    spelled = f"../{WEIRD}/parts/data.yaml"
    spec, base = studies.parts_spec(spelled)
    assert base == copy.resolve() and (base / spec["train"]).is_dir()
    problems = validate(spelled, raise_errors=False)
    assert problems["rule"].tolist() == ["missing_label"]
    flagged = Path(problems["file"].iloc[0])  # the copy's image, not the original's
    assert flagged.parent == copy.resolve() / "images" / "train" and flagged.stem == dropped.stem
    assert validate(original / "data.yaml", raise_errors=False).empty
    prepared, _ = prepare_dataset(spelled, tmp_path / "work", extend_lights=False)
    handed = yaml.safe_load(prepared.read_text(encoding="utf-8"))
    assert handed["path"] == str(copy.resolve())  # absolute for ultralytics, '#' and ':' intact


def test_an_older_yaml_with_a_relative_path_is_read_against_its_folder(
    smoke_data, tmp_path, monkeypatch
):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_data / "parts", copy)
    (copy / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [window, light, brand]\n"
    )
    monkeypatch.chdir(smoke_data)  # a working folder holding another parts/ folder
    assert studies.parts_spec(copy / "data.yaml")[1] == copy.resolve()
    assert not data_yaml_is_current(copy)  # SynthVeh rewrites such a file
    write_data_yaml(copy)
    assert data_yaml_is_current(copy) and "path" not in (copy / "data.yaml").read_text()


@pytest.mark.slow
def test_ultralytics_reads_a_copied_data_yaml_from_another_folder(
    smoke_data, tmp_path, monkeypatch
):
    from prreid_lib.yolo_env import configure_offline

    configure_offline(tmp_path / "yolo")
    from ultralytics.data.utils import check_det_dataset

    copy = tmp_path / WEIRD / "parts"
    shutil.copytree(smoke_data / "parts", copy)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    data = check_det_dataset(f"../{WEIRD}/parts/data.yaml", autodownload=False)
    assert data["train"] == str(copy.resolve() / "images" / "train")
    assert data["val"] == str(copy.resolve() / "images" / "val")


@pytest.mark.slow
def test_cli_trains_a_relative_root_with_every_part_box(smoke_data, spellings, tmp_path):
    runs = tmp_path / "runs"
    argv = ["train", "--profile", "smoke", "--data-root", spellings["relative with .."]]
    argv += ["--set", "epochs=1", "--output-dir", str(runs), "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--no-progress"]) == 0
    (final,) = runs.glob("*/final.json")
    coverage = json.loads(final.read_text())["part_coverage"]
    assert coverage == dict.fromkeys(PART_NAMES, 1.0)
    assert np.isfinite(json.loads(final.read_text())["final"]["ce_window"])
