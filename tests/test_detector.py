"""The YOLO part detector: offline environment, a tiny training with no network, caches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from prreid_lib import detector
from prreid_lib.cache import file_digest
from prreid_lib.config import DetectorConfig, get_profile
from prreid_lib.parts import PART_BOX_COLUMNS
from prreid_lib.yolo_env import FONT_NAMES, training_precision
from tests.test_annotate import make_part_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = DetectorConfig(model_yaml="yolo11n.yaml", imgsz=64, epochs=1, batch=8, conf=0.001)
N_VAL = 6


def test_offline_environment_is_set_before_ultralytics_is_imported(tmp_path):
    code = textwrap.dedent(
        f"""
        import json, os, sys
        from prreid_lib.yolo_env import configure_offline
        assert "ultralytics" not in sys.modules
        d = configure_offline({str(tmp_path)!r})
        import ultralytics.utils as u
        from ultralytics.utils.checks import check_font
        print(json.dumps({{"dir": str(u.USER_CONFIG_DIR), "online": u.ONLINE,
                          "sync": u.SETTINGS["sync"], "font": str(check_font("Arial.ttf")),
                          "returned": str(d)}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PRREID_YOLO"))}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    local = tmp_path / "Ultralytics"
    assert out["dir"] == out["returned"] == str(local)
    assert out["online"] is False and out["sync"] is False
    assert out["font"] == str(local / "Arial.ttf")
    for name in FONT_NAMES:
        assert (local / name).stat().st_size > 100_000  # a real TrueType font, not a stub


def test_no_amp_check_download():
    assert training_precision("cpu") is False
    assert training_precision("mps") is False


def test_resolve_device():
    assert detector.resolve_device("cpu") == "cpu"
    assert detector.resolve_device("cuda:1") == "1"
    assert detector.resolve_device("auto") == ("0" if torch.cuda.is_available() else "cpu")


def test_profiles_build_from_yaml_only():
    for name in ("smoke", "quick", "paper"):
        assert get_profile(name).detector.model_yaml.endswith(".yaml")


def _hand_dataset(root: Path) -> Path:
    """images/train/a.jpg (100x50) with a window and one light; images/val/b.jpg."""
    from PIL import Image

    for split, stem in (("train", "a"), ("val", "b")):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (100, 50)).save(root / "images" / split / f"{stem}.jpg")
        lines = "0 0.5 0.3 0.4 0.2\n1 0.2 0.5 0.1 0.2\n"  # light: y 0.4..0.6
        (root / "labels" / split / f"{stem}.txt").write_text(lines)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [window, light, brand]\n"
    )
    return root / "data.yaml"


def test_prepare_dataset_extends_lights_for_training(tmp_path):
    data = _hand_dataset(tmp_path / "ds")
    prepared, digest = detector.prepare_dataset(data, tmp_path / "work")
    spec = yaml.safe_load(prepared.read_text())
    mirror = tmp_path / "work" / "dataset"
    assert spec["path"] == str(mirror) and spec["train"] == "images/train"
    assert spec["names"] == {0: "window", 1: "light", 2: "brand"}
    # a real folder of linked files: ultralytics resolves folders, which would lead it
    # from a linked images folder back to the original labels
    assert not (mirror / "images" / "train").is_symlink()
    linked = mirror / "images" / "train" / "a.jpg"
    assert linked.resolve() == (tmp_path / "ds" / "images" / "train" / "a.jpg")
    # the light now reaches the image bottom: y 0.4..1.0 -> yc 0.7, h 0.6; window unchanged
    assert (mirror / "labels" / "train" / "a.txt").read_text().splitlines() == [
        "0 0.5 0.3 0.4 0.2",
        "1 0.200000 0.700000 0.100000 0.600000",
    ]
    # with SynthVeh ground truth the bottom is the vehicle box's (y2 = 45 of 50 -> 0.9)
    (tmp_path / "ds" / "synthveh_parts.csv").write_text(
        "image,part,side,x1,y1,x2,y2,visible,img_w,img_h,view\n"
        "images/train/a.jpg,vehicle,,5,5,95,45,1,100,50,front\n"
    )
    detector.prepare_dataset(data, tmp_path / "work")
    lines = (mirror / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines[1] == "1 0.200000 0.650000 0.100000 0.500000"
    assert (mirror / "labels" / "val" / "b.txt").read_text().splitlines()[1].endswith("0.600000")
    assert detector.prepare_dataset(data, tmp_path / "w2")[1] != digest  # csv is a new file


def test_prepare_dataset_without_extension_and_read_only_labels(tmp_path, monkeypatch):
    data = _hand_dataset(tmp_path / "ds")
    prepared, digest = detector.prepare_dataset(data, tmp_path / "w1", extend_lights=False)
    assert yaml.safe_load(prepared.read_text())["path"] == str(tmp_path / "ds")
    assert detector.prepare_dataset(data, tmp_path / "w2", extend_lights=False)[1] == digest
    label = tmp_path / "ds" / "labels" / "val" / "b.txt"
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    assert detector.prepare_dataset(data, tmp_path / "w3", extend_lights=False)[1] != digest

    import prreid_lib.yolo_env as env

    real_access = os.access
    monkeypatch.setattr(
        env.os, "access", lambda p, m: False if str(p).endswith("labels") else real_access(p, m)
    )
    mirrored, _ = detector.prepare_dataset(data, tmp_path / "w4", extend_lights=False)
    mirror = tmp_path / "w4" / "dataset"
    assert yaml.safe_load(mirrored.read_text())["path"] == str(mirror)
    assert (mirror / "labels" / "train").is_symlink()
    assert (mirror / "images" / "val" / "b.jpg").is_file()


def test_prepare_dataset_refuses_bad_labels(tmp_path):
    from prreid_lib.errors import DatasetFormatError

    data = _hand_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "labels" / "val" / "b.txt").unlink()  # background image: allowed
    detector.prepare_dataset(data, tmp_path / "w1")
    (tmp_path / "ds" / "labels" / "train" / "a.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetFormatError, match=r"a\.txt, line 1: .*unknown_class"):
        detector.prepare_dataset(data, tmp_path / "w2")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"path: {tmp_path / 'ds'}\ntrain: images/train\nnames: [light, window, brand]\n")
    with pytest.raises(ValueError, match="names must be"):
        detector.prepare_dataset(bad, tmp_path / "w3")
    with pytest.raises(FileNotFoundError, match="data.yaml"):
        detector.prepare_dataset(tmp_path / "none.yaml", tmp_path / "w4")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-epoch YOLO11n training on a hand-drawn dataset with every socket refused."""
    tmp = tmp_path_factory.mktemp("yolo")
    data = make_part_dataset(tmp / "ds", n_train=16, n_val=N_VAL)
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled by test_detector")

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket.socket, "connect_ex", refuse)
    patch.setattr(socket, "getaddrinfo", refuse)
    patch.setattr(socket, "create_connection", refuse)
    threads = torch.get_num_threads()
    try:
        run = detector.train_detector(data, TINY, tmp / "runs", device="cpu", workers=0)
        report = detector.evaluate_detector(run.weights, data, TINY.imgsz, device="cpu")
    finally:
        patch.undo()
    return {"run": run, "report": report, "data": data, "tmp": tmp, "attempts": attempts,
            "threads": threads}  # fmt: skip


@pytest.mark.slow
def test_tiny_training_runs_offline(tiny_run):
    run = tiny_run["run"]
    assert tiny_run["attempts"] == []
    assert run.weights.is_file() and not run.reused
    assert len(run.history) == TINY.epochs
    assert {"train/box_loss", "metrics/mAP50(B)"} <= set(run.history.columns)
    assert run.run_dir.parent.name == "detector"
    # YOLO read the prepared labels (lights extended), not the originals
    assert (run.run_dir.parent / "data" / "dataset" / "labels" / "train.cache").is_file()
    assert not (tiny_run["tmp"] / "ds" / "labels" / "train.cache").exists()
    assert torch.get_num_threads() == tiny_run["threads"]  # restored after ultralytics


@pytest.mark.slow
def test_finished_run_is_reused(tiny_run):
    again = detector.train_detector(
        tiny_run["data"], TINY, tiny_run["tmp"] / "runs", device="cpu", workers=0
    )
    assert again.reused and again.weights == tiny_run["run"].weights
    assert again.seconds == pytest.approx(tiny_run["run"].seconds)


@pytest.mark.slow
def test_evaluation_uses_the_validator_per_part(tiny_run):
    report = tiny_run["report"]
    per_part = report.per_part
    assert per_part["part"].tolist() == ["window", "light", "brand"]
    # the hand-drawn val set has one window, two lights and one brand per image
    assert per_part["instances"].tolist() == [N_VAL, 2 * N_VAL, N_VAL]
    assert per_part["images"].tolist() == [N_VAL] * 3
    assert per_part[["ap50", "ap50_95"]].stack().between(0, 1).all()
    assert report.map50 == pytest.approx(per_part["ap50"].mean())
    conf = report.confusion
    assert list(conf.index) == list(conf.columns) == ["window", "light", "brand", "background"]
    # every ground-truth box is counted once in its row (true class)
    assert conf.loc[["window", "light", "brand"]].sum(axis=1).tolist() == [N_VAL, 2 * N_VAL, N_VAL]


@pytest.mark.slow
def test_predictions_are_one_table_cached_by_model_hash(tiny_run):
    run = tiny_run["run"]
    paths = sorted(str(p) for p in (tiny_run["tmp"] / "ds" / "images" / "val").glob("*.jpg"))
    table = detector.predict_parts(run.weights, paths, TINY.imgsz, conf=0.0, device="cpu")
    assert list(table.columns) == detector.PREDICTION_COLUMNS
    assert len(table) > 0 and set(table["path"]) <= set(paths)
    assert set(table["part"]) <= {"window", "light", "brand"}
    assert (table["img_w"] == 64).all() and (table["img_h"] == 64).all()
    assert table[["x1", "y1"]].min().min() >= 0 and table[["x2", "y2"]].max().max() <= 64
    cached = list((run.run_dir / "predictions").glob("parts-*.csv"))
    assert len(cached) == 1 and file_digest(run.weights)[:16] in cached[0].name
    again = detector.predict_parts(run.weights, paths, TINY.imgsz, conf=0.0, device="cpu")
    pd.testing.assert_frame_equal(again, table, check_dtype=False)


@pytest.mark.slow
def test_detect_part_boxes_gives_the_contract_table(tiny_run):
    run = tiny_run["run"]
    paths = sorted(str(p) for p in (tiny_run["tmp"] / "ds" / "images" / "val").glob("*.jpg"))
    images = pd.DataFrame({"path": paths, "pid": [k // 2 for k in range(len(paths))]})
    boxes = detector.detect_part_boxes(images, run.weights, TINY, device="cpu")
    assert set(PART_BOX_COLUMNS) <= set(boxes.columns)
    raw = detector.predict_parts(run.weights, paths, TINY.imgsz, TINY.conf, device="cpu")
    assert len(raw) > 0
    per_image = boxes.groupby("path")["part"].value_counts().unstack(fill_value=0)
    assert len(per_image) == len(paths)  # imputation gives every image its parts
    for part in set(raw["part"]):  # every detected part is present once, lights once or twice
        assert per_image[part].between(1, 2 if part == "light" else 1).all()
    assert (boxes.loc[boxes["imputed"], "score"] == 0).all()
    assert (boxes.loc[~boxes["imputed"], "score"] >= TINY.conf).all()
    lights = boxes[boxes["part"] == "light"]
    assert (lights["y2"] == lights["img_h"]).all()  # extended to the bottom of the crop


def test_identities_of_different_data_sets_are_not_mixed(monkeypatch):
    det = pd.DataFrame(
        [
            ("veri/a.jpg", "window", 0, 0, 10, 10, 0.9),
            ("vid/c.jpg", "window", 50, 0, 60, 10, 0.9),
        ],
        columns=["path", "part", "x1", "y1", "x2", "y2", "score"],
    ).assign(img_w=100, img_h=100)
    monkeypatch.setattr(detector, "predict_parts", lambda *a, **k: det)
    images = pd.DataFrame(
        {
            "path": ["veri/a.jpg", "vid/b.jpg", "vid/c.jpg"],
            "pid": [1, 1, 2],
            "dataset": ["VeRi-776", "VehicleID", "VehicleID"],
            "img_w": 100,
            "img_h": 100,
        }
    )
    boxes = detector.detect_part_boxes(images, "unused.pt", TINY)
    win_b = boxes[(boxes["path"] == "vid/b.jpg") & (boxes["part"] == "window")].iloc[0]
    # VehicleID id 1 is not VeRi-776 id 1: b gets the mean of all windows, not a's
    assert win_b["impute_source"] == "all" and win_b["x1"] == pytest.approx(25)


def test_detect_part_box_steps_keeps_every_step_of_detect_part_boxes(monkeypatch):
    det = pd.DataFrame(
        [
            ("a.jpg", "window", 0, 0, 10, 10, 0.9),
            ("a.jpg", "window", 1, 1, 11, 11, 0.5),
            ("a.jpg", "light", 5, 60, 20, 70, 0.8),
        ],
        columns=["path", "part", "x1", "y1", "x2", "y2", "score"],
    ).assign(img_w=100, img_h=100)
    monkeypatch.setattr(detector, "predict_parts", lambda *a, **k: det)
    images = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "pid": [1, 1], "img_w": 100, "img_h": 100})
    steps = detector.detect_part_box_steps(images, "unused.pt", TINY)
    pd.testing.assert_frame_equal(steps.raw, det)
    assert len(steps.selected[steps.selected["part"] == "window"]) == 1  # the best one kept
    assert (steps.selected.loc[steps.selected["part"] == "light", "y2"] == 100).all()  # extended
    assert steps.boxes["imputed"].any() and not steps.selected["path"].eq("b.jpg").any()
    pd.testing.assert_frame_equal(
        steps.boxes, detector.detect_part_boxes(images, "unused.pt", TINY)
    )


def test_dataset_images_lists_every_split_with_views(smoke_data):
    from prreid_lib.datasets import load_vehicleid, load_veri776

    images = detector.dataset_images(smoke_data)
    veri, vid = load_veri776(smoke_data), load_vehicleid(smoke_data)
    n_veri = len(pd.concat([veri.train, veri.query, veri.gallery])["path"].unique())
    n_vid = len(pd.concat([vid.train, vid.test])["path"].unique())
    assert images["dataset"].value_counts().to_dict() == {"VeRi-776": n_veri, "VehicleID": n_vid}
    assert images["view"].isin(["front", "rear"]).all()
    assert images["path"].map(lambda p: Path(p).is_file()).all()
    with pytest.raises(FileNotFoundError, match="neither"):
        detector.dataset_images(smoke_data / "parts")
