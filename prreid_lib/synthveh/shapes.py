"""Geometric primitives of the SynthVeh drawings.

Ellipses, rounded boxes, trapezoids, light outlines and make glyphs (in vehicle
units, numpy arrays), colour helpers, and :class:`Pen`, which draws them
through a camera homography onto a PIL canvas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import ImageDraw

CUE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (40, 110, 225),  # blue
    (60, 185, 75),  # green
    (245, 215, 40),  # yellow
    (248, 248, 248),  # white
    (225, 40, 40),  # red
    (250, 140, 20),  # orange
    (40, 205, 215),  # cyan
    (205, 60, 205),  # magenta
)
"""Colours of identity cues (stickers, ornaments, tints, decals)."""


T = TypeVar("T")


def triple(values: Iterable[T]) -> tuple[T, T, T]:
    """The three items of ``values`` (an RGB colour, a gain per channel) as a tuple."""
    first, second, third = values
    return first, second, third


def mix(a, b, t: float) -> tuple[int, int, int]:
    """Linear blend of two RGB colours (t=0 -> a, t=1 -> b)."""
    t = float(np.clip(t, 0.0, 1.0))
    return triple(int(round(x + (y - x) * t)) for x, y in zip(a[:3], b[:3], strict=True))


def shade(rgb, f: float) -> tuple[int, int, int]:
    """Brighten (f>1) or darken (f<1) an RGB colour; bright colours move towards white."""
    if f >= 1:
        return mix(rgb, (255, 255, 255), (f - 1) * 1.2)
    return triple(int(round(c * f)) for c in rgb[:3])


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> np.ndarray:
    """Polygon approximating an ellipse."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def rrect(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    """Rounded rectangle polygon (corner radius r, 3 points per corner)."""
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    if r <= 0:
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    pts = []
    for cx, cy, a0 in (
        (x1 - r, y0 + r, -90),
        (x1 - r, y1 - r, 0),
        (x0 + r, y1 - r, 90),
        (x0 + r, y0 + r, 180),
    ):
        for a in np.radians(a0 + np.array([0.0, 45.0, 90.0])):
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return np.array(pts)


_LIGHTS = (
    [(0, 0), (1, 0), (1, 1), (0, 1)],  # rectangle
    [(0, 0), (1, 0.3), (1, 1), (0, 1)],  # swept trapezoid
    [(0, 0), (0.7, 0), (1, 0.55), (0.75, 1), (0, 1)],  # pointed inner end
    None,  # round
    [(0, 0.1), (1, 0.3), (1, 0.75), (0, 0.9)],  # thin strip
    [(0, 0), (1, 0), (1, 0.45), (0.45, 0.45), (0.45, 1), (0, 1)],  # L / boomerang
)
N_LIGHT_STYLES = len(_LIGHTS)


def light_shape(style: int, inset: float = 0.0) -> np.ndarray:
    """Light outline in light-local (s, t) in [0,1]^2, s=0 the outer edge; shrunk by ``inset``."""
    base = _LIGHTS[style % N_LIGHT_STYLES]
    pts = ellipse(0.5, 0.5, 0.5, 0.5, 14) if base is None else np.array(base, dtype=float)
    if inset:
        c = pts.mean(axis=0)
        pts = c + (pts - c) * (1 - 2 * inset)
    return pts


def badge_glyph(glyph: int, cx: float, cy: float, r: float) -> list[tuple[str, np.ndarray, float]]:
    """Make-specific brand glyph as ``(kind, points, line width)`` items, kind fill or line.

    Ten base designs (ring with bar, three ovals, four rings, diamond, three-spoke
    star, V in a ring, slanted H, shield, bow tie, wings); makes beyond ten add a
    centre dot to the design of ``glyph % 10``.
    """
    w = r * 0.28
    ring = np.vstack([ellipse(cx, cy, r, r * 0.8, 14), ellipse(cx, cy, r, r * 0.8, 14)[:1]])
    style = glyph % 10
    out: list[tuple[str, np.ndarray, float]] = []
    if style == 0:
        out += [("line", ring, w), ("line", np.array([(cx - r, cy), (cx + r, cy)]), w * 1.3)]
    elif style == 1:
        for rx, ry in ((r * 1.1, r * 0.75), (r * 0.35, r * 0.75), (r * 0.75, r * 0.3)):
            e = ellipse(cx, cy - (r * 0.15 if rx < r * 0.5 else 0), rx, ry, 12)
            out.append(("line", np.vstack([e, e[:1]]), w * 0.8))
    elif style == 2:
        for j in range(4):
            e = ellipse(cx + (j - 1.5) * r * 0.7, cy, r * 0.45, r * 0.45, 10)
            out.append(("line", np.vstack([e, e[:1]]), w * 0.7))
    elif style == 3:
        d = np.array(
            [(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy), (cx, cy - r)]
        )
        out.append(("line", d, w * 1.2))
    elif style == 4:
        out.append(("line", ring, w))
        for a in np.radians([-90, 30, 150]):
            out.append(
                ("line", np.array([(cx, cy), (cx + r * np.cos(a), cy + r * 0.8 * np.sin(a))]), w)
            )
    elif style == 5:
        v = np.array(
            [(cx - r * 0.6, cy - r * 0.5), (cx, cy + r * 0.6), (cx + r * 0.6, cy - r * 0.5)]
        )
        out += [("line", ring, w), ("line", v, w)]
    elif style == 6:
        out.append(("line", ring, w * 0.8))
        for dx in (-0.4, 0.4):
            out.append(
                (
                    "line",
                    np.array(
                        [(cx + (dx + 0.1) * r, cy - r * 0.5), (cx + (dx - 0.1) * r, cy + r * 0.5)]
                    ),
                    w,
                )
            )
        out.append(("line", np.array([(cx - 0.35 * r, cy), (cx + 0.35 * r, cy)]), w))
    elif style == 7:
        s = np.array(
            [
                (cx - r * 0.7, cy - r),
                (cx + r * 0.7, cy - r),
                (cx + r * 0.7, cy + r * 0.1),
                (cx, cy + r),
                (cx - r * 0.7, cy + r * 0.1),
            ]
        )
        out.append(("fill", s, 0))
    elif style == 8:
        b = np.array(
            [
                (cx - r * 1.2, cy - r * 0.3),
                (cx - r * 0.3, cy - r * 0.3),
                (cx - r * 0.2, cy - r * 0.6),
                (cx + r * 0.3, cy - r * 0.6),
                (cx + r * 1.2, cy - r * 0.3),
                (cx + r * 1.1, cy + r * 0.3),
                (cx + r * 0.2, cy + r * 0.3),
                (cx + r * 0.1, cy + r * 0.6),
                (cx - r * 0.4, cy + r * 0.6),
                (cx - r * 1.1, cy + r * 0.3),
            ]
        )
        out.append(("fill", b, 0))
    else:
        for sx in (-1, 1):
            out.append(
                (
                    "fill",
                    np.array(
                        [
                            (cx + sx * r * 0.3, cy - r * 0.4),
                            (cx + sx * r * 1.4, cy - r * 0.5),
                            (cx + sx * r * 0.3, cy + r * 0.3),
                        ]
                    ),
                    0,
                )
            )
        out.append(("fill", ellipse(cx, cy, r * 0.35, r * 0.45, 10), 0))
    if glyph >= 10:
        out.append(("fill", ellipse(cx, cy, r * 0.2, r * 0.2, 8), 0))
    return out


Box = tuple[float, float, float, float]


@dataclass
class Pen:
    """Draws vehicle-unit polygons through the homography ``H`` (with the yaw parallax)."""

    draw: ImageDraw.ImageDraw
    H: np.ndarray
    yaw: float
    y_top: float
    scale: float

    def tf(self, pts) -> list[tuple[float, float]]:
        """Vehicle units -> canvas pixels (parallax shear above the face, then ``H``)."""
        (a, b, c), (d, e, f), (g, h, i) = self.H.tolist()
        yt, k = max(self.y_top, 1e-6), self.yaw * 0.07
        out = []
        for x, y in np.asarray(pts, dtype=np.float64).reshape(-1, 2).tolist():
            x += k * min(1.0, max(0.0, (yt - y) / yt))
            w = g * x + h * y + i
            out.append(((a * x + b * y + c) / w, (d * x + e * y + f) / w))
        return out

    def poly(self, pts, fill, outline=None, width: float = 0.0) -> None:
        xy = self.tf(pts)
        if len(xy) >= 3:
            w = max(1, round(width * self.scale)) if outline is not None else 1
            self.draw.polygon(xy, fill=fill, outline=outline, width=w)

    def line(self, pts, fill, width: float) -> None:
        self.draw.line(self.tf(pts), fill=fill, width=max(1, round(width * self.scale)))

    def box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        """Axis-aligned hull of the four transformed corners of a vehicle-unit box."""
        q = self.tf([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        xs, ys = [p[0] for p in q], [p[1] for p in q]
        return (min(xs), min(ys), max(xs), max(ys))


def hull(pts: np.ndarray) -> tuple[float, float, float, float]:
    p = np.asarray(pts).reshape(-1, 2)
    return p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()


def rgba(rgb, a: float) -> tuple[int, int, int, int]:
    return (*triple(int(c) for c in rgb[:3]), int(round(255 * float(np.clip(a, 0.0, 1.0)))))


def trap(ya: float, yb: float, ha: float, hb: float) -> np.ndarray:
    """Symmetric trapezoid: half-width ``ha`` at y ``ya``, ``hb`` at ``yb``."""
    return np.array([(-ha, ya), (ha, ya), (hb, yb), (-hb, yb)])


def banded(pen: Pen, ya, yb, ha, hb, top, bottom, n: int = 5) -> None:
    """Trapezoid filled with a vertical gradient from ``top`` to ``bottom`` (n bands)."""
    for i in range(n):
        t0, t1 = i / n, (i + 1) / n
        c = mix(top, bottom, (t0 + t1) / 2)
        pen.poly(
            trap(
                ya + (yb - ya) * t0,
                ya + (yb - ya) * t1 + 1e-3,
                ha + (hb - ha) * t0,
                ha + (hb - ha) * t1,
            ),
            fill=c,
        )
