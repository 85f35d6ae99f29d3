"""Writers of the official on-disk layouts used by the SynthVeh export.

VeRi-776 (name lists, gb2312 label XML, ``gt_index.txt``, ``jk_index.txt``,
``test_track.txt``), VehicleID (``train_test_split/``, ``attribute/``), an
ultralytics YOLO part data set (labels, ``data.yaml``) and the SynthVeh tables
``synthveh_parts.csv`` and ``synthveh_identities.csv``. Every writer is
deterministic: sorted lines, ``\\n`` line ends, fixed float formatting.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

PARTS_COLUMNS = (
    "image",
    "part",
    "side",
    "x1",
    "y1",
    "x2",
    "y2",
    "visible",
    "img_w",
    "img_h",
    "view",
)
IDENTITY_COLUMNS = (
    "pid",
    "make",
    "model",
    "colour",
    "colour_name",
    "type_id",
    "group",
    "split",
    "make_id",
    "model_id",
    "type_name",
)
YOLO_CLASSES = {"window": 0, "light": 1, "brand": 2}


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write one item per line with ``\\n`` line ends (a final newline included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(f"{line}\n")


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """CSV with a header row and ``\\n`` line ends."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


def write_veri_xml(path: Path, root_tag: str, items: Sequence[dict]) -> None:
    """``train_label.xml`` / ``test_label.xml`` as in VeRi-776, encoded gb2312.

    ``items`` hold imageName, vehicleID, cameraID, colorID, typeID (strings or
    ints), written in the given order as self-closing ``<Item .../>`` elements.
    """
    lines = [
        '<?xml version="1.0" encoding="gb2312"?>',
        f'<{root_tag} Version="1.0">',
        f'<Items number="{len(items)}">',
    ]
    for it in items:
        lines.append(
            f'<Item imageName="{it["imageName"]}" vehicleID="{it["vehicleID"]}" '
            f'cameraID="{it["cameraID"]}" colorID="{it["colorID"]}" typeID="{it["typeID"]}" />'
        )
    lines += ["</Items>", f"</{root_tag}>"]
    path.write_bytes(("\n".join(lines) + "\n").encode("gb2312"))


def veri_indices(
    query: Sequence[tuple[str, int, int]], test: Sequence[tuple[str, int, int]]
) -> tuple[list[str], list[str]]:
    """Lines of ``gt_index.txt`` and ``jk_index.txt`` from (name, pid, camid) lists.

    Line i belongs to query i: the 1-based positions in ``test`` of the images
    of the same vehicle on another camera (gt) and on the same camera (junk,
    the query itself included).
    """
    by_pid: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pos, (_, pid, cam) in enumerate(test, start=1):
        by_pid[pid].append((pos, cam))
    gt, jk = [], []
    for _, pid, cam in query:
        gt.append(" ".join(str(p) for p, c in by_pid[pid] if c != cam))
        jk.append(" ".join(str(p) for p, c in by_pid[pid] if c == cam))
    return gt, jk


def veri_tracks(test: Sequence[tuple[str, int, int]]) -> list[str]:
    """Lines of ``test_track.txt``: key (the track's first image name), then all its names."""
    tracks: dict[tuple[int, int], list[str]] = defaultdict(list)
    for name, pid, cam in test:
        tracks[(pid, cam)].append(name)
    lines = []
    for names in tracks.values():
        names = sorted(names)
        lines.append(" ".join([names[0], *names]))
    return sorted(lines)


def yolo_lines(rows: Sequence[Sequence]) -> list[str]:
    """YOLO label lines ``cls xc yc w h`` (normalised, 6 decimals) of the visible parts.

    ``rows`` are synthveh_parts rows of one image (see ``PARTS_COLUMNS``); the
    vehicle box is not a YOLO class.
    """
    out = []
    for _, part, _, x1, y1, x2, y2, vis, w, h, _ in rows:
        if part not in YOLO_CLASSES or not int(vis):
            continue
        x1, y1, x2, y2, w, h = (float(v) for v in (x1, y1, x2, y2, w, h))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        out.append(
            f"{YOLO_CLASSES[part]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
            f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
        )
    return out


def data_yaml_spec() -> dict:
    """The content of the part data set's ``data.yaml``. It has no ``path`` entry: the
    ``train`` and ``val`` folders are relative to the yaml's own folder (for prreid's
    readers and for ultralytics alike), so a copied or moved folder names itself."""
    return {
        "train": "images/train",
        "val": "images/val",
        "names": {YOLO_CLASSES[name]: name for name in YOLO_CLASSES},
    }


def write_data_yaml(parts_root: Path) -> None:
    """Write ``parts_root/data.yaml`` (:func:`data_yaml_spec`) with a YAML library."""
    text = yaml.safe_dump(data_yaml_spec(), sort_keys=False, allow_unicode=True)
    parts_root.mkdir(parents=True, exist_ok=True)
    (parts_root / "data.yaml").write_text(text, encoding="utf-8")


def data_yaml_is_current(parts_root: Path) -> bool:
    """Whether ``parts_root/data.yaml`` reads as what :func:`write_data_yaml` writes (an
    older one naming an absolute ``path``, a damaged or missing one: no)."""
    try:
        return yaml.safe_load((parts_root / "data.yaml").read_text(encoding="utf-8")) == (
            data_yaml_spec()
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
