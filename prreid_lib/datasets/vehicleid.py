"""Loader of the official VehicleID layout (Liu et al., CVPR 2016; folder ``VehicleID_V1.0``).

The folder holds ``image/NNNNNNN.jpg``; ``train_test_split/train_list.txt``
and ``test_list_<size>.txt`` for test sizes 800, 1600, 2400 (the paper's small,
medium and large sets) and 3200, 6000, 13164, each line ``NNNNNNN VID`` (image
name without ``.jpg``, vehicle id); and ``attribute/model_attr.txt`` /
``attribute/color_attr.txt`` (``VID MODELID`` / ``VID COLORID``, for a subset of
the vehicles only). The test protocol draws, per trial, one random image of
every vehicle into the gallery and keeps the others as queries
(:func:`protocol_splits`); ``VehicleID.splits`` gives those query/gallery
frames, and ``query`` / ``gallery`` are the first draw, as fast-reid and
torchreid expose the data set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib.datasets._parsing import (
    find_dataset_root,
    image_paths,
    parse_int,
    read_lines,
    refuse_repeats,
    refuse_shared,
    require_entries,
    require_file,
    require_images,
    split_fields,
)
from prreid_lib.errors import DatasetFormatError

VEHICLEID_SUBDIRS = ("VehicleID_V1.0", "VehicleID", "vehicleid", "VehicleID_V1")
STANDARD_TEST_SIZES = (800, 1600, 2400, 3200, 6000, 13164)
"""Test list sizes of the real data set; the paper reports 800, 1600 and 2400."""
_FIX_ROOT = "pass the folder that holds image/ and train_test_split/ (VehicleID_V1.0)"
_FIX_ARCHIVE = "re-extract {} from the official VehicleID archive"
_ATTRIBUTES = {"model_id": "model_attr.txt", "colour_id": "color_attr.txt"}
_TEST_LIST_RE = re.compile(r"^test_list_(\d+)\.txt$")


@dataclass
class VehicleID:
    """VehicleID as DataFrames: one row per image, rows in the order of the list files.

    ``train`` and ``test`` have columns ``path`` (absolute), ``name``
    (``NNNNNNN.jpg``), ``pid`` (the data set's own vehicle id), ``model_id`` and
    ``colour_id`` (nullable integers, <NA> for vehicles without attributes).
    ``attribute_conflicts`` lists vehicles whose attribute files give two
    different values (the first one is used); it is empty for a clean copy.
    ``query`` and ``gallery`` are the first trial of ``splits`` (seed 0).
    """

    root: Path
    train: pd.DataFrame
    test: pd.DataFrame
    test_size: int
    attribute_conflicts: pd.DataFrame = field(default_factory=pd.DataFrame)

    def splits(self, n_trials: int = 10, seed: int = 0) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
        """``(query, gallery)`` frames of each trial of the protocol (:func:`protocol_splits`)."""
        return [
            (self.test.iloc[q].reset_index(drop=True), self.test.iloc[g].reset_index(drop=True))
            for q, g in protocol_splits(self.test["pid"].to_numpy(), n_trials, seed)
        ]

    @cached_property
    def _first_split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.splits(1)[0]

    @property
    def query(self) -> pd.DataFrame:
        """Queries of the first trial (seed 0): every test image but one per vehicle."""
        return self._first_split[0]

    @property
    def gallery(self) -> pd.DataFrame:
        """Gallery of the first trial (seed 0): one random test image per vehicle."""
        return self._first_split[1]


def protocol_splits(
    pids: np.ndarray, n_trials: int = 10, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row indices ``(query, gallery)`` of each trial of the VehicleID protocol.

    In each trial one random image of every identity forms the gallery and all
    other images are queries (Liu et al. 2016; paper Sec. 4.3). The trials
    draw from one ``np.random.default_rng(seed)``, so a seed fixes every split.
    """
    if int(n_trials) < 1:
        raise ValueError(f"n_trials: expected a positive integer, got {n_trials}")
    _, inv = np.unique(np.asarray(pids), return_inverse=True)
    by_id = np.argsort(inv, kind="stable")
    count = np.bincount(inv)
    start = np.cumsum(count) - count
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_trials)):
        gallery = by_id[start + rng.integers(0, count)]  # one image of every id
        is_query = np.ones(len(inv), dtype=bool)
        is_query[gallery] = False
        out.append((np.flatnonzero(is_query), gallery))
    return out


def available_test_sizes(root: str | Path) -> list[int]:
    """Sizes ``n`` of the ``train_test_split/test_list_<n>.txt`` files present, ascending."""
    split_dir = Path(root) / "train_test_split"
    if not split_dir.is_dir():
        return []
    sizes = [_TEST_LIST_RE.match(p.name) for p in split_dir.iterdir()]
    return sorted(int(m.group(1)) for m in sizes if m)


def read_vehicleid_list(path: str | Path) -> pd.DataFrame:
    """Parse a ``train_list.txt`` / ``test_list_<n>.txt`` into columns ``name``, ``pid``.

    Each non-blank line must be two fields, an image name (``.jpg`` optional)
    and an integer vehicle id; anything else raises
    :class:`DatasetFormatError` with the line number.
    """
    return _read_list(Path(path))[0]


def _read_list(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """:func:`read_vehicleid_list` and the file's line number of each row."""
    fix = _FIX_ARCHIVE.format(path.name)
    names, pids, lines = [], [], []
    for lineno, text in read_lines(path, "image/vehicle-id pairs"):
        image, vid = split_fields(path, lineno, text, 2, "image name, vehicle id", fix)
        names.append(image if image.lower().endswith(".jpg") else f"{image}.jpg")
        pids.append(parse_int(vid, path, lineno, "vehicle id", fix))
        lines.append(lineno)
    return pd.DataFrame({"name": names, "pid": pd.Series(pids, dtype="int64")}), lines


def check_split_lists(
    train_path: Path,
    train: pd.DataFrame,
    train_lines: list[int],
    test_path: Path,
    test: pd.DataFrame,
    test_lines: list[int],
) -> None:
    """Refuse lists that void the VehicleID protocol, naming the file and lines at fault.

    Each list must have entries and list every image once (a repeated test
    image would be drawn as its own gallery match); the test list may share
    no image and no vehicle with the training list (a model is tested on
    vehicles it never saw).
    """
    fix_empty = "restore the list from the official VehicleID archive (or regenerate SynthVeh)"
    fix_repeat = (
        "delete the repeated lines (or restore the list from the official VehicleID archive)"
    )
    entries = {}
    for path, frame, lines in ((train_path, train, train_lines), (test_path, test, test_lines)):
        require_entries(path, len(frame), "'image vehicle-id' line", fix_empty)
        names = list(zip(lines, frame["name"], strict=True))
        refuse_repeats(path, names, "image", fix_repeat)
        entries[path] = (names, list(zip(lines, frame["pid"].tolist(), strict=True)))
    fix_leak = (
        f"remove the training images and vehicles from {test_path.name}, or restore both "
        "lists from the official VehicleID archive; test vehicles must be unseen in training"
    )
    for kind, label, index in (("images", "image", 0), ("vehicles", "vehicle", 1)):
        refuse_shared(
            (train_path, entries[train_path][index]),
            (test_path, entries[test_path][index]),
            f"test {kind} that are not training {kind}",
            label,
            fix_leak,
        )


def read_vehicleid_attribute(path: str | Path) -> tuple[dict[int, int], list[dict]]:
    """Parse ``model_attr.txt`` / ``color_attr.txt`` (``VID VALUE`` lines) into ``{vid: value}``.

    Returns the mapping (first value wins) and a list of conflicts, one dict
    (pid, file, line, kept, other) per later line that gives a vehicle a
    different value.
    """
    path = Path(path)
    fix = _FIX_ARCHIVE.format(path.name)
    values: dict[int, tuple[int, int]] = {}
    conflicts: list[dict] = []
    for lineno, text in read_lines(path, "vehicle-id/attribute pairs"):
        vid_s, value_s = split_fields(path, lineno, text, 2, "vehicle id, attribute id", fix)
        vid = parse_int(vid_s, path, lineno, "vehicle id", fix)
        value = parse_int(value_s, path, lineno, "attribute id", fix)
        if vid in values and values[vid][0] != value:
            conflicts.append(
                {
                    "pid": vid,
                    "file": path.name,
                    "line": lineno,
                    "kept": values[vid][0],
                    "other": value,
                }
            )
        values.setdefault(vid, (value, lineno))
    return {vid: v for vid, (v, _) in values.items()}, conflicts


def _with_paths_and_attributes(
    frame: pd.DataFrame, base: Path, attributes: dict[str, dict[int, int]]
) -> pd.DataFrame:
    """Add the absolute ``path`` and the nullable attribute columns to a list's frame."""
    frame.insert(0, "path", image_paths(base / "image", frame["name"]))
    for column in _ATTRIBUTES:
        frame[column] = frame["pid"].map(attributes[column]).astype("Int64")
    return frame


def load_vehicleid(root: str | Path, test_size: int = 800, check_images: bool = True) -> VehicleID:
    """Load VehicleID from its official on-disk layout into a :class:`VehicleID`.

    ``root`` is the folder holding ``image/`` and ``train_test_split/`` (real
    name ``VehicleID_V1.0``) or its parent. ``test_size`` picks
    ``test_list_<test_size>.txt`` (800/1600/2400 in the paper; 3200, 6000,
    13164 in the real set; SynthVeh keeps the names 800/1600/2400 for its
    scaled lists). Missing attribute files leave <NA> attributes;
    ``check_images`` verifies that every listed image exists. Any format
    problem raises :class:`DatasetFormatError` naming the file, line and fix,
    and so do lists that void the protocol (``check_split_lists``).
    """
    base = find_dataset_root(root, "train_test_split", VEHICLEID_SUBDIRS, "VehicleID", _FIX_ROOT)
    split_dir = base / "train_test_split"
    train_path = require_file(
        split_dir / "train_list.txt",
        "the training list train_list.txt",
        _FIX_ARCHIVE.format("train_test_split/train_list.txt"),
    )
    test_path = split_dir / f"test_list_{test_size}.txt"
    if not test_path.is_file():
        sizes = available_test_sizes(base)
        raise DatasetFormatError(
            test_path,
            f"a test list for test_size={test_size}",
            f"lists for sizes {sizes}" if sizes else "no test_list_<n>.txt files",
            f"pass test_size as one of {sizes or list(STANDARD_TEST_SIZES)}",
        )
    attributes: dict[str, dict[int, int]] = {}
    conflicts: list[dict] = []
    for column, file_name in _ATTRIBUTES.items():
        path = base / "attribute" / file_name
        attributes[column], found = read_vehicleid_attribute(path) if path.is_file() else ({}, [])
        conflicts += found
    train, train_lines = _read_list(train_path)
    test, test_lines = _read_list(test_path)
    check_split_lists(train_path, train, train_lines, test_path, test, test_lines)
    train = _with_paths_and_attributes(train, base, attributes)
    test = _with_paths_and_attributes(test, base, attributes)
    if check_images:
        names = list(dict.fromkeys([*train["name"], *test["name"]]))
        require_images(base / "image", names, "VehicleID")
    return VehicleID(
        root=base,
        train=train,
        test=test,
        test_size=int(test_size),
        attribute_conflicts=pd.DataFrame(
            conflicts, columns=["pid", "file", "line", "kept", "other"]
        ),
    )
