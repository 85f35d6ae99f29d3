"""The paper's three parts drawn with their identity cues (Sec. 3.2, Fig. 3).

Window: glass, interior, stickers and inspection labels, a hanging ornament,
dashboard (or parcel-shelf) items, a sun-shade band. Lights: model-specific
outline, lens, aftermarket tint and daytime-light pattern (front) or tail-light
tint and pattern (rear). Brand: the make's glyph with the identity's badge
finish, badge plate and extra emblem. Cue opacity is ``k`` (1 - outside share),
size and contrast grow with ``strength`` (``SynthConfig.cue_strength``).
"""

from __future__ import annotations

import numpy as np

from prreid_lib.synthveh.shapes import (
    CUE_COLOURS,
    Box,
    Pen,
    badge_glyph,
    banded,
    ellipse,
    hull,
    light_shape,
    mix,
    rgba,
    rrect,
    trap,
)
from prreid_lib.synthveh.world import Cues, ModelSpec


def draw_window(
    pen: Pen, m: ModelSpec, cues: Cues, view: str, ya, yb, ha, hb, look, k: float, strength: float
) -> None:
    """Glass, interior and the window cues (stickers, ornament, dashboard items)."""
    sky = look["sky"]
    banded(pen, ya, yb, ha, hb, mix(sky, (35, 40, 48), 0.55), (22, 24, 28), 6)
    wpt = lambda u, v: (u * (ha + (hb - ha) * v), ya + v * (yb - ya))  # noqa: E731
    hgt = yb - ya
    if look["driver"] and view == "front":  # scene-dependent interior (not an identity cue)
        for u in (-0.45, 0.45):
            cx, cy = wpt(u, 0.55)
            pen.poly(ellipse(cx, cy, 0.07, hgt * 0.28), fill=(14, 15, 18))
        cx, cy = wpt(0.45 if look["lhd"] else -0.45, 0.5)
        pen.poly(ellipse(cx, cy, 0.045, hgt * 0.14), fill=(120, 96, 84))
    dash_y = ya + hgt * 0.86
    pen.poly(trap(dash_y, yb, ha + (hb - ha) * 0.86, hb), fill=(12, 12, 14))
    if view == "front":
        pen.poly(rrect(-0.035, ya + hgt * 0.02, 0.035, ya + hgt * 0.13, 0.01), fill=(10, 10, 12))
        for s in (-1, 1):
            pen.line([(s * 0.05, yb - 0.004), (s * 0.36, yb - hgt * 0.1)], (8, 8, 8), 0.008)
    elif m.wiper:
        pen.line([(0.0, yb - 0.01), (-0.3, yb - hgt * 0.35)], (8, 8, 8), 0.008)
    if m.brake3 and view == "rear":
        pen.poly(rrect(-0.1, ya + 0.006, 0.1, ya + 0.018, 0.004), fill=(170, 20, 22))
    if k > 0:
        sz = strength
        if cues.sunshade is not None and view == "front":
            c = CUE_COLOURS[cues.sunshade]
            pen.poly(
                trap(ya, ya + hgt * 0.16 * min(sz, 1.6), ha, ha + (hb - ha) * 0.2),
                fill=rgba(c, 0.45 * k * min(1, sz)),
            )
        stickers = cues.stickers if view == "front" else cues.rear_stickers
        for u, v, w, h, ci in stickers:
            cx, cy = wpt(u, v)
            hw, hh = 0.5 * w * sz * 0.05, 0.5 * h * sz * 0.05
            pen.poly(
                rrect(cx - hw, cy - hh, cx + hw, cy + hh, 0.15 * hw),
                fill=rgba(CUE_COLOURS[ci], k * min(1.0, 0.3 + 0.45 * sz)),
            )
        if cues.ornament is not None and view == "front":
            ci, shape, length = cues.ornament
            top = ya + hgt * 0.13
            bot = top + hgt * length * min(1.0, 0.45 + 0.35 * sz)
            a = k * min(1.0, 0.3 + 0.45 * sz)
            pen.line([(0, top), (0, bot)], rgba((200, 190, 150), a), 0.006)
            r = 0.018 * sz
            pts = (
                ellipse(0, bot + r, r, r * 1.2, 10)
                if shape == 0
                else np.array(
                    [
                        (0, bot),
                        (r * 1.2, bot + r * 1.4),
                        (0, bot + r * 2.8),
                        (-r * 1.2, bot + r * 1.4),
                    ]
                )
            )
            pen.poly(pts, fill=rgba(CUE_COLOURS[ci], a))
        items = cues.dash if view == "front" else cues.rear_items
        for u, w, h, ci in items:
            cx, _ = wpt(u, 0.86)
            hw, hh = 0.5 * w * sz * 0.7, h * sz * 0.7
            pen.poly(
                rrect(cx - hw, dash_y - hh, cx + hw, dash_y + 0.004, hw * 0.2),
                fill=rgba(CUE_COLOURS[ci], k * min(1.0, 0.3 + 0.45 * sz)),
            )
    # windshield reflection (camera/illumination, not identity)
    r0, rw = look["refl"]
    pen.poly(
        [wpt(r0, 0.02), wpt(r0 + rw, 0.02), wpt(r0 + rw - 0.5, 0.98), wpt(r0 - 0.5, 0.98)],
        fill=(255, 255, 255, look["refl_a"]),
    )


def draw_lights(
    pen: Pen, m: ModelSpec, cues: Cues, view: str, y0: float, k: float, strength: float
) -> list[Box]:
    """Both lights (image-left first); returns their tight boxes in canvas pixels."""
    front = view == "front"
    style = m.light_style if front else m.tail_style
    lw, lh = (m.light_w, m.light_h) if front else (m.tail_w, m.tail_h)
    xo, xi = 0.485, 0.485 - lw
    if front:
        lens, housing = (205, 212, 218), (70, 74, 80)
        tint = [None, (40, 42, 46), (235, 150, 40), (90, 140, 235), (235, 220, 90)][cues.light_tint]
        tint_a = min(0.85, 0.5 * strength) * k
    else:
        lens, housing = (185, 28, 30), (70, 16, 18)
        tint = [None, (40, 20, 22), (230, 230, 225), (105, 10, 14)][cues.tail_tint]
        tint_a = min(0.85, 0.5 * strength) * k
    boxes = []
    for side in (-1, 1):

        def loc(st, _side=side):
            st = np.asarray(st, dtype=np.float64).reshape(-1, 2)
            x = _side * (xo - st[:, 0] * (xo - xi))
            return np.stack([x, y0 + st[:, 1] * lh], axis=1)

        shape = loc(light_shape(style))
        pen.poly(shape, fill=housing)
        inner = loc(light_shape(style, inset=0.12))
        pen.poly(inner, fill=lens)
        if tint is not None and tint_a > 0:
            pen.poly(inner, fill=rgba(tint, tint_a))
        if front:  # projector lens (model detail)
            cx, cy = loc([(0.38, 0.5)])[0]
            pen.poly(ellipse(cx, cy, lw * 0.14, lh * 0.24, 10), fill=(245, 247, 250))
        pattern = cues.drl if front else cues.tail_pattern
        if pattern and k > 0:
            col = CUE_COLOURS[cues.drl_colour] if front else (255, 235, 230)
            a, wd = k * min(1.0, 0.35 + 0.4 * strength), 0.006 * strength
            if pattern == 1:
                pen.line(loc([(0.1, 0.82), (0.92, 0.82)]), rgba(col, a), wd)
            elif pattern == 2:
                pen.line(loc([(0.9, 0.2), (0.1, 0.2), (0.1, 0.85)]), rgba(col, a), wd)
            elif pattern == 3:
                cx, cy = loc([(0.38, 0.5)])[0]
                pen.poly(
                    ellipse(cx, cy, lw * 0.22, lh * 0.36, 12),
                    fill=None,
                    outline=rgba(col, a),
                    width=wd,
                )
            else:
                for s in (0.62, 0.74, 0.86):
                    cx, cy = loc([(s, 0.5)])[0]
                    r = 0.008 * strength
                    pen.poly(ellipse(cx, cy, r, r, 6), fill=rgba(col, a))
        boxes.append(pen.box(*hull(shape)))
    return boxes


def draw_badge(
    pen: Pen, m: ModelSpec, cues: Cues, cx: float, cy: float, k: float, strength: float
) -> Box:
    """Make glyph with its identity variant; returns the brand part box (head area)."""
    r = m.badge_size
    chrome = (214, 216, 220)
    variant = [chrome, (18, 18, 20), (205, 168, 60), (205, 35, 35), (45, 95, 210)][cues.badge]
    colour = mix(chrome, variant, min(1.0, 0.55 * strength) * k)
    if cues.badge_bg and k > 0:
        bg = ellipse(cx, cy, r * (1.25 if cues.badge_bg == 1 else 1.7), r * 1.25, 14)
        pen.poly(bg, fill=rgba((20, 40, 110), k * min(1.0, 0.35 + 0.4 * strength)))
    for kind, pts, width in badge_glyph(m.glyph, cx, cy, r):
        if kind == "fill":
            pen.poly(pts, fill=colour)
        else:
            pen.line(pts, colour, width)
    if cues.emblem is not None and k > 0:
        ex = cx + r * 1.9
        e = 0.35 * r * min(strength, 1.6)
        pen.poly(
            rrect(ex - e, cy - e, ex + e, cy + e, e * 0.3),
            fill=rgba(CUE_COLOURS[cues.emblem], k * min(1.0, 0.3 + 0.45 * strength)),
        )
    bw, bh = r * 2.6, r * 1.9
    return pen.box(cx - bw, cy - bh, cx + bw, cy + bh)
