"""The cache layer: content keys that survive a copy, atomic writes, cached JSON.

Every cache (runs, detector runs and predictions, evaluations, image tensors)
is keyed by content: a data folder copied elsewhere keeps its keys, so a
finished result is reused there. The run key has its own test in
``test_train.py`` (``test_run_key_follows_content_not_location``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from prreid_lib import cache


@pytest.fixture(scope="module")
def copied(smoke_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The smoke SynthVeh export and a copy of it in another folder."""
    copy = tmp_path_factory.mktemp("elsewhere") / "synthveh"
    shutil.copytree(smoke_data, copy)
    return smoke_data, copy


def _moved(frame: pd.DataFrame, root: Path, copy: Path) -> pd.DataFrame:
    return frame.assign(path=[str(copy / Path(p).relative_to(root)) for p in frame["path"]])


# --------------------------------------------------------------------------- the layer


def test_file_digest_follows_bytes_not_name_or_time(tmp_path: Path):
    import os

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert cache.file_digest(a) == cache.file_digest(b)
    os.utime(b, ns=(1, 1))
    assert cache.file_digest(b) == cache.file_digest(a)
    b.write_bytes(b"other")
    assert cache.file_digest(b) != cache.file_digest(a)
    assert cache.files_digest([a, b]) != cache.files_digest([b, a])  # order counts
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        cache.file_digest(tmp_path / "missing.bin")


def test_tree_digest_ignores_where_the_folder_is(tmp_path: Path):
    for root in (tmp_path / "one", tmp_path / "two"):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "x.txt").write_text("x")
        (root / "y.txt").write_text("y")
    files = {r: sorted(p for p in r.rglob("*") if p.is_file()) for r in (tmp_path / "one",)}
    one = cache.tree_digest(tmp_path / "one", files[tmp_path / "one"])
    two_root = tmp_path / "two"
    two = cache.tree_digest(two_root, [p for p in two_root.rglob("*") if p.is_file()])
    assert one == two
    assert cache.tree_digest(two_root, [two_root / "y.txt"]) != two
    assert cache.tree_digest(two_root, [two_root / "y.txt"], salt="x") != cache.tree_digest(
        two_root, [two_root / "y.txt"]
    )


def test_config_digest_is_canonical():
    assert cache.config_digest({"a": 1, "b": (2, 3)}) == cache.config_digest({"b": [2, 3], "a": 1})
    assert cache.config_digest({"a": 1}) != cache.config_digest({"a": 2})


def test_atomic_writes_leave_no_temporary_file(tmp_path: Path):
    target = tmp_path / "x.json"
    cache.write_json(target, {"b": 1, "a": Path("p")})
    assert json.loads(target.read_text()) == {"a": "p", "b": 1}
    cache.atomic_write(tmp_path / "y.bin", lambda handle: handle.write(b"abc"))
    assert (tmp_path / "y.bin").read_bytes() == b"abc"
    with pytest.raises(RuntimeError), cache.atomic_path(tmp_path / "z.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "y.bin"]


def test_cached_json_computes_once_and_repairs_damage(tmp_path: Path):
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"value": 3}

    path = tmp_path / "deep" / "record.json"
    assert cache.cached_json(path, compute, ["value"]) == {"value": 3}
    assert cache.cached_json(path, compute, ["value"]) == {"value": 3}
    assert len(calls) == 1
    path.write_text("{not json")
    assert cache.cached_json(path, compute, ["value"]) == {"value": 3}
    assert len(calls) == 2
    assert cache.cached_json(path, compute, ["value", "other"]) == {"value": 3}  # key missing
    assert len(calls) == 3


# --------------------------------------------------------------------------- keys survive a copy


def test_detector_data_key_is_the_same_for_a_copied_data_set(copied, tmp_path: Path):
    from prreid_lib.yolo_env import prepare_dataset

    root, copy = copied
    _, key = prepare_dataset(root / "parts" / "data.yaml", tmp_path / "a")
    _, moved = prepare_dataset(copy / "parts" / "data.yaml", tmp_path / "b")
    assert key == moved
    _, plain = prepare_dataset(copy / "parts" / "data.yaml", tmp_path / "c", extend_lights=False)
    assert plain != key


def test_predictions_key_is_the_same_for_copied_images_and_weights(copied, tmp_path: Path):
    from prreid_lib import detector

    root, copy = copied
    images = sorted(str(p) for p in (root / "parts" / "images").rglob("*.png"))[:6]
    images = images or sorted(str(p) for p in (root / "parts" / "images").rglob("*.jpg"))[:6]
    assert images, f"no part images under {root / 'parts' / 'images'}"
    moved = [str(copy / Path(p).relative_to(root)) for p in images]
    for where in ("one", "two"):
        (tmp_path / where / "weights").mkdir(parents=True)
        (tmp_path / where / "weights" / "best.pt").write_bytes(b"weights")
    first = detector.predictions_file(tmp_path / "one" / "weights" / "best.pt", images, 64, 0.25)
    second = detector.predictions_file(tmp_path / "two" / "weights" / "best.pt", moved, 64, 0.25)
    assert first.name == second.name
    assert detector.predictions_file(tmp_path / "one" / "weights" / "best.pt", moved, 64, 0.5) != (
        first
    )
    # a cached table is read back with the paths of the copy
    rows = pd.DataFrame(
        [[1, "window", 1.0, 2.0, 3.0, 4.0, 0.9, 64, 64]],
        columns=["image", *[c for c in detector.PREDICTION_COLUMNS if c != "path"]],
    )
    second.parent.mkdir(parents=True)
    rows.to_csv(second, index=False)
    table = detector.predict_parts(tmp_path / "two" / "weights" / "best.pt", moved, 64, 0.25)
    assert list(table.columns) == detector.PREDICTION_COLUMNS
    assert table["path"].tolist() == [moved[1]]


def test_evaluation_key_is_the_same_for_a_copied_data_set(copied):
    from prreid_lib.datasets import load_vehicleid
    from prreid_lib.parts import ground_truth_part_boxes
    from prreid_lib.studies import evaluation_key
    from prreid_lib.synthveh import load_synthveh_parts

    root, copy = copied
    test = load_vehicleid(root / "VehicleID").test
    boxes = ground_truth_part_boxes(load_synthveh_parts(root / "VehicleID"), test)
    moved_test = _moved(test, root, copy)
    moved_boxes = _moved(boxes, root, copy)
    for use_global in (True, False):
        run = SimpleNamespace(model=SimpleNamespace(use_global=use_global, parts=("window",)))
        key = evaluation_key(run, test, boxes, trials=3, seed=0)
        assert evaluation_key(run, moved_test, moved_boxes, trials=3, seed=0) == key
        assert evaluation_key(run, test, boxes, trials=4, seed=0) != key
        assert evaluation_key(run, test, boxes, trials=3, seed=0, metric="cosine") != key


def test_image_cache_is_reused_for_a_copied_data_set(copied, tmp_path: Path):
    from prreid_lib.pipeline.imageset import decode_images

    root, copy = copied
    paths = sorted(str(p) for p in (root / "VehicleID" / "image").iterdir())[:5]
    moved = [str(copy / Path(p).relative_to(root)) for p in paths]
    first, _ = decode_images(paths, 16, tmp_path / "cache")
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    again, _ = decode_images(moved, 16, tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    assert (first == again).all()
