"""The paper's vehicle parts (Sec. 3.2) and their geometry on the feature grid.

Parts are window, light and brand (``PART_NAMES``). A part's box is
projected onto the S x S grid of the backbone's feature map: every grid cell
that the box overlaps is marked as belonging to the part (paper, Sec. 3.2,
"Every grid cell overlapped with the ROI would be marked as that part").

From raw detections to the *part boxes table* the re-id model consumes
(columns ``PART_BOX_COLUMNS``): :func:`select_part_boxes` keeps one box per
part and image (two lights, left and right), :func:`extend_lights` stretches
light boxes down to the vehicle's bottom, and :func:`impute_missing_parts`
fills a missing part with the average box of the same identity (the paper's
rule), flagging every imputed box. :func:`ground_truth_part_boxes` builds the
same table from SynthVeh ground truth; it is the one place where ground-truth
part rows become part boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prreid_lib.config import PART_NAMES
from prreid_lib.images import shown_size
from prreid_lib.paths import canonical_paths

__all__ = [
    "PART_BOX_COLUMNS",
    "PART_DEFINITIONS",
    "PART_NAMES",
    "SLOTS",
    "box_iou",
    "boxes_to_grid_mask",
    "boxes_to_masks",
    "extend_lights",
    "image_size",
    "ground_truth_part_boxes",
    "impute_missing_parts",
    "match_boxes",
    "read_part_boxes",
    "select_part_boxes",
]

PART_BOX_COLUMNS = ["path", "part", "x1", "y1", "x2", "y2", "img_w", "img_h", "score", "imputed"]
"""Columns every part boxes table has: one box per row, in pixels of the image ``path``
(``img_w`` x ``img_h``), its ``score`` (detector confidence; 1 for ground truth, 0 when
imputed) and ``imputed``. The library's tables add ``side`` (left or right light) and
``impute_source``."""

PART_DEFINITIONS: dict[str, str] = {
    "window": "the windshield (front view) or rear window (rear view): the tight box of the "
    "glass, including stickers, ornaments and dashboard items seen through it",
    "light": "each head light (front) or tail light (rear) separately, left and right: the "
    "tight box of the lamp, extended down to the bottom of the vehicle for context",
    "brand": "the head (front) or rear area around the make's badge: the badge with the "
    "grille or boot lid around it, between the two lights",
}
"""Annotation guideline of each part, after the paper's Sec. 3.2 and Fig. 3."""

SLOTS: tuple[tuple[str, str], ...] = (
    ("window", ""), ("light", "left"), ("light", "right"), ("brand", ""),
)  # fmt: skip
"""(part, side) slots of one image: one window, a left and a right light, one brand."""


def boxes_to_grid_mask(boxes: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Project normalised boxes onto an ``grid_size x grid_size`` grid of cells.

    ``boxes`` has shape ``(..., 4)`` with ``(x1, y1, x2, y2)`` in ``[0, 1]``
    image coordinates. Cell ``(i, j)`` (row ``i``, column ``j``) covers
    ``[j/S, (j+1)/S) x [i/S, (i+1)/S)``; it is marked 1 when the box overlaps it
    with positive area. Empty boxes (``x2 <= x1`` or ``y2 <= y1``, e.g. a missing
    part encoded as zeros) give an all-zero mask. Returns a float tensor of
    shape ``(..., S, S)``; no Python loop over boxes.
    """
    if boxes.shape[-1] != 4:
        raise ValueError(
            f"boxes must have a last dimension of 4 (x1, y1, x2, y2), got {tuple(boxes.shape)}"
        )
    if grid_size < 1:
        raise ValueError(f"grid_size must be a positive integer, got {grid_size}")
    s = grid_size
    edges = torch.arange(s + 1, dtype=boxes.dtype, device=boxes.device) / s
    lo, hi = edges[:-1], edges[1:]
    x1, y1, x2, y2 = (boxes[..., k, None] for k in range(4))
    cols = (torch.minimum(x2, hi) - torch.maximum(x1, lo)) > 0  # (..., S)
    rows = (torch.minimum(y2, hi) - torch.maximum(y1, lo)) > 0  # (..., S)
    return (rows[..., :, None] & cols[..., None, :]).to(
        boxes.dtype if boxes.is_floating_point() else torch.float32
    )


def boxes_to_masks(boxes: torch.Tensor, valid: torch.Tensor, grid: int) -> torch.Tensor:
    """Grid masks (B, P, S, S) from boxes (B, P, K, 4), validity (B, P, K): max over K boxes.

    The masks the model pools over: a part's cells are those any of its valid
    boxes overlaps (:func:`boxes_to_grid_mask`); two lights are united.
    """
    masks = boxes_to_grid_mask(boxes, grid) * valid[..., None, None].to(boxes.dtype)
    return masks.amax(dim=2)


_COLUMNS = [*PART_BOX_COLUMNS, "side", "impute_source"]
_XYXY = ["x1", "y1", "x2", "y2"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes, element-wise and broadcast over leading axes.

    ``a`` and ``b`` are ``(..., 4)``: two ``(N, 4)`` arrays pair row by row, one
    box ``(4,)`` against ``(N, 4)`` gives its IoU with each of the N boxes.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def _assign_light_sides(table: pd.DataFrame) -> pd.Series:
    """Side ("left"/"right", image coordinates) of each light row; "" for other parts.

    Two lights of an image: the one with the smaller centre x is left. A lone
    light is left when its centre lies left of the vehicle's axis, taken as the
    window's centre, else the brand's, else the image centre.
    """
    cx = (table["x1"] + table["x2"]) / 2
    axis = table["img_w"] / 2
    for part in ("brand", "window"):  # window wins: assigned last
        centres = cx[table["part"] == part].groupby(table["path"]).first()
        axis = table["path"].map(centres).fillna(axis)
    lights = table["part"] == "light"
    n = lights.groupby(table["path"]).transform("sum")
    rank = cx[lights].groupby(table["path"][lights]).rank(method="first")
    side = pd.Series("", index=table.index, dtype=object)
    pair = lights & (n >= 2)
    side[pair] = np.where(rank[pair[lights]] == 1, "left", "right")
    lone = lights & (n == 1)
    side[lone] = np.where(cx[lone] < axis[lone], "left", "right")
    return side


def select_part_boxes(
    detections: pd.DataFrame, parts: tuple[str, ...] = PART_NAMES, max_light_iou: float = 0.3
) -> pd.DataFrame:
    """One box per part and image, two for lights (left and right): the highest-scoring ones.

    ``detections`` has ``path, part, x1, y1, x2, y2, score, img_w, img_h``. The
    second light is the best-scoring one that overlaps the first by IoU below
    ``max_light_iou`` and whose centre lies outside the first box's horizontal
    extent (so a duplicate of the same lamp is not taken for the other one).
    Returns the part boxes table with ``side`` set and ``imputed`` False.
    """
    det = detections[detections["part"].isin(parts)]
    det = det.sort_values(["path", "part", "score"], ascending=[True, True, False], kind="stable")
    keep = det[det["part"] != "light"].groupby(["path", "part"], sort=False).head(1).index.tolist()
    for _, g in det[det["part"] == "light"].groupby("path", sort=False):
        keep.append(g.index[0])
        xyxy = g[_XYXY].to_numpy(dtype=float)
        cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
        other = (box_iou(xyxy[0], xyxy) < max_light_iou) & ((cx < xyxy[0, 0]) | (cx > xyxy[0, 2]))
        if other[1:].any():
            keep.append(g.index[1 + int(np.argmax(other[1:]))])
    out = det.loc[sorted(keep)].assign(imputed=False, impute_source="")
    out["side"] = _assign_light_sides(out)
    return out[_COLUMNS].reset_index(drop=True)


def extend_lights(
    boxes: pd.DataFrame, bottoms: Mapping[str, float] | pd.Series | None = None
) -> pd.DataFrame:
    """Extend every light box down to the bottom of the vehicle (paper Sec. 3.2, Fig. 3).

    ``bottoms`` maps an image path to the vehicle's bottom y in pixels (e.g. the
    ground-truth vehicle box); without it, or for a path it lacks, the bottom is
    the image's bottom edge ``img_h``: the paper's images (VeRi-776, VehicleID)
    are crops of one vehicle, whose bottom is the crop's. A box is never
    shortened (``y2 = max(y2, bottom)``), so extending twice changes nothing.
    """
    out = boxes.astype(dict.fromkeys(_XYXY, float))
    bottom = out["img_h"].astype(float)
    if bottoms is not None:
        bottom = out["path"].map(pd.Series(bottoms, dtype=float)).fillna(bottom)
    light = out["part"] == "light"
    out.loc[light, "y2"] = np.maximum(out.loc[light, "y2"], bottom[light])
    return out


def impute_missing_parts(
    boxes: pd.DataFrame,
    images: pd.DataFrame,
    parts: tuple[str, ...] = PART_NAMES,
    fallback: str = "view",
) -> pd.DataFrame:
    """Fill each missing (part, side) slot with the average box of the same identity.

    The paper's rule (Sec. 3.2): for an image where a part was not detected,
    "refer to the rest images of the same vehicle and compute the average
    locations of the missing parts". ``images`` lists every image (``path``,
    ``pid``, optionally ``view``, ``img_w``, ``img_h``); boxes are averaged in
    coordinates normalised by image size, then scaled to the target image.
    When an identity has no box of that slot at all, the fallback is the mean
    box of the slot over the images of the same ``view`` (``fallback="view"``,
    when ``images`` has a view column: front and rear windows sit at
    different heights), else over all images (``"all"``): crops are roughly
    aligned, so the population mean is the best location prior that carries
    no identity information. A slot with no box anywhere stays missing.
    Imputed rows get ``imputed=True``, ``score=0`` and ``impute_source`` in
    {"identity", "view", "all"}; detected rows keep ``imputed=False``.
    """
    if fallback not in {"view", "all"}:
        raise ValueError(f"fallback must be 'view' or 'all', got {fallback!r}")
    if not {"path", "pid"} <= set(images.columns):
        raise ValueError(f"images needs columns path and pid; it has {list(images.columns)}")
    det = boxes[boxes["part"].isin(parts)].copy()
    det["imputed"] = det["imputed"].astype(bool) if "imputed" in det else False
    det["impute_source"] = det.get("impute_source", pd.Series("", index=det.index)).fillna("")
    det["score"] = det["score"] if "score" in det else 1.0
    side = det["side"].fillna("") if "side" in det else pd.Series("", index=det.index)
    unsided = (det["part"] == "light") & (side == "")
    det["side"] = side.where(~unsided, _assign_light_sides(det))
    imgs = images.drop_duplicates("path")[["path", "pid", *(["view"] if "view" in images else [])]]
    imgs = imgs.merge(_image_sizes(images, det), on="path", how="left")
    observed = det[~det["imputed"]].merge(imgs, on="path", suffixes=("", "_img"))
    norm = observed[_XYXY].to_numpy(float) / observed[["img_w", "img_h"] * 2].to_numpy(float)
    observed[["n1", "n2", "n3", "n4"]] = norm
    slots = pd.DataFrame([s for s in SLOTS if s[0] in parts], columns=["part", "side"])
    wanted = imgs.merge(slots, how="cross")
    have = det[["path", "part", "side"]].drop_duplicates().assign(_have=True)
    missing = wanted.merge(have, on=["path", "part", "side"], how="left")
    missing = missing[missing["_have"].isna()].drop(columns="_have")
    levels = [("identity", ["pid"])]
    if fallback == "view" and "view" in imgs:
        levels.append(("view", ["view"]))
    levels.append(("all", []))
    cols = ["n1", "n2", "n3", "n4"]
    missing[cols] = np.nan
    missing["impute_source"] = ""
    for name, keys in levels:
        means = observed.groupby([*keys, "part", "side"])[cols].mean().reset_index()
        todo = missing["impute_source"] == ""
        fill = missing.loc[todo, [*keys, "part", "side"]].merge(means, how="left")
        found = fill[cols].notna().all(axis=1).to_numpy()
        idx = missing.index[todo][found]
        missing.loc[idx, cols] = fill.loc[found, cols].to_numpy()
        missing.loc[idx, "impute_source"] = name
    missing = missing[missing["impute_source"] != ""]
    scale = missing[["img_w", "img_h"] * 2].to_numpy(float)
    missing[_XYXY] = missing[cols].to_numpy(float) * scale
    missing = missing.assign(score=0.0, imputed=True)
    out = pd.concat([det[_COLUMNS], missing[_COLUMNS]], ignore_index=True)
    return out.sort_values(["path", "part", "side"], kind="stable").reset_index(drop=True)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image as a viewer shows it (EXIF orientation applied)."""
    return shown_size(path)


def _image_sizes(images: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    """``path, img_w, img_h`` of every image: from ``images``, else ``boxes``, else the file."""
    if {"img_w", "img_h"} <= set(images.columns):
        return images.drop_duplicates("path")[["path", "img_w", "img_h"]]
    known = boxes.drop_duplicates("path").set_index("path")[["img_w", "img_h"]]
    rows = []
    for path in images["path"].drop_duplicates():
        if path in known.index:
            rows.append((path, *known.loc[path]))
        else:
            rows.append((path, *image_size(path)))
    return pd.DataFrame(rows, columns=["path", "img_w", "img_h"])


def read_part_boxes(file: str | Path) -> pd.DataFrame:
    """A part boxes table saved as CSV (``prreid detect``, chapter 3, or your own), with its
    ``path`` column canonical (:func:`prreid_lib.paths.canonical_paths`), so it joins the
    loaders' image paths however either was spelled. A relative ``path`` is relative to the
    CSV's own folder. A missing file, a table without ``path`` or with an empty ``path``
    raises naming the file (and the line)."""
    file = Path(file).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no part boxes file there; pass the CSV that prreid detect (or chapter 3) "
            "wrote, with columns path, part, x1, y1, x2, y2"
        )
    table = pd.read_csv(file)
    if "path" not in table.columns:
        raise ValueError(
            f"{file}: expected a part boxes table with a 'path' column (and part, x1, y1, x2, "
            f"y2), found columns {list(table.columns)}; write the image path of each box there"
        )
    empty = table["path"].isna() | (table["path"].astype(str).str.strip() == "")
    if empty.any():
        line = int(np.flatnonzero(empty.to_numpy())[0]) + 2  # 1-based, after the header
        raise ValueError(
            f"{file}, line {line}: expected an image path in the 'path' column, found none; "
            "fill in the image of every box"
        )
    folder = file.absolute().parent
    table["path"] = canonical_paths(folder / Path(str(p)).expanduser() for p in table["path"])
    return table


def ground_truth_part_boxes(
    parts: pd.DataFrame, images: pd.DataFrame | None = None, root: str | Path | None = None
) -> pd.DataFrame:
    """The part boxes table from a ``synthveh_parts.csv`` table (ground truth, score 1).

    Keeps visible window, light and brand rows, extends lights to the bottom of
    the image's ``vehicle`` box (:func:`extend_lights`) and sets
    ``imputed=False``. ``parts`` needs a ``path`` column (as from
    ``load_synthveh_parts``) or ``root``, the folder its ``image`` column is
    relative to; paths come out canonical (:mod:`prreid_lib.paths`), those of
    ``images`` too, so the two join however either was spelled. Columns ``side``
    and ``view`` are kept.

    With ``images`` (``path``, ``pid``: the images a model trains or is tested
    on) the boxes of parts hidden in an image are imputed as for detections
    (:func:`impute_missing_parts`), with each image's ``view`` taken from
    ``parts``: the table the re-id model consumes.
    """
    df = parts.copy()
    if "path" not in df:
        if root is None:
            raise ValueError(
                "the parts table has no 'path' column: load it with "
                "prreid_lib.synthveh.load_synthveh_parts(root) or pass root="
            )
        df["path"] = canonical_paths(Path(root) / name for name in df["image"])
    else:
        df["path"] = canonical_paths(df["path"])
    vehicle = df[df["part"] == "vehicle"].groupby("path")["y2"].max()
    keep = df[df["part"].isin(PART_NAMES) & df["visible"].astype(bool)]
    out = extend_lights(keep, vehicle).assign(score=1.0, imputed=False, impute_source="")
    out["side"] = out["side"].fillna("") if "side" in out else _assign_light_sides(out)
    extra = ["view"] if "view" in out else []
    boxes = out[_COLUMNS + extra].reset_index(drop=True)
    if images is None:
        return boxes
    images = images.assign(path=canonical_paths(images["path"])).drop_duplicates("path")
    if "view" in df:
        views = df.drop_duplicates("path").set_index("path")["view"]
        images = images.assign(view=images["path"].map(views))
    return impute_missing_parts(boxes, images)


def match_boxes(
    pred: pd.DataFrame, truth: pd.DataFrame, iou_threshold: float = 0.5
) -> pd.DataFrame:
    """Match predicted boxes to ground-truth boxes of the same image and part, for failure analysis.

    Greedy, highest score first, each ground-truth box matched at most once
    with IoU of at least ``iou_threshold`` (the rule of AP50; the AP itself
    comes from ultralytics' validator). Returns one row per ground-truth box
    (``outcome`` "hit" or "miss", ``iou`` of its match or best overlap) and
    one per unmatched prediction ("false"), with ``path``, ``part``, the box,
    ``score`` and ``iou``.
    """
    rows = []
    preds = {k: g for k, g in pred.groupby(["path", "part"])}
    for key, g in truth.groupby(["path", "part"]):
        gt = g[_XYXY].to_numpy(float)
        p = preds.pop(key, pred.iloc[:0]).sort_values("score", ascending=False)
        free = np.ones(len(gt), bool)
        best = np.zeros(len(gt))
        for r in p.itertuples(index=False):
            ious = box_iou(np.array([r.x1, r.y1, r.x2, r.y2], float), gt)
            best = np.maximum(best, ious)
            cand = np.where(free & (ious >= iou_threshold))[0]
            if len(cand):
                j = cand[np.argmax(ious[cand])]
                free[j] = False
                rows.append((*key, *gt[j], r.score, ious[j], "hit"))
            else:
                rows.append((*key, r.x1, r.y1, r.x2, r.y2, r.score, ious.max(), "false"))
        rows += [(*key, *gt[j], np.nan, best[j], "miss") for j in np.where(free)[0]]
    for key, p in preds.items():
        rows += [(*key, r.x1, r.y1, r.x2, r.y2, r.score, 0.0, "false") for r in p.itertuples()]
    return pd.DataFrame(rows, columns=["path", "part", *_XYXY, "score", "iou", "outcome"])
