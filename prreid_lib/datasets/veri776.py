"""Loader of the official VeRi-776 layout (Liu et al., ICME 2016 / ECCV 2016).

The folder holds ``image_train/``, ``image_query/``, ``image_test/``;
``name_train.txt``, ``name_query.txt``, ``name_test.txt`` (one image name per
line, e.g. ``0002_c002_00030600_0.jpg`` = vehicle 2, camera c002, frame
00030600, index 0); ``train_label.xml`` and ``test_label.xml`` (encoded
gb2312, one ``<Item imageName=.. vehicleID=.. cameraID=.. colorID=.. typeID=../>``
per image; query images are also test images and are labelled there);
``gt_index.txt`` / ``jk_index.txt`` (line i = query i: space-separated 1-based
indices into ``name_test.txt`` of its true matches, i.e. same vehicle on another
camera, and of its junk images, same vehicle on the same camera, the query
itself included; the official MATLAB evaluation reads them with ``str2num``);
and ``test_track.txt``.

``test_track.txt``: the data set's ReadMe says only "It records all test tracks.
Each track contains about 6 images of the same vehicle captured by one camera at
a time." Code that reads it shows the line format: the first token is a track
key that starts with ``VVVV_cCCC`` (vehicle and camera), followed by the image
names of the track, space separated, each one a name of ``name_test.txt``:
ming1993li/Self-supervised-Geometric ``train.py`` (commit 7b1e850, image-to-track
test) takes pid and camera from the key and looks up every later token in
``name_test.txt``; another public VeRi track loader drops the key and the last
token of the unstripped line (a trailing space before the line end). A later
``test_track_VeRi.txt`` has keys of the form ``VVVV_cCCC_tTTTT...``. The parser
here is tolerant: key, then names; a key that is itself a gallery image name
belongs to the track and counts once however often it appears.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np
import pandas as pd

from prreid_lib.datasets._parsing import (
    decode_xml,
    find_dataset_root,
    image_paths,
    parse_int,
    read_lines,
    refuse_repeats,
    refuse_shared,
    require_entries,
    require_file,
    require_images,
    short_list,
)
from prreid_lib.errors import DatasetFormatError

VERI_SUBDIRS = ("VeRi", "VeRi-776", "VeRi776", "veri776", "VeRi_776")
NAME_RE = re.compile(r"^(\d+)_c(\d+)_(\d+)_(\d+)\.jpg$", re.IGNORECASE)
_CAMERA_RE = re.compile(r"^[cC]?(\d+)$")
_FIX_ROOT = "pass the folder that holds name_train.txt, image_train/, train_label.xml ..."
_FIX_ARCHIVE = "re-extract {} from the official VeRi-776 archive"
_OPTIONAL_LABELS = {"colorID": "colour_id", "typeID": "type_id"}


@dataclass
class VeRi776:
    """VeRi-776 as DataFrames: one row per image, rows in the order of ``name_*.txt``.

    ``train``, ``query`` and ``gallery`` have columns ``path`` (absolute),
    ``name``, ``pid`` and ``camid`` (the data set's own ids, c002 -> 2),
    ``frame``, and ``colour_id`` / ``type_id`` when the XML has them.
    ``tracks`` holds one array of gallery row indices per line of
    ``test_track.txt`` (empty without the file); ``gt_index`` / ``junk_index``
    the 0-based gallery indices of ``gt_index.txt`` / ``jk_index.txt`` (None
    without the files); ``index_mismatches`` the queries where those files
    disagree with the pid/camera rule (empty when they agree); ``missing``
    the optional files (``test_track.txt``, ``gt_index.txt``, ``jk_index.txt``)
    the folder lacks, see :func:`missing_file_notes`.
    """

    root: Path
    train: pd.DataFrame
    query: pd.DataFrame
    gallery: pd.DataFrame
    tracks: list[np.ndarray] = field(default_factory=list)
    gt_index: list[np.ndarray] | None = None
    junk_index: list[np.ndarray] | None = None
    index_mismatches: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: tuple[str, ...] = ()


OPTIONAL_FILES: dict[str, str] = {
    "test_track.txt": "the image-to-track protocol (HIT@k) is left out",
    "gt_index.txt": "the pid/camera rule is not checked against the official true matches",
    "jk_index.txt": "the pid/camera rule is not checked against the official junk lists",
}
"""Optional VeRi-776 files and what is lost without each."""


def missing_file_notes(veri: VeRi776) -> list[str]:
    """One line per optional file ``veri`` lacks: the path, what is lost, the fix."""
    return [
        f"{veri.root / name} not found: {OPTIONAL_FILES[name]}; fix: {_FIX_ARCHIVE.format(name)}"
        for name in veri.missing
    ]


def read_veri_labels(path: str | Path) -> dict[str, dict[str, int | None]]:
    """Parse ``train_label.xml`` / ``test_label.xml`` into ``{imageName: labels}``.

    Labels are ``pid`` (vehicleID), ``camid`` (cameraID, c002 -> 2),
    ``colour_id`` / ``type_id`` (colorID / typeID, None when absent) and
    ``line`` (the Item's line in the file). The gb2312 bytes are decoded before
    parsing (expat itself reads no multi-byte encoding); attributes may come in
    any order. Errors give the line of the offending Item.
    """
    path = Path(path)
    fix = _FIX_ARCHIVE.format(path.name)
    items: list[tuple[int, dict[str, str]]] = []
    parser = expat.ParserCreate(encoding="utf-8")  # overrides the declared gb2312

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == "Item":
            items.append((parser.CurrentLineNumber, attrs))

    parser.StartElementHandler = start
    try:
        parser.Parse(decode_xml(path, fix).encode("utf-8"), True)
    except expat.ExpatError as err:
        raise DatasetFormatError(
            path,
            "well-formed XML",
            f"{expat.errors.messages[err.code]} (column {err.offset})",
            fix,
            line=err.lineno,
        ) from None
    labels: dict[str, dict[str, int | None]] = {}
    for line, attrs in items:
        missing = [k for k in ("imageName", "vehicleID", "cameraID") if k not in attrs]
        if missing:
            raise DatasetFormatError(
                path,
                "<Item> with imageName, vehicleID and cameraID attributes",
                f"an <Item> without {', '.join(missing)}",
                fix,
                line=line,
            )
        cam = _CAMERA_RE.match(attrs["cameraID"].strip())
        if cam is None:
            raise DatasetFormatError(
                path, "cameraID like 'c002'", repr(attrs["cameraID"]), fix, line=line
            )
        entry: dict[str, int | None] = {
            "pid": parse_int(attrs["vehicleID"].strip(), path, line, "vehicleID", fix),
            "camid": int(cam.group(1)),
            "line": line,
        }
        for key, column in _OPTIONAL_LABELS.items():
            value = attrs.get(key, "").strip()
            entry[column] = parse_int(value, path, line, key, fix) if value else None
        name = attrs["imageName"].strip()
        old = labels.get(name)
        if old is not None and (old["pid"], old["camid"]) != (entry["pid"], entry["camid"]):
            raise DatasetFormatError(
                path,
                f"one vehicleID/cameraID per image (first entry of {name} on line {old['line']})",
                "a conflicting second entry",
                fix,
                line=line,
            )
        labels.setdefault(name, entry)
    return labels


def _split_frame(
    root: Path,
    split: str,
    list_name: str,
    label_path: Path,
    labels: dict[str, dict[str, int | None]],
    check: bool,
) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """One split's DataFrame from its name list, its XML labels and its image folder.

    Also returns ``(line, pid)`` of every listed image. An empty list, or one
    that names an image twice, is refused with the file and lines.
    """
    list_path = require_file(
        root / list_name, f"the {split} image list {list_name}", _FIX_ARCHIVE.format(list_name)
    )
    fix = _FIX_ARCHIVE.format(list_name)
    listed = read_lines(list_path, "image names")
    require_entries(list_path, len(listed), "image name", fix)
    refuse_repeats(list_path, listed, "image", f"delete the repeated lines, or {fix}")
    rows, seen, unlabelled, pids = [], {}, [], []
    for lineno, name in listed:
        match = NAME_RE.match(name)
        if match is None:
            raise DatasetFormatError(
                list_path,
                "one image name per line like 0002_c002_00030600_0.jpg",
                repr(name),
                fix,
                line=lineno,
            )
        seen[name] = lineno
        pids.append((lineno, int(match.group(1))))
        label = labels.get(name)
        if label is None:
            unlabelled.append(f"{name} ({list_name} line {lineno})")
            continue
        pid, cam = int(match.group(1)), int(match.group(2))
        if (pid, cam) != (label["pid"], label["camid"]):
            raise DatasetFormatError(
                label_path,
                f"vehicleID {pid} and camera c{cam:03d} as in the name {name}",
                f"vehicleID {label['pid']}, camera c{label['camid']:03d}",
                _FIX_ARCHIVE.format(label_path.name),
                line=label["line"],
            )
        rows.append(
            {
                "path": name,
                "name": name,
                "pid": pid,
                "camid": cam,
                "frame": int(match.group(3)),
                **{c: label[c] for c in _OPTIONAL_LABELS.values()},
            }
        )
    if unlabelled:
        raise DatasetFormatError(
            label_path,
            f"an <Item> for every image named in {list_name}",
            f"none for {len(unlabelled)}: {short_list(unlabelled)}",
            f"use the {label_path.name} that came with {list_name} in the official archive",
        )
    if check:
        require_images(root / split, list(seen), f"VeRi-776 {split}")
    frame = pd.DataFrame(
        rows, columns=["path", "name", "pid", "camid", "frame", *_OPTIONAL_LABELS.values()]
    )
    frame["path"] = image_paths(root / split, frame["name"])
    frame = frame.astype({"pid": "int64", "camid": "int64", "frame": "int64"})
    for column in _OPTIONAL_LABELS.values():
        if frame[column].isna().all():
            frame = frame.drop(columns=column)
        else:
            frame[column] = frame[column].astype("Int64")
    return frame, pids


def _refuse_training_vehicles(base: Path, pids: dict[str, list[tuple[int, int]]]) -> None:
    """Refuse query or test images of vehicles that are also training vehicles.

    The VeRi-776 protocol tests on vehicles unseen in training; a shared
    vehicle scores what the model memorised. A query image that is also a
    gallery image is the protocol itself (its gallery copy is junk: same
    vehicle, same camera) and stays allowed.
    """
    train = (base / "name_train.txt", pids["name_train.txt"])
    for list_name in ("name_query.txt", "name_test.txt"):
        refuse_shared(
            train,
            (base / list_name, pids[list_name]),
            "test vehicles that are not training vehicles",
            "vehicle",
            f"remove the training vehicles' images from {list_name}, or "
            + _FIX_ARCHIVE.format(f"{list_name} and name_train.txt"),
        )


def read_veri_index(
    path: str | Path, n_gallery: int, n_query: int | None = None
) -> list[np.ndarray]:
    """Parse ``gt_index.txt`` or ``jk_index.txt`` into one 0-based int64 array per query.

    Line i holds the space-separated 1-based ``name_test.txt`` indices for query
    i (the official MATLAB code reads them with ``str2num``); a blank line is an
    empty list. Blank lines at the end are dropped, but with ``n_query`` given
    only down to ``n_query`` lines (a last query may have an empty list), and
    any other line count raises. Indices outside 1..``n_gallery`` raise
    :class:`DatasetFormatError` with the line number.
    """
    path = Path(path)
    fix = _FIX_ARCHIVE.format(path.name)
    require_file(path, "a VeRi-776 index file", fix)
    lines = read_lines(path, "1-based gallery indices", keep_blank=True)
    while lines and not lines[-1][1] and (n_query is None or len(lines) > n_query):
        lines.pop()
    if n_query is not None and len(lines) != n_query:
        raise DatasetFormatError(
            path, f"one line per query of name_query.txt ({n_query})", f"{len(lines)} lines", fix
        )
    out: list[np.ndarray] = []
    for lineno, text in lines:
        values = [parse_int(t, path, lineno, "gallery index", fix) for t in text.split()]
        bad = [v for v in values if not 1 <= v <= n_gallery]
        if bad:
            raise DatasetFormatError(
                path,
                f"1-based indices into name_test.txt (1..{n_gallery})",
                short_list([str(b) for b in bad]),
                fix,
                line=lineno,
            )
        out.append(np.asarray(values, dtype=np.int64) - 1)
    return out


def read_veri_tracks(path: str | Path, gallery_names: list[str]) -> list[np.ndarray]:
    """Parse ``test_track.txt`` into one array of gallery row indices per track (line).

    Each line is a track key followed by image names of ``gallery_names``
    (``name_test.txt``), whitespace separated. A key that is itself a gallery
    name is a member of the track; every name counts once. A name that is not
    in the gallery raises :class:`DatasetFormatError` with the line number.
    """
    path = Path(path)
    fix = _FIX_ARCHIVE.format(path.name)
    index = {name: i for i, name in enumerate(gallery_names)}
    tracks: list[np.ndarray] = []
    for lineno, text in read_lines(path, "track lines"):
        key, *names = text.split()
        members = ([key] if key in index else []) + names
        unknown = [n for n in names if n not in index]
        if unknown:
            raise DatasetFormatError(
                path,
                "a track key followed by image names of name_test.txt",
                f"{len(unknown)} names not in name_test.txt: {short_list(unknown)}",
                fix,
                line=lineno,
            )
        if not members:
            raise DatasetFormatError(
                path,
                "a track key followed by at least one image name",
                f"only {key!r}",
                fix,
                line=lineno,
            )
        rows = list(dict.fromkeys(index[n] for n in members))
        tracks.append(np.asarray(rows, dtype=np.int64))
    return tracks


def rule_gt_junk(
    query: pd.DataFrame, gallery: pd.DataFrame
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per query, the sorted gallery rows of the same pid on another camera / the same camera.

    This is the VeRi-776 protocol's rule behind ``gt_index.txt`` (true matches)
    and ``jk_index.txt`` (junk, ignored when ranking; contains the query itself
    because every query image is also a test image).
    """
    by_pid: dict[int, list[int]] = defaultdict(list)
    for row, pid in enumerate(gallery["pid"].to_numpy()):
        by_pid[int(pid)].append(row)
    g_cam = gallery["camid"].to_numpy()
    gt, junk = [], []
    for pid, cam in zip(query["pid"].to_numpy(), query["camid"].to_numpy(), strict=True):
        rows = np.asarray(by_pid.get(int(pid), []), dtype=np.int64)
        same = g_cam[rows] == cam
        gt.append(rows[~same])
        junk.append(rows[same])
    return gt, junk


def same_camera_junk(query: pd.DataFrame, gallery: pd.DataFrame) -> np.ndarray:
    """``(len(query), len(gallery))`` booleans: the gallery images the VeRi-776 protocol
    ignores for each query (same vehicle, same camera; :func:`rule_gt_junk`)."""
    _, junk = rule_gt_junk(query, gallery)
    mask = np.zeros((len(query), len(gallery)), dtype=bool)
    for row, columns in enumerate(junk):
        mask[row, columns] = True
    return mask


def _index_mismatches(
    query: pd.DataFrame, files: dict[str, list[np.ndarray]], rule: dict[str, list[np.ndarray]]
) -> pd.DataFrame:
    """Rows (query, name, kind, missing, extra) where an index file disagrees with the rule."""
    rows = []
    for kind, lists in files.items():
        for q, (listed, expected) in enumerate(zip(lists, rule[kind], strict=True)):
            missing = np.setdiff1d(expected, listed)
            extra = np.setdiff1d(listed, expected)
            if missing.size or extra.size:
                rows.append(
                    {
                        "query": q,
                        "name": query["name"].iat[q],
                        "kind": kind,
                        "missing": missing,
                        "extra": extra,
                    }
                )
    return pd.DataFrame(rows, columns=["query", "name", "kind", "missing", "extra"])


def load_veri776(root: str | Path, check_images: bool = True) -> VeRi776:
    """Load VeRi-776 from its official on-disk layout into a :class:`VeRi776`.

    ``root`` is the folder holding ``name_train.txt`` (or its parent, with the
    data set in ``VeRi/`` or ``VeRi-776/``). pids and camera ids stay the data
    set's own integers (training code relabels). ``check_images`` verifies that
    every listed image exists. Any format problem raises
    :class:`DatasetFormatError` naming the file, line and fix, and so do lists
    that void the protocol: an empty list, an image listed twice in one list,
    a query or test vehicle that is also a training vehicle.
    """
    base = find_dataset_root(root, "name_train.txt", VERI_SUBDIRS, "VeRi-776", _FIX_ROOT)
    labels = {}
    for xml_name in ("train_label.xml", "test_label.xml"):
        xml_path = require_file(
            base / xml_name, f"the label file {xml_name}", _FIX_ARCHIVE.format(xml_name)
        )
        labels[xml_name] = (xml_path, read_veri_labels(xml_path))
    splits, pids = {}, {}
    for split, list_name, xml_name in (
        ("image_train", "name_train.txt", "train_label.xml"),
        ("image_query", "name_query.txt", "test_label.xml"),
        ("image_test", "name_test.txt", "test_label.xml"),
    ):
        xml_path, xml_labels = labels[xml_name]
        splits[split], pids[list_name] = _split_frame(
            base, split, list_name, xml_path, xml_labels, check_images
        )
    _refuse_training_vehicles(base, pids)
    query, gallery = splits["image_query"], splits["image_test"]

    track_path = base / "test_track.txt"
    tracks = read_veri_tracks(track_path, list(gallery["name"])) if track_path.is_file() else []

    files: dict[str, list[np.ndarray]] = {}
    for kind, file_name in (("gt", "gt_index.txt"), ("junk", "jk_index.txt")):
        path = base / file_name
        if path.is_file():
            files[kind] = read_veri_index(path, len(gallery), n_query=len(query))
    gt, junk = rule_gt_junk(query, gallery)
    mismatches = _index_mismatches(query, files, {"gt": gt, "junk": junk})
    return VeRi776(
        root=base,
        train=splits["image_train"],
        query=query,
        gallery=gallery,
        tracks=tracks,
        gt_index=files.get("gt"),
        junk_index=files.get("junk"),
        index_mismatches=mismatches,
        missing=tuple(name for name in OPTIONAL_FILES if not (base / name).is_file()),
    )
