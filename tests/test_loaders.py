"""Loaders of the official VeRi-776 and VehicleID formats, on small hand-written trees.

The trees carry the quirks of the real files (CRLF, trailing spaces, blank and
empty last lines, gb2312 XML with Chinese text, attributes in any order); the
expected DataFrames are written out by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prreid_lib.config import get_profile
from prreid_lib.datasets import (
    DatasetFormatError,
    load_vehicleid,
    load_veri776,
    read_veri_index,
)

# --------------------------------------------------------------------------- VeRi-776

TRAIN = [  # name, pid, camid, frame, colour, type
    ("0001_c001_00016450_0.jpg", 1, 1, 16450, 1, 4),
    ("0001_c002_00016460_1.jpg", 1, 2, 16460, 1, 4),
    ("0003_c001_00020000_0.jpg", 3, 1, 20000, 10, 2),
]
GALLERY = [
    ("0002_c002_00030600_0.jpg", 2, 2, 30600, 5, 1),  # 0
    ("0002_c002_00030605_1.jpg", 2, 2, 30605, 5, 1),  # 1
    ("0002_c003_00031000_0.jpg", 2, 3, 31000, 5, 1),  # 2
    ("0005_c003_00040000_0.jpg", 5, 3, 40000, 7, 8),  # 3
    ("0005_c004_00041000_0.jpg", 5, 4, 41000, 7, 8),  # 4
]
QUERY = [GALLERY[0], GALLERY[4]]  # query images are also test images, as in the real set
# By the rule: query 0 (pid 2, c002): gt = gallery 2, junk = gallery 0, 1;
#              query 1 (pid 5, c004): gt = gallery 3, junk = gallery 4.  (1-based below)
GT_LINES = ["3", "4"]
JK_LINES = ["1 2", "5"]
TRACK_LINES = [  # key then names; a key that is a name counts once; trailing spaces
    "0002_c002_00030600_0.jpg 0002_c002_00030600_0.jpg 0002_c002_00030605_1.jpg ",
    "0002_c003_t00031000 0002_c003_00031000_0.jpg",
    "0005_c003_00040000_0.jpg",
    "0005_c004_00041000_0.jpg 0005_c004_00041000_0.jpg 0005_c004_00041000_0.jpg",
]
EXPECTED_TRACKS = [[0, 1], [2], [3], [4]]


def write_list(path: Path, lines: list[str], crlf: bool = True) -> None:
    """A list file with the real quirks: trailing spaces, a blank line, CRLF, empty last line."""
    quirky = [line + "  " for line in lines]
    quirky.insert(min(1, len(quirky)), "")
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join(quirky) + end + end).encode("ascii"))


def write_label_xml(path: Path, root_tag: str, rows, with_attributes: bool = True) -> None:
    """gb2312 XML as in VeRi-776, with a Chinese comment and attribute and mixed orders."""
    lines = ['<?xml version="1.0" encoding="gb2312"?>', "<!-- 车辆标注 (vehicle labels) -->"]
    lines += [f'<{root_tag} Version="1.0">', f'<Items number="{len(rows)}">']
    for i, (name, pid, cam, _frame, colour, typ) in enumerate(rows):
        extra = f' colorID="{colour}" typeID="{typ}"' if with_attributes else ""
        if i % 2:
            lines.append(
                f'<Item cameraID="c{cam:03d}"{extra} vehicleID="{pid:04d}" '
                f'imageName="{name}" note="红色轿车" />'
            )
        else:
            lines.append(
                f'<Item imageName="{name}" vehicleID="{pid:04d}" cameraID="c{cam:03d}"{extra} />'
            )
    lines += ["</Items>", f"</{root_tag}>"]
    path.write_bytes("\r\n".join(lines).encode("gb2312"))


def make_veri(root: Path, with_attributes: bool = True) -> Path:
    """A hand-written VeRi-776 tree under ``root`` (returned)."""
    root.mkdir(parents=True, exist_ok=True)
    for folder, rows in (("image_train", TRAIN), ("image_query", QUERY), ("image_test", GALLERY)):
        (root / folder).mkdir()
        for row in rows:
            (root / folder / row[0]).write_bytes(b"\xff\xd8")
    write_list(root / "name_train.txt", [r[0] for r in TRAIN])
    write_list(root / "name_query.txt", [r[0] for r in QUERY], crlf=False)
    write_list(root / "name_test.txt", [r[0] for r in GALLERY])
    write_label_xml(root / "train_label.xml", "TrainingImages", TRAIN, with_attributes)
    write_label_xml(root / "test_label.xml", "TestImages", GALLERY, with_attributes)
    (root / "gt_index.txt").write_text("\n".join(GT_LINES) + "\n")
    (root / "jk_index.txt").write_bytes(("\r\n".join(f"{x} " for x in JK_LINES)).encode())
    (root / "test_track.txt").write_text("\n".join(TRACK_LINES) + "\n")
    return root


def expected_frame(root: Path, folder: str, rows) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "path": [str(root.resolve() / folder / r[0]) for r in rows],
            "name": [r[0] for r in rows],
            "pid": [r[1] for r in rows],
            "camid": [r[2] for r in rows],
            "frame": [r[3] for r in rows],
            "colour_id": pd.array([r[4] for r in rows], dtype="Int64"),
            "type_id": pd.array([r[5] for r in rows], dtype="Int64"),
        }
    )
    return frame.astype({"pid": "int64", "camid": "int64", "frame": "int64"})


def raises_naming(path: Path, *fragments: str):
    """Context manager: DatasetFormatError whose message names ``path`` and ``fragments``."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(DatasetFormatError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            assert str(path) in message, message
            for fragment in fragments:
                assert fragment in message, (fragment, message)
            assert "Fix:" in message
            return handled

    return _Check()


@pytest.fixture
def veri(tmp_path: Path) -> Path:
    return make_veri(tmp_path / "VeRi")


def test_veri_loads_hand_written_tree(veri: Path) -> None:
    raw = (veri / "test_label.xml").read_bytes()
    with pytest.raises(UnicodeDecodeError):  # the test really needs the gb2312 decode
        raw.decode("utf-8")
    data = load_veri776(veri)
    assert data.root == veri.resolve()
    pd.testing.assert_frame_equal(data.train, expected_frame(veri, "image_train", TRAIN))
    pd.testing.assert_frame_equal(data.query, expected_frame(veri, "image_query", QUERY))
    pd.testing.assert_frame_equal(data.gallery, expected_frame(veri, "image_test", GALLERY))
    assert [t.tolist() for t in data.tracks] == EXPECTED_TRACKS
    assert all(t.dtype == np.int64 for t in data.tracks)
    assert [g.tolist() for g in data.gt_index] == [[2], [3]]
    assert [j.tolist() for j in data.junk_index] == [[0, 1], [4]]
    assert data.index_mismatches.empty
    assert list(data.index_mismatches.columns) == ["query", "name", "kind", "missing", "extra"]


def test_veri_parent_folder_and_optional_files(tmp_path: Path) -> None:
    root = make_veri(tmp_path / "VeRi-776", with_attributes=False)
    for name in ("test_track.txt", "gt_index.txt", "jk_index.txt"):
        (root / name).unlink()
    data = load_veri776(tmp_path)  # the folder above VeRi-776/
    assert data.root == root.resolve()
    assert "colour_id" not in data.train.columns and "type_id" not in data.gallery.columns
    assert data.tracks == [] and data.gt_index is None and data.junk_index is None
    assert data.index_mismatches.empty


def test_veri_index_mismatch_detected(veri: Path) -> None:
    (veri / "gt_index.txt").write_text("3\n3 5\n")  # query 1: gallery 3 missing, 3 and 5 extra
    data = load_veri776(veri)
    assert len(data.index_mismatches) == 1
    row = data.index_mismatches.iloc[0]
    assert (row["query"], row["name"], row["kind"]) == (1, QUERY[1][0], "gt")
    assert row["missing"].tolist() == [3] and row["extra"].tolist() == [2, 4]


def test_read_veri_index_zero_based_and_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "gt_index.txt"
    path.write_bytes(b"3 1 \r\n\r\n5\r\n\r\n")
    got = read_veri_index(path, n_gallery=5)
    assert [a.tolist() for a in got] == [[2, 0], [], [4]]
    path.write_bytes(b"3\n\n\n")  # the last query's list is empty; one extra blank line
    assert [a.tolist() for a in read_veri_index(path, 5, n_query=2)] == [[2], []]
    assert [a.tolist() for a in read_veri_index(path, 5)] == [[2]]
    with raises_naming(path, "one line per query", "3 lines"):
        read_veri_index(path, 5, n_query=4)
    path.write_text("1 2\n6\n")
    with raises_naming(path, "line 2", "1..5"):
        read_veri_index(path, n_gallery=5)
    path.write_text("1 x\n")
    with raises_naming(path, "line 1", "'x'"):
        read_veri_index(path, n_gallery=5)


def test_veri_missing_root(tmp_path: Path) -> None:
    with raises_naming(tmp_path / "nowhere", "does not exist"):
        load_veri776(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with raises_naming(tmp_path / "empty", "name_train.txt", "empty folder"):
        load_veri776(tmp_path / "empty")


def test_veri_missing_list_and_xml(veri: Path) -> None:
    (veri / "name_query.txt").unlink()
    with raises_naming(veri / "name_query.txt", "no such file"):
        load_veri776(veri)
    make_veri(veri.parent / "v2")
    (veri.parent / "v2" / "test_label.xml").unlink()
    with raises_naming(veri.parent / "v2" / "test_label.xml", "no such file"):
        load_veri776(veri.parent / "v2")


def test_veri_malformed_name_line(veri: Path) -> None:
    path = veri / "name_test.txt"
    path.write_text(f"{GALLERY[0][0]}\n0002_c002.jpg extra\n")
    with raises_naming(path.resolve(), "line 2", "0002_c002.jpg extra"):
        load_veri776(veri)


def test_veri_duplicate_name(veri: Path) -> None:
    path = veri / "name_train.txt"
    path.write_text(f"{TRAIN[0][0]}\n{TRAIN[0][0]}\n")
    with raises_naming(path.resolve(), "line 2", "first on line 1"):
        load_veri776(veri)


def test_veri_xml_that_does_not_parse(veri: Path) -> None:
    path = veri / "train_label.xml"
    text = path.read_bytes().decode("gb2312").replace("</Items>", "</Itemz>")
    path.write_bytes(text.encode("gb2312"))
    with raises_naming(path.resolve(), f"line {len(TRAIN) + 5}", "mismatched tag"):
        load_veri776(veri)


def test_veri_xml_encoding_errors(veri: Path) -> None:
    path = veri / "test_label.xml"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'encoding="gb2312"', b'encoding="utf-8"'))
    with raises_naming(path.resolve(), "line 2", "declared encoding utf-8"):
        load_veri776(veri)  # the Chinese comment on line 2 is not UTF-8
    path.write_bytes(raw.replace(b'encoding="gb2312"', b'encoding="klingon"'))
    with raises_naming(path.resolve(), "line 1", "klingon"):
        load_veri776(veri)


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('vehicleID="0001" ', "", "without vehicleID"),
        ('vehicleID="0001"', 'vehicleID="one"', "'one'"),
        ('cameraID="c001"', 'cameraID="left"', "'left'"),
        ('colorID="1"', 'colorID="red"', "colorID"),
    ],
)
def test_veri_bad_xml_item(veri: Path, old: str, new: str, fragment: str) -> None:
    path = veri / "train_label.xml"
    text = path.read_bytes().decode("gb2312")
    assert old in text
    path.write_bytes(text.replace(old, new, 1).encode("gb2312"))
    with raises_naming(path.resolve(), "line 5", fragment):  # the first <Item> is on line 5
        load_veri776(veri)


def test_veri_name_without_xml_entry(veri: Path) -> None:
    extra = "0009_c009_00090000_0.jpg"
    with open(veri / "name_test.txt", "a") as f:
        f.write(extra + "\n")
    (veri / "image_test" / extra).write_bytes(b"")
    with raises_naming((veri / "test_label.xml").resolve(), extra, "name_test.txt", "line"):
        load_veri776(veri)


def test_veri_name_and_xml_disagree(veri: Path) -> None:
    path = veri / "test_label.xml"
    text = path.read_bytes().decode("gb2312")
    path.write_bytes(text.replace('vehicleID="0005"', 'vehicleID="0006"', 1).encode("gb2312"))
    with raises_naming(path.resolve(), "vehicleID 5", "vehicleID 6"):
        load_veri776(veri)


def test_veri_missing_images(veri: Path) -> None:
    for row in GALLERY[1:4]:
        (veri / "image_test" / row[0]).unlink()
    first = veri.resolve() / "image_test" / GALLERY[1][0]
    with raises_naming(veri.resolve() / "image_test", "3 missing", str(first)):
        load_veri776(veri)
    assert len(load_veri776(veri, check_images=False).gallery) == len(GALLERY)


def test_veri_bad_index_and_track_files(veri: Path) -> None:
    (veri / "jk_index.txt").write_text("1 2\n")  # one line for two queries
    with raises_naming((veri / "jk_index.txt").resolve(), "one line per query", "1 lines"):
        load_veri776(veri)
    (veri / "jk_index.txt").write_text("\n".join(JK_LINES))
    track = veri / "test_track.txt"
    track.write_text(TRACK_LINES[0] + "\nkey 0002_c002_99999999_0.jpg\n")
    with raises_naming(track.resolve(), "line 2", "0002_c002_99999999_0.jpg"):
        load_veri776(veri)
    track.write_text("0002_c002_t1\n")
    with raises_naming(track.resolve(), "line 1", "at least one image name"):
        load_veri776(veri)


# --------------------------------------------------------------------------- VehicleID


def make_vehicleid(root: Path, attributes: bool = True) -> Path:
    """A hand-written VehicleID_V1.0 tree under ``root`` (returned)."""
    (root / "image").mkdir(parents=True)
    (root / "train_test_split").mkdir()
    for i in (1, 2, 3, 10, 11, 12, 13):
        (root / "image" / f"{i:07d}.jpg").write_bytes(b"\xff\xd8")
    split = root / "train_test_split"
    write_list(split / "train_list.txt", ["0000001 1", "0000002 1", "0000003 7"])
    write_list(split / "test_list_800.txt", ["0000010 20", "0000011 20", "0000012 21"])
    write_list(
        split / "test_list_1600.txt",
        ["0000010 20", "0000011 20", "0000012 21", "0000013 22"],
        crlf=False,
    )
    if attributes:
        (root / "attribute").mkdir()
        write_list(root / "attribute" / "model_attr.txt", ["1 5", "20 9"])
        write_list(root / "attribute" / "color_attr.txt", ["1 2", "21 3"])
        write_list(root / "attribute" / "img2vid.txt", ["0000001 1"])
    return root


@pytest.fixture
def vid(tmp_path: Path) -> Path:
    return make_vehicleid(tmp_path / "VehicleID_V1.0")


def vid_frame(root: Path, ids, pids, models, colours) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [str(root.resolve() / "image" / f"{i:07d}.jpg") for i in ids],
            "name": [f"{i:07d}.jpg" for i in ids],
            "pid": pd.Series(pids, dtype="int64"),
            "model_id": pd.array(models, dtype="Int64"),
            "colour_id": pd.array(colours, dtype="Int64"),
        }
    )


def test_vehicleid_loads_hand_written_tree(vid: Path) -> None:
    data = load_vehicleid(vid, test_size=800)
    assert data.root == vid.resolve() and data.test_size == 800
    na = pd.NA
    expected_train = vid_frame(vid, [1, 2, 3], [1, 1, 7], [5, 5, na], [2, 2, na])
    pd.testing.assert_frame_equal(data.train, expected_train)
    expected_test = vid_frame(vid, [10, 11, 12], [20, 20, 21], [9, 9, na], [na, na, 3])
    pd.testing.assert_frame_equal(data.test, expected_test)
    assert data.attribute_conflicts.empty
    large = load_vehicleid(vid.parent, test_size=1600)  # the folder above VehicleID_V1.0/
    assert large.test["pid"].tolist() == [20, 20, 21, 22] and large.root == vid.resolve()


def test_vehicleid_without_attributes_and_conflicts(tmp_path: Path) -> None:
    root = make_vehicleid(tmp_path / "VehicleID", attributes=False)
    data = load_vehicleid(root)
    assert data.train["model_id"].isna().all() and data.test["colour_id"].isna().all()
    (root / "attribute").mkdir()
    (root / "attribute" / "model_attr.txt").write_text("1 5\n1 5\n1 6\n")
    data = load_vehicleid(root)
    assert data.train["model_id"].tolist()[:2] == [5, 5]
    conflict = data.attribute_conflicts.iloc[0].to_dict()
    assert len(data.attribute_conflicts) == 1
    assert conflict == {"pid": 1, "file": "model_attr.txt", "line": 3, "kept": 5, "other": 6}


def test_vehicleid_missing_test_size_lists_sizes(vid: Path) -> None:
    path = vid.resolve() / "train_test_split" / "test_list_2400.txt"
    with raises_naming(path, "sizes [800, 1600]", "test_size=2400"):
        load_vehicleid(vid, test_size=2400)


def test_vehicleid_missing_root_and_train_list(tmp_path: Path, vid: Path) -> None:
    with raises_naming(tmp_path / "absent", "does not exist"):
        load_vehicleid(tmp_path / "absent")
    (vid / "train_test_split" / "train_list.txt").unlink()
    with raises_naming(vid.resolve() / "train_test_split" / "train_list.txt", "no such file"):
        load_vehicleid(vid)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [("0000012 21 extra", "2 whitespace-separated fields"), ("0000012 x21", "'x21'")],
)
def test_vehicleid_malformed_list_line(vid: Path, line: str, fragment: str) -> None:
    path = vid / "train_test_split" / "test_list_800.txt"
    path.write_text(f"0000010 20\n\n{line}\n")
    with raises_naming(path.resolve(), "line 3", fragment):
        load_vehicleid(vid)


def test_vehicleid_malformed_attribute_line(vid: Path) -> None:
    path = vid / "attribute" / "color_attr.txt"
    path.write_text("1 2\r\n21\r\n")
    with raises_naming(path.resolve(), "line 2", "1:"):
        load_vehicleid(vid)


def test_vehicleid_missing_images(vid: Path) -> None:
    for i in (2, 12):
        (vid / "image" / f"{i:07d}.jpg").unlink()
    first = vid.resolve() / "image" / "0000002.jpg"
    with raises_naming(vid.resolve() / "image", "2 missing", str(first)):
        load_vehicleid(vid)
    assert len(load_vehicleid(vid, check_images=False).train) == 3


def test_error_is_a_value_error_and_pickles() -> None:
    import pickle

    err = DatasetFormatError("/x/y.txt", "two fields", "three", "fix it", line=4)
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (
        str(again) == str(err) == "/x/y.txt, line 4: expected two fields; found three. Fix: fix it"
    )


# --------------------------------------------------------------------------- SynthVeh


def test_loaders_read_a_synthveh_smoke_export(smoke_data: Path) -> None:
    cfg = get_profile("smoke").synth
    out = smoke_data
    veri = load_veri776(out / "VeRi-776")
    assert veri.train["pid"].nunique() == cfg.veri_train_ids
    assert veri.gallery["pid"].nunique() == cfg.veri_test_ids
    assert set(veri.query["name"]) <= set(veri.gallery["name"])
    assert veri.index_mismatches.empty
    assert veri.gt_index is not None and len(veri.gt_index) == len(veri.query)
    rows = np.sort(np.concatenate(veri.tracks))
    assert rows.tolist() == list(range(len(veri.gallery)))  # every gallery image in one track
    for track in veri.tracks:
        assert veri.gallery.iloc[track][["pid", "camid"]].drop_duplicates().shape[0] == 1
    assert {"colour_id", "type_id"} <= set(veri.train.columns)
    sizes = []
    for size in (800, 1600, 2400):
        vid = load_vehicleid(out / "VehicleID", test_size=size)
        sizes.append(vid.test["pid"].nunique())
        assert not set(vid.train["pid"]) & set(vid.test["pid"])
    assert sizes == list(cfg.vehicleid_test_sizes)
