"""The numbers the paper reports (He et al., CVPR 2019), quoted for side-by-side tables.

These are the paper's values on the *real* VehicleID and VeRi-776 data sets,
typed from its Tables 1-6. The book never presents them as ours: every table
that shows them labels the column "paper (real data)".

The rows of Table 4 are the model's variants: which branches it trains. Code
names a variant by its key (:class:`Variant`); tables show the paper's name of
the row (:data:`LABELS`), so ours and the paper's join by key and read alike.
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

PAPER_LABEL = "paper (real data)"


class Variant(StrEnum):
    """The rows of the paper's Table 4 by key: which branches a model trains."""

    FULL = "full"
    GLOBAL_LIGHT_BRAND = "global_light_brand"
    GLOBAL_LIGHT_WINDOW = "global_light_window"
    GLOBAL_WINDOW_BRAND = "global_window_brand"
    GLOBAL_WINDOW = "global_window"
    PARTS_ONLY = "parts_only"
    BASELINE = "baseline"


LABELS: dict[str, str] = {
    Variant.FULL: "Global+Light+Brand+Window",
    Variant.GLOBAL_LIGHT_BRAND: "Global+Light+Brand",
    Variant.GLOBAL_LIGHT_WINDOW: "Global+Light+Window",
    Variant.GLOBAL_WINDOW_BRAND: "Global+Window+Brand",
    Variant.GLOBAL_WINDOW: "Global+Window",
    Variant.PARTS_ONLY: "Window+Light+Brand",
    Variant.BASELINE: "Baseline (w/o parts)",
}
"""Variant key -> the paper's name of its row, the label every table shows
(``table.rename(index=LABELS)``)."""

# Tables 1 and 2: CMC@1 and CMC@5 on VehicleID (small / medium / large), "Ours" row.
VEHICLEID_OURS = {
    "small": {"CMC@1": 0.784, "CMC@5": 0.923},
    "medium": {"CMC@1": 0.750, "CMC@5": 0.883},
    "large": {"CMC@1": 0.742, "CMC@5": 0.864},
}

# Table 3: VeRi-776, "Ours" row.
VERI_OURS = {"mAP": 0.743, "HIT@1": 0.943, "HIT@5": 0.987}

# Table 4: ablation on VehicleID (large test set), CMC@1 / CMC@5, by variant key.
ABLATION = [
    (Variant.FULL, 0.742, 0.864),
    (Variant.GLOBAL_LIGHT_BRAND, 0.675, 0.830),
    (Variant.GLOBAL_LIGHT_WINDOW, 0.710, 0.887),
    (Variant.GLOBAL_WINDOW_BRAND, 0.726, 0.851),
    (Variant.GLOBAL_WINDOW, 0.707, 0.832),
    (Variant.PARTS_ONLY, 0.687, 0.829),
    (Variant.BASELINE, 0.645, 0.800),
]

# Table 5: VehicleID at two input sizes.
RESOLUTION_VEHICLEID = [
    ("small", 128, 0.726, 0.886),
    ("small", 256, 0.784, 0.923),
    ("medium", 128, 0.685, 0.838),
    ("medium", 256, 0.750, 0.883),
    ("large", 128, 0.661, 0.819),
    ("large", 256, 0.742, 0.864),
]

# Table 6: VeRi-776 at three input sizes.
RESOLUTION_VERI = [
    (128, 0.653, 0.878, 0.959),
    (256, 0.702, 0.922, 0.979),
    (512, 0.743, 0.943, 0.987),
]


def vehicleid_table() -> pd.DataFrame:
    """Tables 1-2 ("Ours" row): CMC@1 and CMC@5 per VehicleID test set."""
    return pd.DataFrame(VEHICLEID_OURS).T.rename_axis("test set")


def veri_table() -> pd.Series:
    """Table 3 ("Ours" row): mAP, HIT@1, HIT@5 on VeRi-776."""
    return pd.Series(VERI_OURS, name=PAPER_LABEL)


def ablation_table() -> pd.DataFrame:
    """Table 4: CMC@1 / CMC@5 of every combination of branches on VehicleID, indexed by
    :class:`Variant` key (``branches``; :data:`LABELS` names the rows)."""
    return pd.DataFrame(ABLATION, columns=["branches", "CMC@1", "CMC@5"]).set_index("branches")


def resolution_vehicleid_table() -> pd.DataFrame:
    """Table 5: CMC@1 / CMC@5 on VehicleID at 128 and 256 px."""
    cols = ["test set", "input size", "CMC@1", "CMC@5"]
    return pd.DataFrame(RESOLUTION_VEHICLEID, columns=cols)


def resolution_veri_table() -> pd.DataFrame:
    """Table 6: mAP / HIT@1 / HIT@5 on VeRi-776 at 128, 256 and 512 px."""
    return pd.DataFrame(RESOLUTION_VERI, columns=["input size", "mAP", "HIT@1", "HIT@5"])
