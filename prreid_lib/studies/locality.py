"""How local is a part's feature? Its cells on the grid and its effective receptive field.

A part branch pools the backbone's feature map over the cells its box overlaps
(:func:`prreid_lib.parts.boxes_to_grid_mask`). Two numbers say how local the
pooled feature really is, and chapter 7 measures both on the training images'
part boxes:

- the **cell share**: the share of the grid's cells a part's mask covers, beside
  the share of the image its box covers (:func:`cell_shares`). A box that
  touches a cell takes the whole cell, so on a coarse grid a small badge pools
  over a large part of the car;
- the **effective receptive field** (ERF, Luo et al. 2016): the gradient of the
  pooled feature (the sum of its channels) with respect to the input pixels,
  in absolute value; the share of its mass inside the part's box
  (:func:`erf_inside_share`). 100 % would be a feature that sees only its part;
  the box's own share of the image is what a feature that sees every pixel
  alike would score.

:func:`locality_table` gathers both for a backbone at several input sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from prreid_lib.imagenet import normalize_images
from prreid_lib.model import build_backbone, grid_size
from prreid_lib.parts import boxes_to_masks
from prreid_lib.pipeline.imageset import ReIDImageSet
from prreid_lib.studies.data import StudyData

__all__ = [
    "LOCALITY_COLUMNS",
    "box_pixel_masks",
    "cell_shares",
    "erf_inside_share",
    "locality_backbone",
    "locality_summary",
    "locality_table",
]

LOCALITY_COLUMNS = ["input px", "grid", "part", "box share", "cell share", "ERF in box"]
"""Columns of :func:`locality_table`; the shares are fractions (0-1) averaged over the
images where the part has a box."""


def box_pixel_masks(boxes: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel masks (N, P, size, size) of normalised boxes (N, P, K, 4), validity (N, P, K).

    A pixel belongs to a part when its centre lies inside one of the part's valid boxes
    (the two lights are united).
    """
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    x1, y1, x2, y2 = (boxes[..., k, None] for k in range(4))
    cols = (centres >= x1) & (centres < x2)  # (N, P, K, size)
    rows = (centres >= y1) & (centres < y2)
    inside = rows[..., :, None] & cols[..., None, :] & valid[..., None, None]
    return inside.any(dim=2).float()


def cell_shares(
    boxes: torch.Tensor, valid: torch.Tensor, grids: Sequence[int], parts: Sequence[str]
) -> pd.DataFrame:
    """Per grid side and part: the mean share of the image its box covers and of the grid
    its cells cover, over the images where the part has a box (columns ``grid``, ``part``,
    ``box share``, ``cell share``)."""
    present = valid.any(-1)  # (N, P)
    area = box_pixel_masks(boxes, valid, 256).mean(dim=(-2, -1))  # (N, P)
    rows = []
    for side in grids:
        cells = boxes_to_masks(boxes, valid, int(side)).mean(dim=(-2, -1))
        for p, part in enumerate(parts):
            has = present[:, p]
            rows.append(
                {
                    "grid": int(side),
                    "part": part,
                    "box share": float(area[has, p].mean()) if has.any() else float("nan"),
                    "cell share": float(cells[has, p].mean()) if has.any() else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def erf_inside_share(
    backbone: nn.Module, images: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor
) -> np.ndarray:
    """Per part: the mean share of the ERF's mass that lies inside the part's box.

    ``images`` are uint8 (N, 3, H, W); ``boxes`` / ``valid`` as in
    :class:`~prreid_lib.pipeline.imageset.ReIDImageSet`. For every part the
    backbone's map is pooled over the part's cells, the sum of the pooled
    feature is differentiated with respect to the input, and the absolute
    gradient (summed over colour channels) is split into inside and outside
    the box. Images without the part are left out. Returns an array (P,).
    """
    backbone = backbone.eval()
    size = images.shape[-1]
    pixels = box_pixel_masks(boxes, valid, size)  # (N, P, H, W)
    shares = []
    for p in range(boxes.shape[1]):
        has = valid[:, p].any(-1)
        if not has.any():
            shares.append(float("nan"))
            continue
        x = normalize_images(images[has]).requires_grad_(True)
        fmap = backbone(x)
        masks = boxes_to_masks(boxes[has], valid[has], fmap.shape[-1])[:, p]  # (n, S, S)
        pooled = (fmap * masks[:, None]).sum(dim=(-2, -1)) / masks.sum(dim=(-2, -1))[:, None]
        (grad,) = torch.autograd.grad(pooled.sum(), x)
        mass = grad.abs().sum(dim=1)  # (n, H, W)
        inside = (mass * pixels[has, p]).sum(dim=(-2, -1))
        shares.append(float((inside / mass.sum(dim=(-2, -1)).clamp_min(1e-12)).mean()))
    return np.array(shares)


def locality_backbone(data: StudyData) -> nn.Module:
    """The backbone every variant of ``data`` starts from, as chapter 4 trains it: the
    SynthVeh-pretrained start, else the profile's ``pretrained`` file, else random."""
    cfg = data.profile.train
    weights: str | Path | None = data.start.path if data.start is not None else cfg.pretrained
    return build_backbone(cfg.arch, cfg.last_stride, weights)


def locality_table(
    data: StudyData,
    sizes: Sequence[int] = (64, 128, 256),
    n_images: int = 48,
    backbone: nn.Module | None = None,
) -> pd.DataFrame:
    """Cell shares and ERF shares of every part at every input size (:data:`LOCALITY_COLUMNS`).

    Measured on the first ``n_images`` VehicleID training images that have all
    three parts, with ``data``'s training part boxes, for ``backbone`` (default
    :func:`locality_backbone`). The grid of each size is the profile's
    (:func:`prreid_lib.model.grid_size`).
    """
    cfg = data.profile.train
    net = backbone if backbone is not None else locality_backbone(data)
    frame = data.vehicleid.train
    tables = []
    for size in sizes:
        images = ReIDImageSet(frame, data.part_boxes, input_size=int(size))
        keep = np.flatnonzero(images.box_valid.any(-1).all(-1).numpy())[:n_images]
        batch = images.batch(keep)
        side = grid_size(int(size), cfg.last_stride, cfg.arch)
        table = cell_shares(batch["boxes"], batch["box_valid"], [side], images.parts)
        table["ERF in box"] = erf_inside_share(
            net, batch["images"], batch["boxes"], batch["box_valid"]
        )
        tables.append(table.assign(**{"input px": int(size)}))
    return pd.concat(tables, ignore_index=True)[LOCALITY_COLUMNS]


def locality_summary(table: pd.DataFrame, size: int) -> dict[str, float | int | str]:
    """The figures chapter 7's text quotes from :func:`locality_table`, at the training size
    ``size`` and the largest size measured, and a sentence that follows them.

    Keys: ``size``, ``grid``, ``large_size``, ``large_grid``; per part
    (``window``, ``light``, ``brand``) ``<part>_box``, ``<part>_cells``, ``<part>_erf`` at
    ``size`` and ``<part>_erf_large``; ``reading``.
    """
    sizes = sorted(table["input px"].unique())
    if size not in sizes:
        raise ValueError(f"no locality rows at {size} px; measured: {sizes}")
    large = int(sizes[-1])
    at = table[table["input px"] == size].set_index("part")
    big = table[table["input px"] == large].set_index("part")
    out: dict[str, float | int | str] = {
        "size": int(size),
        "grid": int(at["grid"].iloc[0]),
        "large_size": large,
        "large_grid": int(big["grid"].iloc[0]),
    }
    for part in at.index:
        out[f"{part}_box"] = float(at.loc[part, "box share"])
        out[f"{part}_cells"] = float(at.loc[part, "cell share"])
        out[f"{part}_erf"] = float(at.loc[part, "ERF in box"])
        out[f"{part}_erf_large"] = float(big.loc[part, "ERF in box"])
    out["reading"] = _reading(at, big, int(size), large)
    return out


def _reading(at: pd.DataFrame, big: pd.DataFrame, size: int, large: int) -> str:
    """The sentence that follows the locality figures (whatever they are)."""
    erf = at["ERF in box"]
    majority = int((erf >= 0.5).sum())
    who = "none of the part features" if majority == 0 else f"{majority} of the part features"
    first = f"At {size} px {who} draw most of their receptive field from inside their own box"
    ratio = at["cell share"] / at["box share"]
    if (ratio > 1).all():
        first += (
            f", and each part's cells cover at least {ratio.min():.1f} times the share of the "
            "grid that its box covers of the image"
        )
    if (big["ERF in box"] > erf).all():
        second = (
            f"At {large} px every part's share inside its box is larger: the finer grid and "
            "the receptive field, smaller against the image, make the features more local."
        )
    else:
        second = f"At {large} px the shares inside the boxes do not all grow."
    return f"{first}. {second}"
