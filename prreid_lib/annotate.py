"""Part annotations: YOLO txt and COCO JSON import/export, validation, statistics.

The paper labels window, lights and brand on 500 VehicleID images and trains
YOLO on them (Sec. 3.2). This module reads and writes such labels in the two
common formats, converts between them and validates them before training.
In memory a label set is an *annotation table*: one row per box with columns
``path`` (absolute image path), ``part``, ``x1, y1, x2, y2`` (pixels), ``img_w``,
``img_h`` -- the same geometry columns as the part boxes table of
:mod:`prreid_lib.parts`. Every problem names the file and line and says how to
fix it; :func:`validate` raises on the first one or returns them all as a table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from prreid_lib.config import PART_NAMES
from prreid_lib.errors import DatasetFormatError
from prreid_lib.parts import image_size
from prreid_lib.paths import canonical_path, canonical_paths, yaml_data_root

__all__ = [
    "BOX_COLUMNS",
    "IMAGE_SUFFIXES",
    "PROBLEM_COLUMNS",
    "RULES",
    "coco_to_yolo",
    "image_size",
    "labels_dir_for",
    "part_statistics",
    "plot_part_statistics",
    "read_coco",
    "read_yolo",
    "validate",
    "widget_to_table",
    "write_coco",
    "write_yolo",
    "yolo_to_coco",
]

BOX_COLUMNS = ["path", "part", "x1", "y1", "x2", "y2", "img_w", "img_h"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PROBLEM_COLUMNS = ["file", "line", "rule", "found", "fix"]
RULES: dict[str, str] = {
    "malformed": "YOLO: write 'class x_center y_center width height' (five numbers); "
    "COCO: give the annotation an existing image_id and a bbox [x, y, width, height]",
    "unknown_class": "use a class id / category listed in names (0 window, 1 light, 2 brand)",
    "non_positive_size": "draw the box again: width and height must be greater than zero",
    "outside_image": "clip the box to the image (YOLO: 0 <= xc +- w/2 <= 1; COCO: inside w x h)",
    "missing_label": "write a label file for the image (an empty file if it shows no part)",
    "missing_image": "delete the label file or restore its image (same name, image suffix)",
}
"""Validation rules and how to fix a violation of each."""
_TOL = 1e-3  # normalised slack for boxes written with rounded coordinates
Rows = list[tuple]


def labels_dir_for(images_dir: Path) -> Path:
    """YOLO's labels folder of an images folder: the last ``images`` in the path -> ``labels``."""
    parts = list(images_dir.parts)
    if "images" not in parts:
        raise ValueError(
            f"cannot infer the labels folder of {images_dir}: it has no 'images' component; "
            "pass labels_dir explicitly"
        )
    k = len(parts) - 1 - parts[::-1].index("images")
    parts[k] = "labels"
    return Path(*parts)


def _images_by_stem(images_dir: Path) -> dict[str, Path]:
    if not images_dir.is_dir():
        raise FileNotFoundError(f"image folder {images_dir} does not exist; check the path")
    return {
        p.stem: canonical_path(p)
        for p in sorted(images_dir.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    }


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _problem(file: Path, line: int | None, rule: str, found: str) -> dict[str, object]:
    return {"file": str(file), "line": line, "rule": rule, "found": found, "fix": RULES[rule]}


def _geometry_rule(x1: float, y1: float, x2: float, y2: float, w: float, h: float) -> str | None:
    """The geometric rule a pixel box in a ``w x h`` image breaks, or ``None``."""
    if x2 <= x1 or y2 <= y1:
        return "non_positive_size"
    if min(x1 / w, y1 / h) < -_TOL or max(x2 / w, y2 / h) > 1 + _TOL:
        return "outside_image"
    return None


def _check_yolo_file(label: Path, image: Path, names: Sequence[str]) -> tuple[Rows, list[dict]]:
    """Parse one YOLO label file: (box rows in ``BOX_COLUMNS`` order, problem rows)."""
    w, h = image_size(image)
    boxes: Rows = []
    problems: list[dict] = []
    text, problem = _decode_text(label)
    if problem is not None:
        return boxes, [problem]
    for n, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        try:
            cls, xc, yc, bw, bh = (float(v) for v in fields)
        except ValueError:
            problems.append(_problem(label, n, "malformed", repr(raw.strip())))
            continue
        if not all(math.isfinite(v) for v in (cls, xc, yc, bw, bh)):
            found = f"{raw.strip()!r} (not a finite number)"
            problems.append(_problem(label, n, "malformed", found))
            continue
        if cls != int(cls) or not 0 <= int(cls) < len(names):
            problems.append(_problem(label, n, "unknown_class", f"class {fields[0]}"))
            continue
        x1, y1, x2, y2 = (xc - bw / 2) * w, (yc - bh / 2) * h, (xc + bw / 2) * w, (yc + bh / 2) * h
        rule = _geometry_rule(x1, y1, x2, y2, w, h)
        if rule is not None:
            found = f"xc={xc:g} yc={yc:g} w={bw:g} h={bh:g} (normalised)"
            problems.append(_problem(label, n, rule, found))
            continue
        boxes.append((str(image), names[int(cls)], x1, y1, x2, y2, w, h))
    return boxes, problems


def _decode_text(path: Path) -> tuple[str, dict | None]:
    """The UTF-8 text of ``path``, or a "malformed" problem at the first undecodable byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        found = f"bytes that are not UTF-8 text (byte {err.start}: {data[err.start : err.end]!r})"
        return "", _problem(path, line, "malformed", found)


def _yolo_pairs(data: Path) -> list[tuple[Path, Path]]:
    """(images_dir, labels_dir) pairs of a data.yaml, an images folder or a labels folder."""
    if data.suffix in {".yaml", ".yml"}:
        cfg = yaml.safe_load(data.read_text())
        if not isinstance(cfg, dict):
            raise DatasetFormatError(
                data,
                "a YOLO data.yaml mapping (train, val, names)",
                repr(cfg)[:60],
                "write it as ultralytics documents",
            )
        base = yaml_data_root(data, cfg.get("path"))  # relative: to the yaml's folder
        splits = [cfg[k] for k in ("train", "val", "test") if cfg.get(k)]
        return [(base / s, labels_dir_for(base / s)) for s in dict.fromkeys(splits)]
    if "labels" in data.parts and "images" not in data.parts:
        parts = list(data.parts)
        k = len(parts) - 1 - parts[::-1].index("labels")
        parts[k] = "images"
        return [(Path(*parts), data)]
    return [(data, labels_dir_for(data))]


def _scan_yolo(images_dir: Path, labels_dir: Path, names: Sequence[str]) -> tuple[Rows, list[dict]]:
    images = _images_by_stem(images_dir)
    labels = {p.stem: p for p in sorted(labels_dir.glob("*.txt"))} if labels_dir.is_dir() else {}
    boxes: Rows = []
    problems: list[dict] = []
    for stem, image in images.items():
        if stem not in labels:
            expected = labels_dir / f"{stem}.txt"
            problems.append(_problem(image, None, "missing_label", f"no {expected}"))
            continue
        b, p = _check_yolo_file(labels[stem], image, names)
        boxes += b
        problems += p
    for stem, label in labels.items():
        if stem not in images:
            problems.append(
                _problem(label, None, "missing_image", f"no image {stem}.* in {images_dir}")
            )
    return boxes, problems


def _raise_first(problems: list[dict]) -> None:
    if not problems:
        return
    first = problems[0]
    more = f" ({len(problems) - 1} more problems: call validate(..., raise_errors=False))"
    raise DatasetFormatError(
        first["file"],
        f"a valid part label ({first['rule']})",
        f"{first['found']}{more if len(problems) > 1 else ''}",
        str(first["fix"]),
        line=first["line"],
    )


def read_yolo(
    data: str | Path, labels_dir: str | Path | None = None, names: Sequence[str] = PART_NAMES
) -> pd.DataFrame:
    """Read YOLO labels into an annotation table (pixel boxes, ``BOX_COLUMNS``).

    ``data`` is an images folder (labels found by replacing ``images`` with
    ``labels`` in its path, or given as ``labels_dir``), a labels folder, or a
    ``data.yaml`` (all its splits). Raises :class:`DatasetFormatError` naming
    file and line on the first problem found by :func:`validate`.
    """
    pairs = [(Path(data), Path(labels_dir))] if labels_dir else _yolo_pairs(Path(data))
    rows: Rows = []
    for images_dir, lab_dir in pairs:
        boxes, problems = _scan_yolo(images_dir, lab_dir, names)
        _raise_first(problems)
        rows += boxes
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def write_yolo(
    boxes: pd.DataFrame,
    labels_dir: str | Path,
    names: Sequence[str] = PART_NAMES,
    images: Sequence[str | Path] | None = None,
) -> list[Path]:
    """Write an annotation table as YOLO label files ``labels_dir/<image stem>.txt``.

    Lines are ``class xc yc w h`` normalised by ``img_w``/``img_h`` (six decimals).
    Images listed in ``images`` without a box get an empty file (YOLO's "no
    object"). Returns the written files.
    """
    labels_dir = Path(labels_dir)
    labels_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(boxes["part"]) - set(names))
    if unknown:
        raise ValueError(f"boxes has parts {unknown} that are not in names {list(names)}")
    lines: dict[str, list[str]] = {Path(p).stem: [] for p in (images or [])}
    for r in boxes.itertuples(index=False):
        xc, yc = (r.x1 + r.x2) / 2 / r.img_w, (r.y1 + r.y2) / 2 / r.img_h
        bw, bh = (r.x2 - r.x1) / r.img_w, (r.y2 - r.y1) / r.img_h
        cls = list(names).index(r.part)
        lines.setdefault(Path(r.path).stem, []).append(f"{cls} {xc:.6f} {yc:.6f} {bw:.6f} {bh:.6f}")
    written = []
    for stem, rows in lines.items():
        path = labels_dir / f"{stem}.txt"
        path.write_text("".join(line + "\n" for line in rows))
        written.append(path)
    return written


def write_coco(
    boxes: pd.DataFrame,
    json_path: str | Path,
    image_root: str | Path,
    names: Sequence[str] = PART_NAMES,
    images: Sequence[str | Path] | None = None,
) -> Path:
    """Write an annotation table as a COCO detection JSON (``bbox = [x, y, w, h]`` pixels).

    Image ``file_name`` is relative to ``image_root``; category ids are
    1-based in ``names`` order. Images in ``images`` without boxes are listed too.
    """
    root = canonical_path(image_root)
    boxes = boxes.assign(path=canonical_paths(boxes["path"]))
    paths = list(dict.fromkeys(canonical_paths(images or []) + list(boxes["path"])))
    sizes = {r.path: (int(r.img_w), int(r.img_h)) for r in boxes.itertuples(index=False)}
    coco_images = []
    for k, p in enumerate(paths, start=1):
        w, h = sizes.get(p) or image_size(p)
        coco_images.append(
            {"id": k, "file_name": Path(p).relative_to(root).as_posix(), "width": w, "height": h}
        )
    ids = {p: k for k, p in enumerate(paths, start=1)}
    anns = [
        {
            "id": n,
            "image_id": ids[r.path],
            "category_id": list(names).index(r.part) + 1,
            "bbox": [round(r.x1, 2), round(r.y1, 2), round(r.x2 - r.x1, 2), round(r.y2 - r.y1, 2)],
            "area": round((r.x2 - r.x1) * (r.y2 - r.y1), 2),
            "iscrowd": 0,
        }
        for n, r in enumerate(boxes.itertuples(index=False), start=1)
    ]
    cats = [{"id": k + 1, "name": n, "supercategory": "part"} for k, n in enumerate(names)]
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": coco_images, "annotations": anns, "categories": cats}))
    return out


def _scan_coco(json_path: Path, image_root: Path, names: Sequence[str]) -> tuple[Rows, list[dict]]:
    text, problem = _decode_text(json_path)
    if problem is not None:
        return [], [problem]
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as err:
        return [], [_problem(json_path, err.lineno, "malformed", f"invalid JSON: {err.msg}")]
    cat_names = {c["id"]: c["name"] for c in coco.get("categories", [])}
    images = {im["id"]: im for im in coco.get("images", [])}
    boxes: Rows = []
    problems: list[dict] = []
    where = f"{json_path.name}"
    for im in images.values():
        if not (image_root / im["file_name"]).is_file():
            found = f"images[id={im['id']}] file {im['file_name']} not under {image_root}"
            problems.append(_problem(json_path, None, "missing_image", found))
    on_disk = _images_by_stem(image_root) if image_root.is_dir() else {}
    listed = {canonical_path(image_root / im["file_name"]) for im in images.values()}
    for path in on_disk.values():
        if path not in listed:
            problems.append(_problem(path, None, "missing_label", f"not listed in {where}"))
    for n, a in enumerate(coco.get("annotations", []), start=1):
        tag = f"annotations[{n - 1}] (id={a.get('id')})"
        name = cat_names.get(a.get("category_id"))
        bbox = a.get("bbox")
        im = images.get(a.get("image_id"))
        numbers = isinstance(bbox, list) and all(_finite_number(v) for v in bbox)
        if im is None or not numbers or len(bbox) != 4:
            problems.append(_problem(json_path, n, "malformed", f"{tag}: image_id or bbox invalid"))
        elif name not in names:
            problems.append(
                _problem(json_path, n, "unknown_class", f"{tag}: category {a.get('category_id')}")
            )
        else:
            x, y, bw, bh = (float(v) for v in bbox)
            w, h = im["width"], im["height"]
            rule = _geometry_rule(x, y, x + bw, y + bh, w, h)
            if rule is not None:
                problems.append(_problem(json_path, n, rule, f"{tag}: bbox {bbox} in {w}x{h}"))
                continue
            image = str(canonical_path(image_root / im["file_name"]))
            boxes.append((image, name, x, y, x + bw, y + bh, w, h))
    return boxes, problems


def read_coco(
    json_path: str | Path, image_root: str | Path, names: Sequence[str] = PART_NAMES
) -> pd.DataFrame:
    """Read a COCO detection JSON into an annotation table (``BOX_COLUMNS``).

    ``image_root`` is the folder ``file_name`` is relative to. Raises
    :class:`DatasetFormatError` on the first problem (see :func:`validate`);
    ``line`` then is the 1-based index of the annotation in ``annotations``.
    """
    boxes, problems = _scan_coco(Path(json_path), Path(image_root), names)
    _raise_first(problems)
    return pd.DataFrame(boxes, columns=BOX_COLUMNS)


def yolo_to_coco(
    images_dir: str | Path, json_path: str | Path, names: Sequence[str] = PART_NAMES
) -> Path:
    """Convert the YOLO labels of ``images_dir`` into one COCO JSON (all images listed)."""
    boxes = read_yolo(images_dir, names=names)
    images = list(_images_by_stem(Path(images_dir)).values())
    return write_coco(boxes, json_path, images_dir, names, images=images)


def coco_to_yolo(
    json_path: str | Path,
    image_root: str | Path,
    labels_dir: str | Path,
    names: Sequence[str] = PART_NAMES,
) -> list[Path]:
    """Convert a COCO JSON into YOLO label files (one per listed image, empty if no box)."""
    boxes = read_coco(json_path, image_root, names)
    coco = json.loads(Path(json_path).read_text())
    images = [Path(image_root) / im["file_name"] for im in coco.get("images", [])]
    return write_yolo(boxes, labels_dir, names, images=images)


def validate(
    labels: str | Path,
    images_dir: str | Path | None = None,
    names: Sequence[str] = PART_NAMES,
    raise_errors: bool = True,
) -> pd.DataFrame:
    """Check part labels against the rules in :data:`RULES`; return the problems table.

    ``labels`` is a YOLO ``data.yaml``, images folder or labels folder (then
    ``images_dir`` may name the images folder), or a COCO ``.json`` file (then
    ``images_dir`` is its image root, default the JSON's folder). Rules: a
    malformed line (also a non-finite number or bytes that are not UTF-8
    text), an unknown class, zero or negative size, a box outside the
    image, an image without label, a label without image. With
    ``raise_errors`` the first problem raises :class:`DatasetFormatError`
    naming file and line; otherwise all of them come back as a DataFrame with
    columns ``file, line, rule, found, fix`` (empty when the labels are clean).
    """
    labels = Path(labels)
    if not labels.exists():
        raise FileNotFoundError(f"labels {labels} do not exist; pass a data.yaml, folder or .json")
    if labels.suffix == ".json":
        root = Path(images_dir) if images_dir is not None else labels.parent
        _, problems = _scan_coco(labels, root, names)
    else:
        if images_dir is not None:
            pairs = [(Path(images_dir), labels)]
        else:
            pairs = _yolo_pairs(labels)
        problems = []
        for img_dir, lab_dir in pairs:
            problems += _scan_yolo(img_dir, lab_dir, names)[1]
    if raise_errors:
        _raise_first(problems)
    return pd.DataFrame(problems, columns=PROBLEM_COLUMNS).astype({"line": "Int64"})


def widget_to_table(
    bboxes: Sequence[Mapping[str, Any]], path: str | Path, img_w: int, img_h: int
) -> pd.DataFrame:
    """Boxes drawn in a ``jupyter_bbox_widget.BBoxWidget`` (``x, y, width, height, label``)
    as an annotation table, clipped to the image; feed it to :func:`write_yolo`."""
    rows = []
    for b in bboxes:
        x1 = min(max(float(b["x"]), 0.0), img_w)
        y1 = min(max(float(b["y"]), 0.0), img_h)
        x2 = min(max(float(b["x"]) + float(b["width"]), 0.0), img_w)
        y2 = min(max(float(b["y"]) + float(b["height"]), 0.0), img_h)
        rows.append((str(canonical_path(path)), b["label"], x1, y1, x2, y2, img_w, img_h))
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def annotation_widget(
    images: Sequence[Path], labels_dir: Path, colours: dict[str, str] | None = None
):
    """A live annotator for ``images``, one at a time: draw the parts in the
    ``jupyter_bbox_widget.BBoxWidget`` it returns, press submit, and the boxes are
    written as a YOLO label file into ``labels_dir`` before the next image shows.

    Needs the ``annotate`` extra (``pip install -e '.[annotate]'``); without it an
    ``ImportError`` says so.
    """
    try:
        from jupyter_bbox_widget import BBoxWidget
    except ImportError:
        raise ImportError(
            "the live annotator needs jupyter-bbox-widget: run "
            "`.venv/bin/pip install -e '.[annotate]'` and restart the kernel"
        ) from None
    todo = [Path(p) for p in images]
    if not todo:
        raise ValueError("annotation_widget needs at least one image; none was given")
    colours = colours or {}
    widget = BBoxWidget(
        image=str(todo[0]),
        classes=list(PART_NAMES),
        colors=[colours.get(p, "#1f77b4") for p in PART_NAMES],
    )
    position = {"k": 0}

    @widget.on_submit
    def save_and_next() -> None:
        path = todo[position["k"]]
        w, h = image_size(path)
        write_yolo(widget_to_table(widget.bboxes, path, w, h), labels_dir, images=[path])
        position["k"] += 1
        if position["k"] < len(todo):
            widget.image, widget.bboxes = str(todo[position["k"]]), []
        else:
            print(f"done: {len(todo)} label files in {labels_dir}")

    return widget


def part_statistics(boxes: pd.DataFrame, images: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per view and part: boxes, images showing the part, visibility, normalised box size.

    ``boxes`` is an annotation table, optionally with ``visible`` (0/1; invisible
    rows only count towards the images) and ``view`` (front/rear; "all" when
    absent). ``images`` (columns ``path`` and optionally ``view``) lists every
    image, also those without any box; by default the images of ``boxes``.
    ``visibility`` is the share of a view's images that show the part at least once,
    ``instance_visibility`` the share of its rows that are visible (e.g. of the
    left and right lights; 1 without a ``visible`` column).
    """
    df = boxes.assign(view=boxes["view"] if "view" in boxes else "all")
    imgs = df[["path", "view"]] if images is None else images
    imgs = imgs.assign(view=imgs["view"] if "view" in imgs else "all").drop_duplicates("path")
    instances = df.groupby(["view", "part"]).size()
    if "visible" in df:
        df = df[df["visible"].astype(bool)]
    df = df.assign(
        width=(df["x2"] - df["x1"]) / df["img_w"],
        height=(df["y2"] - df["y1"]) / df["img_h"],
        cy=(df["y1"] + df["y2"]) / 2 / df["img_h"],
    )
    stats = df.groupby(["view", "part"]).agg(
        boxes=("width", "size"),
        images_with_part=("path", "nunique"),
        width_mean=("width", "mean"),
        width_std=("width", "std"),
        height_mean=("height", "mean"),
        height_std=("height", "std"),
        centre_y_mean=("cy", "mean"),
    )
    n_images = imgs.groupby("view").size()
    stats.insert(0, "images", n_images.reindex(stats.index.get_level_values("view")).to_numpy())
    stats.insert(3, "visibility", stats["images_with_part"] / stats["images"])
    stats.insert(4, "instance_visibility", stats["boxes"] / instances.reindex(stats.index))
    return stats


def plot_part_statistics(boxes: pd.DataFrame, images: pd.DataFrame | None = None):
    """Three panels: normalised width and height histograms per part, visibility per view."""
    import matplotlib.pyplot as plt

    from prreid_lib.viz import PART_COLOURS

    df = boxes[boxes["visible"].astype(bool)] if "visible" in boxes else boxes
    with plt.rc_context({"font.size": 12}):  # the figure is shown at the page's width
        return _draw_part_statistics(plt, df, part_statistics(boxes, images), PART_COLOURS)


def _draw_part_statistics(plt, df: pd.DataFrame, stats: pd.DataFrame, colours: dict):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for part, g in df.groupby("part", sort=False):
        colour = colours.get(part)
        for ax, num, den in ((axes[0], "x", "img_w"), (axes[1], "y", "img_h")):
            size = (g[f"{num}2"] - g[f"{num}1"]) / g[den]
            ax.hist(size, bins=30, range=(0, 1), alpha=0.6, color=colour, label=part)
    axes[0].set(xlabel="box width / image width", ylabel="boxes")
    axes[1].set(xlabel="box height / image height")
    axes[0].legend()
    vis = stats["visibility"].unstack("part")
    vis.plot.bar(ax=axes[2], color=[colours.get(p) for p in vis.columns], rot=0)
    axes[2].set(ylabel="share of images\nshowing the part", ylim=(0, 1.05), xlabel="view")
    axes[2].legend(title="part", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig
