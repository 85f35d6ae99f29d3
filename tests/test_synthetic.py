"""SynthVeh: layouts, determinism, near-duplicates, part boxes and where the identity cues sit."""

from __future__ import annotations

import dataclasses
import hashlib
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prreid_lib.config import SynthConfig, get_profile
from prreid_lib.datasets import load_vehicleid, load_veri776
from prreid_lib.synthveh import generator as S
from prreid_lib.synthveh.scene import render_image, sample_camera, sample_scene
from prreid_lib.synthveh.world import COLOURS, assign_groups, sample_group_cues, sample_model

TINY = SynthConfig(
    n_makes=2,
    models_per_make=1,
    n_colours=2,
    veri_train_ids=4,
    veri_test_ids=3,
    veri_cameras=3,
    veri_images_per_id=3,
    vehicleid_train_ids=4,
    vehicleid_test_sizes=(2, 3, 4),
    vehicleid_images_per_id=2,
    n_annotated=4,
    n_part_val=2,
    image_size=48,
)
SMOKE = get_profile("smoke").synth
PARTS = ("window", "light", "brand")


@pytest.fixture(scope="module")
def smoke_root(smoke_data: Path) -> Path:
    """The session's smoke export (tests/conftest.py), shared with other test files: read only."""
    return smoke_data


def _tree_hash(root: Path) -> str:
    """Hash of every file (relative path + bytes); data.yaml's absolute path is left out."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "data.yaml":
                data = data.replace(str(p.parent).encode(), b"<root>")
            h.update(str(p.relative_to(root)).encode() + b"\0" + data)
    return h.hexdigest()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_layouts_exist_with_profile_sizes(smoke_root: Path) -> None:
    veri, vid, parts = smoke_root / "VeRi-776", smoke_root / "VehicleID", smoke_root / "parts"
    cfg = SMOKE
    assert len(_lines(veri / "name_train.txt")) == cfg.veri_train_ids * cfg.veri_images_per_id
    assert len(_lines(veri / "name_test.txt")) == cfg.veri_test_ids * cfg.veri_images_per_id
    for split in ("train", "test", "query"):
        names = _lines(veri / f"name_{split}.txt")
        assert names == sorted(names)
        assert sorted(p.name for p in (veri / f"image_{split}").iterdir()) == names
    n_vid = (cfg.vehicleid_train_ids + max(cfg.vehicleid_test_sizes)) * cfg.vehicleid_images_per_id
    assert len(list((vid / "image").glob("*.jpg"))) == n_vid
    assert all(len(p.stem) == 7 for p in (vid / "image").iterdir())
    assert len(list((parts / "images/train").glob("*.jpg"))) == cfg.n_annotated
    assert len(list((parts / "images/val").glob("*.jpg"))) == cfg.n_part_val
    assert _lines(parts / "data.yaml") == [  # no `path`: relative to its own folder
        "train: images/train",
        "val: images/val",
        "names:",
        "  0: window",
        "  1: light",
        "  2: brand",
    ]
    assert (smoke_root / "synthveh.json").is_file()
    # the real loaders read the export, and its index files agree with the pid/camera rule
    data = load_veri776(veri)
    assert len(data.query) == len(_lines(veri / "name_query.txt"))
    assert data.index_mismatches.empty
    assert len(load_vehicleid(vid, test_size=1600).test) == 8 * cfg.vehicleid_images_per_id


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = _tree_hash(S.generate_synthveh(TINY, tmp_path / "a", seed=3, workers=1))
    b = _tree_hash(S.generate_synthveh(TINY, tmp_path / "b", seed=3, workers=2))
    c = _tree_hash(S.generate_synthveh(TINY, tmp_path / "c", seed=4, workers=1))
    assert a == b
    assert a != c


def test_assign_groups_hand_worked() -> None:
    rng = np.random.default_rng(0)
    combos = assign_groups(10, 0.8, 48, np.ones(48), rng)
    counts = Counter(combos.tolist())
    assert sum(c for c in counts.values() if c >= 2) == 8  # ceil(0.8 * 10) near-duplicates
    assert sum(c == 1 for c in counts.values()) == 2
    # 4 combinations cannot hold 10 singletons: 3 keep their own, 7 share the fourth
    assert sorted(Counter(assign_groups(10, 0.0, 4, np.ones(4), rng).tolist()).values()) == [
        1,
        1,
        1,
        7,
    ]


def test_near_duplicate_share(smoke_root: Path) -> None:
    for ds in ("VeRi-776", "VehicleID"):
        ids = pd.read_csv(smoke_root / ds / "synthveh_identities.csv")
        for _, part in ids.groupby("split"):
            size = part.groupby("group").pid.transform("size")
            assert (size >= 2).mean() >= 0.5
        grp = ids.groupby("group")[["make", "model", "colour"]].nunique()
        assert (grp == 1).all().all()  # a group is one make-model-colour


def test_one_row_per_part_and_boxes_inside(smoke_root: Path) -> None:
    for ds in ("VeRi-776", "VehicleID", "parts"):
        df = S.load_synthveh_parts(smoke_root / ds)
        images = {str(p.relative_to(smoke_root / ds)) for p in (smoke_root / ds).rglob("*.jpg")}
        assert set(df.image) == images
        key = df.part + ":" + df.side
        for _, g in key.groupby(df.image):
            assert sorted(g) == ["brand:", "light:left", "light:right", "vehicle:", "window:"]
        assert (df.x1 >= 0).all() and (df.y1 >= 0).all()
        assert (df.x2 <= df.img_w).all() and (df.y2 <= df.img_h).all()
        assert (df.x1 < df.x2).all() and (df.y1 < df.y2).all()
        assert Path(df.path.iloc[0]).is_file()
        veh = df[df.part == "vehicle"].set_index("image")
        inner = df[df.part != "vehicle"].merge(
            veh[["x1", "y1", "x2", "y2"]], left_on="image", right_index=True, suffixes=("", "_v")
        )
        assert (inner.x1 >= inner.x1_v - 1).all() and (inner.x2 <= inner.x2_v + 1).all()
        assert (inner.y1 >= inner.y1_v - 1).all() and (inner.y2 <= inner.y2_v + 1).all()
        with Image.open(df.path.iloc[0]) as img:
            assert img.size == (df.img_w.iloc[0], df.img_h.iloc[0])
    occluded = S.load_synthveh_parts(smoke_root / "VeRi-776")
    assert set(occluded.visible) <= {0, 1}


def test_xml_is_gb2312_and_matches_names(smoke_root: Path) -> None:
    veri = smoke_root / "VeRi-776"
    for split, tag in (("train", "TrainingImages"), ("test", "TestImages")):
        raw = (veri / f"{split}_label.xml").read_bytes()
        assert raw.startswith(b'<?xml version="1.0" encoding="gb2312"?>\n')
        root = ET.fromstring(raw.decode("gb2312"))
        assert root.tag == tag and root.get("Version") == "1.0"
        items = root.find("Items")
        names = _lines(veri / f"name_{split}.txt")
        assert int(items.get("number")) == len(names) == len(items)
        assert [it.get("imageName") for it in items] == names
        for it in items:
            n = it.get("imageName")
            assert it.get("vehicleID") == n[:4] and it.get("cameraID") == n[5:9]
            assert 1 <= int(it.get("colorID")) <= 10 and 1 <= int(it.get("typeID")) <= 9


def test_gt_and_junk_indices(smoke_root: Path) -> None:
    veri = smoke_root / "VeRi-776"
    test, query = _lines(veri / "name_test.txt"), _lines(veri / "name_query.txt")
    assert set(query) <= set(test)
    gt, jk = _lines(veri / "gt_index.txt"), _lines(veri / "jk_index.txt")
    assert len(gt) == len(jk) == len(query)
    for q, g, j in zip(query, gt, jk, strict=True):
        assert (veri / "image_query" / q).read_bytes() == (veri / "image_test" / q).read_bytes()
        good = [test[int(i) - 1] for i in g.split()]
        junk = [test[int(i) - 1] for i in j.split()]
        assert good and all(n[:4] == q[:4] and n[5:9] != q[5:9] for n in good)
        assert q in junk and all(n[:4] == q[:4] and n[5:9] == q[5:9] for n in junk)
        assert len(good) + len(junk) == sum(n[:4] == q[:4] for n in test)
    seen = []
    for line in _lines(veri / "test_track.txt"):
        key, *names = line.split(" ")
        assert key == names[0] == min(names)
        assert len({n[:9] for n in names}) == 1  # one vehicle, one camera
        seen += names
    assert sorted(seen) == test


def test_vehicleid_lists(smoke_root: Path) -> None:
    vid = smoke_root / "VehicleID"
    split = vid / "train_test_split"
    train = [line.split() for line in _lines(split / "train_list.txt")]
    lists = [
        [line.split() for line in _lines(split / f"test_list_{n}.txt")] for n in (800, 1600, 2400)
    ]
    n_ids = [len({v for _, v in rows}) for rows in lists]
    assert n_ids == list(SMOKE.vehicleid_test_sizes)
    assert (
        {tuple(r) for r in lists[0]} <= {tuple(r) for r in lists[1]} <= {tuple(r) for r in lists[2]}
    )
    assert not {v for _, v in train} & {v for _, v in lists[2]}
    img2vid = dict(line.split() for line in _lines(vid / "attribute" / "img2vid.txt"))
    assert img2vid == {n: v for n, v in train + lists[2]}
    assert set(img2vid) == {p.stem for p in (vid / "image").iterdir()}


def test_yolo_labels_visible_parts_only(smoke_root: Path) -> None:
    parts = smoke_root / "parts"
    df = S.load_synthveh_parts(parts)
    for label in sorted((parts / "labels").rglob("*.txt")):
        rel = str(label.relative_to(parts)).replace("labels/", "images/", 1)[:-4] + ".jpg"
        rows = df[(df.image == rel) & (df.part != "vehicle") & (df.visible == 1)]
        lines = [line.split() for line in _lines(label)]
        assert len(lines) == len(rows)
        assert Counter(int(t[0]) for t in lines) == Counter(PARTS.index(p) for p in rows.part)
        values = np.array([[float(x) for x in t[1:]] for t in lines]).ravel()
        assert ((values >= 0) & (values <= 1)).all()


def _pair_diff(share: float, strength: float = 1.6, n: int = 8) -> tuple[float, float]:
    """Mean |difference| inside / outside the part boxes of two same-group identities
    rendered with one camera and one scene."""
    inside, outside = [], []
    for i in range(n):
        rng = np.random.default_rng([11, i])
        model, (a, b) = sample_model(rng, 0), sample_group_cues(rng, 2)
        cam = dataclasses.replace(sample_camera(rng, 1, 96), occluder=0)
        imgs = []
        for cues in (a, b):
            scene = sample_scene(cam, (0, 1), np.random.default_rng([12, i]))
            img, boxes, _ = render_image(
                model, COLOURS[1][2], cues, ("front", "rear")[i % 2], scene, strength, share
            )
            imgs.append(np.asarray(img, dtype=np.float32))
        diff = np.abs(imgs[0] - imgs[1]).sum(axis=-1)
        mask = np.zeros(diff.shape, dtype=bool)
        for key, (x1, y1, x2, y2) in boxes.items():
            if key != "vehicle":
                mask[max(int(y1) - 2, 0) : int(y2) + 3, max(int(x1) - 2, 0) : int(x2) + 3] = True
        inside.append(diff[mask].mean())
        outside.append(diff[~mask].mean())
    return float(np.mean(inside)), float(np.mean(outside))


def test_identity_cues_inside_parts_unless_moved_out() -> None:
    inside0, outside0 = _pair_diff(0.0)
    inside1, outside1 = _pair_diff(1.0)
    assert outside0 < 0.02 * inside0  # near-duplicates differ (almost) only inside parts
    assert outside1 > 20 * max(outside0, 0.05) and outside1 > 1.0
    assert inside1 < 0.5 * inside0
    faint, _ = _pair_diff(0.0, strength=0.6)
    assert faint < 0.5 * inside0  # cue_strength scales the in-part cues


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_size", -8),
        ("outside_cue_share", 1.5),
        ("veri_cameras", 1),
        ("cue_strength", -1.0),
        ("vehicleid_test_sizes", (5, 3, 8)),
    ],
)
def test_bad_config_names_the_field(field: str, value, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=field):
        S.generate_synthveh(dataclasses.replace(TINY, **{field: value}), tmp_path, seed=0)


def test_ensure_reuses_and_regenerates(tmp_path: Path, monkeypatch) -> None:
    profile = dataclasses.replace(get_profile("smoke"), name="tiny", synth=TINY)
    monkeypatch.chdir(tmp_path)
    root = S.ensure_synthveh(profile, seed=0, workers=1)
    assert root == tmp_path / "data" / "synthveh" / "tiny-seed0"
    assert [p.name for p in root.parent.iterdir()] == ["tiny-seed0"]  # no temp dir left
    calls = []
    real = S.generate_synthveh
    monkeypatch.setattr(S, "generate_synthveh", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert S.ensure_synthveh(profile, seed=0) == root and calls == []
    (root / "VeRi-776" / "gt_index.txt").unlink()  # incomplete -> regenerate
    S.ensure_synthveh(profile, seed=0, workers=1)
    assert calls == [1] and (root / "VeRi-776" / "gt_index.txt").is_file()
    other = dataclasses.replace(profile, synth=dataclasses.replace(TINY, cue_strength=1.0))
    S.ensure_synthveh(other, seed=0, workers=1)  # config changed -> regenerate
    assert calls == [1, 1]
    assert '"cue_strength": 1.0' in (root / "synthveh.json").read_text()
    assert _lines(root / "parts" / "data.yaml")[0] == "train: images/train"  # no `path`
