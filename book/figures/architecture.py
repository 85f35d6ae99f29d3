"""Draw the part-regularized network (the method page's figure) with matplotlib.

Run by the book build (:func:`prreid_lib.chapters.build_book`) before Jupyter
Book, so the figure is made from this code on every build and never committed
as a binary:

    python book/figures/architecture.py book/_static/architecture.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

PART_COLOURS = {"window": "#1f77b4", "lights": "#ff7f0e", "brand": "#2ca02c"}
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "_static" / "architecture.png"


def _box(ax, x, y, w, h, text, colour="#f2f2f2", edge="#333333", size=9, style="-"):
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour, edgecolor=edge, linewidth=1.2, linestyle=style,
        )
    )  # fmt: skip
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def _arrow(ax, start, end, colour="#333333", style="-"):
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=12, color=colour,
            linewidth=1.2, linestyle=style, shrinkA=2, shrinkB=2,
        )
    )  # fmt: skip


def _grid(ax, x, y, size, n, masks=None):
    cell = size / n
    for i in range(n):
        for j in range(n):
            colour = "white"
            for part, cells in (masks or {}).items():
                if (i, j) in cells:
                    colour = PART_COLOURS[part]
            ax.add_patch(
                Rectangle((x + j * cell, y + (n - 1 - i) * cell), cell, cell,
                          facecolor=colour, edgecolor="#555555", linewidth=0.6, alpha=0.85)
            )  # fmt: skip


def draw(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the architecture figure to ``output`` (PNG) and return its path."""
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.35, 5.2)
    ax.axis("off")

    # input and backbone
    _box(ax, 0.1, 2.2, 1.2, 0.9, "vehicle image\nH x W", "#ffffff")
    _box(ax, 1.75, 2.2, 1.45, 0.9, "backbone\n(ResNet, shared)", "#dde7f3")
    _arrow(ax, (1.3, 2.65), (1.75, 2.65))
    _grid(ax, 3.6, 2.05, 1.2, 4)
    ax.text(4.2, 3.4, "S x S x C\nfeature grid", ha="center", fontsize=9)
    _arrow(ax, (3.2, 2.65), (3.6, 2.65))

    # global branch (top): used in training and at test time
    _box(ax, 5.4, 3.9, 1.9, 0.8, "global average pooling\n+ 1x1 conv (256-d)", "#dde7f3")
    _box(ax, 7.85, 3.9, 1.95, 0.8, "identity loss\n(Eq. 1)", "#fde2e2")
    _arrow(ax, (4.8, 3.1), (5.4, 4.3))
    _arrow(ax, (7.3, 4.3), (7.85, 4.3))
    ax.text(6.35, 4.85, "global feature: the only one used at test time (L2 distance)",
            ha="center", fontsize=9, fontweight="bold")  # fmt: skip

    # part branches (bottom): training only
    masks = {
        "window": {(0, 1), (0, 2), (1, 1), (1, 2)},
        "lights": {(2, 0), (3, 0), (2, 3), (3, 3)},
        "brand": {(2, 1), (2, 2)},
    }
    _box(ax, 0.1, 0.35, 2.2, 0.9, "part boxes\n(detector, chapter 3)", "#ffffff")
    _arrow(ax, (0.7, 2.2), (0.7, 1.25))
    _box(ax, 2.75, 0.35, 1.5, 0.9, "project onto\nthe S x S grid", "#ffffff")
    _arrow(ax, (2.3, 0.8), (2.75, 0.8))
    _grid(ax, 4.6, 0.2, 1.2, 4, masks)
    ax.text(5.2, -0.05, "grid masks: cells a box overlaps", ha="center", va="top", fontsize=9)
    _arrow(ax, (4.25, 0.8), (4.6, 0.8))
    _arrow(ax, (4.2, 2.05), (5.0, 1.4))
    y = 1.75
    for part, colour in PART_COLOURS.items():
        _box(ax, 6.2, y - 0.25, 1.6, 0.45, f"local pooling: {part}", "#ffffff", colour, 8, "--")
        _box(ax, 8.25, y - 0.25, 1.55, 0.45, f"identity loss ({part})", "#fde2e2", colour, 8, "--")
        _arrow(ax, (5.8, 0.8), (6.2, y), colour, "--")
        _arrow(ax, (7.8, y), (8.25, y), colour, "--")
        y -= 0.7
    ax.text(8.0, 2.3, "part branches: training only (Eq. 3, one loss per part)",
            ha="center", fontsize=9, fontweight="bold")  # fmt: skip

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return output


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT))
