"""The paper's vehicle parts (Sec. 3.2) and their geometry on the feature grid.

Parts are window, light and brand (``PART_NAMES``). A part's box is
projected onto the S x S grid of the backbone's feature map: every grid cell
that the box overlaps is marked as belonging to the part (paper, Sec. 3.2,
"Every grid cell overlapped with the ROI would be marked as that part").
"""

from __future__ import annotations

import torch

from prreid_lib.config import PART_NAMES

__all__ = ["PART_NAMES", "boxes_to_grid_mask"]


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
