"""How local a part feature is: cell shares, pixel masks and the effective receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prreid_lib.studies.locality import (
    box_pixel_masks,
    cell_shares,
    erf_inside_share,
    locality_summary,
)

torch.set_num_threads(2)


def _one_part(box: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (1, 1, 2, 4) and validity (1, 1, 2) of one image with one part box."""
    boxes = torch.zeros(1, 1, 2, 4)
    boxes[0, 0, 0] = torch.tensor(box)
    valid = torch.tensor([[[True, False]]])
    return boxes, valid


def test_a_small_box_takes_whole_cells_on_a_coarse_grid():
    boxes, valid = _one_part([0.0, 0.0, 0.3, 0.3])
    table = cell_shares(boxes, valid, [4, 10], ["badge"]).set_index("grid")
    assert table.loc[4, "box share"] == pytest.approx(0.09, abs=0.01)
    assert table.loc[4, "cell share"] == pytest.approx(4 / 16)  # 2 x 2 of 4 x 4 cells
    assert table.loc[10, "cell share"] == pytest.approx(9 / 100)  # the box on the cell edges


def test_pixel_masks_keep_the_pixels_whose_centres_lie_in_a_valid_box():
    boxes, valid = _one_part([0.25, 0.5, 0.75, 1.0])
    mask = box_pixel_masks(boxes, valid, 8)[0, 0]
    assert mask.sum() == 16 and mask[4:, 2:6].all()
    assert box_pixel_masks(boxes, torch.zeros_like(valid), 8).sum() == 0


class _Mixer(nn.Module):
    """A backbone whose cells see only their own pixels, plus ``mix`` of the image's mean."""

    def __init__(self, mix: float) -> None:
        super().__init__()
        self.pool, self.mix = nn.AvgPool2d(8), mix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) + self.mix * x.mean(dim=(2, 3), keepdim=True)


def test_a_feature_that_sees_only_its_cells_has_its_whole_field_inside_a_cell_aligned_box():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    boxes, valid = _one_part([0.25, 0.25, 0.75, 0.5])  # exactly 2 x 1 cells of the 4 x 4 grid
    boxes, valid = boxes.expand(3, -1, -1, -1), valid.expand(3, -1, -1)
    local = erf_inside_share(_Mixer(0.0), images, boxes, valid)
    assert local[0] == pytest.approx(1.0)
    mixed = erf_inside_share(_Mixer(1.0), images, boxes, valid)
    # pooled over 128 box pixels (weight 1/128 each) plus the mean of all 1024 (1/1024 each)
    inside, outside = 128 * (1 / 128 + 1 / 1024), 896 / 1024
    assert mixed[0] == pytest.approx(inside / (inside + outside), rel=1e-4)


def test_the_summary_sentence_follows_the_figures():
    import pandas as pd

    rows = []
    for size, grid, erf in ((64, 4, 0.2), (256, 16, 0.6)):
        for part in ("window", "light", "brand"):
            rows.append({"input px": size, "grid": grid, "part": part, "box share": 0.1,
                         "cell share": 0.4 if grid == 4 else 0.15, "ERF in box": erf})  # fmt: skip
    summary = locality_summary(pd.DataFrame(rows), 64)
    assert summary["grid"] == 4 and summary["brand_erf_large"] == 0.6
    assert "none of the part features draw most" in summary["reading"]
    assert "at least 4.0 times" in summary["reading"]
    assert "every part's share inside its box is larger" in summary["reading"]
    with pytest.raises(ValueError, match="no locality rows at 96 px"):
        locality_summary(pd.DataFrame(rows), 96)
