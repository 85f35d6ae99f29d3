"""Every figure the chapters show, as a named function (one module per subject).

- :mod:`prreid_lib.viz.images`: image grids with part boxes, near-duplicate groups,
  rank lists; the part colours used across the book;
- :mod:`prreid_lib.viz.data` (chapter 1), :mod:`prreid_lib.viz.parts` (chapters 2
  and 3), :mod:`prreid_lib.viz.training` (4 and 6), :mod:`prreid_lib.viz.evaluation`
  (5), :mod:`prreid_lib.viz.resolution` (7), :mod:`prreid_lib.viz.cam` (8).

Functions take tables and arrays and return matplotlib figures; the chapters
display them. Shared figures are imported from here, a chapter's own from its module.
"""

from __future__ import annotations

from prreid_lib.viz.images import (
    PART_COLOURS,
    draw_part_boxes,
    image_grid,
    near_duplicate_grid,
    rank_list_figure,
    top_k,
)

__all__ = [
    "PART_COLOURS",
    "draw_part_boxes",
    "image_grid",
    "near_duplicate_grid",
    "rank_list_figure",
    "top_k",
]
