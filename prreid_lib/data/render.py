"""Drawing one SynthVeh vehicle, front or rear view, and its part boxes.

A vehicle is vector art in *vehicle units* (width 1, x from -0.5 to 0.5, y from
the roof down): a model-specific silhouette (:class:`ModelSpec`), a body colour
and identity cues (:class:`Cues`). :func:`draw_vehicle` maps every point
through a 3x3 homography (the camera, built in :mod:`prreid_lib.data.scene`)
before drawing, so the tight part boxes of the paper's parts (window, two
lights, brand; Sec. 3.2) are exact after the camera geometry: each box's
corners go through the same map and the axis-aligned hull is kept. Identity
cues inside parts are scaled by ``cue_in``, those outside by ``cue_out``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from prreid_lib.data.shapes import CUE_COLOURS, badge_glyph, ellipse, light_shape, mix, rrect, shade
from prreid_lib.data.world import Cues, ModelSpec

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


def _hull(pts: np.ndarray) -> tuple[float, float, float, float]:
    p = np.asarray(pts).reshape(-1, 2)
    return p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()


def _alpha(rgb, a: float) -> tuple[int, int, int, int]:
    return (*(int(c) for c in rgb[:3]), int(round(255 * float(np.clip(a, 0.0, 1.0)))))


def _trap(ya: float, yb: float, ha: float, hb: float) -> np.ndarray:
    """Symmetric trapezoid: half-width ``ha`` at y ``ya``, ``hb`` at ``yb``."""
    return np.array([(-ha, ya), (ha, ya), (hb, yb), (-hb, yb)])


def _banded(pen: Pen, ya, yb, ha, hb, top, bottom, n: int = 5) -> None:
    """Trapezoid filled with a vertical gradient from ``top`` to ``bottom`` (n bands)."""
    for i in range(n):
        t0, t1 = i / n, (i + 1) / n
        c = mix(top, bottom, (t0 + t1) / 2)
        pen.poly(
            _trap(
                ya + (yb - ya) * t0,
                ya + (yb - ya) * t1 + 1e-3,
                ha + (hb - ha) * t0,
                ha + (hb - ha) * t1,
            ),
            fill=c,
        )


def _window(
    pen: Pen, m: ModelSpec, cues: Cues, view: str, ya, yb, ha, hb, look, k: float, strength: float
) -> None:
    """Glass, interior and the window cues (stickers, ornament, dashboard items)."""
    sky = look["sky"]
    _banded(pen, ya, yb, ha, hb, mix(sky, (35, 40, 48), 0.55), (22, 24, 28), 6)
    wpt = lambda u, v: (u * (ha + (hb - ha) * v), ya + v * (yb - ya))  # noqa: E731
    hgt = yb - ya
    if look["driver"] and view == "front":  # scene-dependent interior (not an identity cue)
        for u in (-0.45, 0.45):
            cx, cy = wpt(u, 0.55)
            pen.poly(ellipse(cx, cy, 0.07, hgt * 0.28), fill=(14, 15, 18))
        cx, cy = wpt(0.45 if look["lhd"] else -0.45, 0.5)
        pen.poly(ellipse(cx, cy, 0.045, hgt * 0.14), fill=(120, 96, 84))
    dash_y = ya + hgt * 0.86
    pen.poly(_trap(dash_y, yb, ha + (hb - ha) * 0.86, hb), fill=(12, 12, 14))
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
                _trap(ya, ya + hgt * 0.16 * min(sz, 1.6), ha, ha + (hb - ha) * 0.2),
                fill=_alpha(c, 0.45 * k * min(1, sz)),
            )
        stickers = cues.stickers if view == "front" else cues.rear_stickers
        for u, v, w, h, ci in stickers:
            cx, cy = wpt(u, v)
            hw, hh = 0.5 * w * sz * 0.05, 0.5 * h * sz * 0.05
            pen.poly(
                rrect(cx - hw, cy - hh, cx + hw, cy + hh, 0.15 * hw),
                fill=_alpha(CUE_COLOURS[ci], k * min(1.0, 0.3 + 0.45 * sz)),
            )
        if cues.ornament is not None and view == "front":
            ci, shape, length = cues.ornament
            top = ya + hgt * 0.13
            bot = top + hgt * length * min(1.0, 0.45 + 0.35 * sz)
            a = k * min(1.0, 0.3 + 0.45 * sz)
            pen.line([(0, top), (0, bot)], _alpha((200, 190, 150), a), 0.006)
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
            pen.poly(pts, fill=_alpha(CUE_COLOURS[ci], a))
        items = cues.dash if view == "front" else cues.rear_items
        for u, w, h, ci in items:
            cx, _ = wpt(u, 0.86)
            hw, hh = 0.5 * w * sz * 0.7, h * sz * 0.7
            pen.poly(
                rrect(cx - hw, dash_y - hh, cx + hw, dash_y + 0.004, hw * 0.2),
                fill=_alpha(CUE_COLOURS[ci], k * min(1.0, 0.3 + 0.45 * sz)),
            )
    # windshield reflection (camera/illumination, not identity)
    r0, rw = look["refl"]
    pen.poly(
        [wpt(r0, 0.02), wpt(r0 + rw, 0.02), wpt(r0 + rw - 0.5, 0.98), wpt(r0 - 0.5, 0.98)],
        fill=(255, 255, 255, look["refl_a"]),
    )


def _lights(
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
            pen.poly(inner, fill=_alpha(tint, tint_a))
        if front:  # projector lens (model detail)
            cx, cy = loc([(0.38, 0.5)])[0]
            pen.poly(ellipse(cx, cy, lw * 0.14, lh * 0.24, 10), fill=(245, 247, 250))
        pattern = cues.drl if front else cues.tail_pattern
        if pattern and k > 0:
            col = CUE_COLOURS[cues.drl_colour] if front else (255, 235, 230)
            a, wd = k * min(1.0, 0.35 + 0.4 * strength), 0.006 * strength
            if pattern == 1:
                pen.line(loc([(0.1, 0.82), (0.92, 0.82)]), _alpha(col, a), wd)
            elif pattern == 2:
                pen.line(loc([(0.9, 0.2), (0.1, 0.2), (0.1, 0.85)]), _alpha(col, a), wd)
            elif pattern == 3:
                cx, cy = loc([(0.38, 0.5)])[0]
                pen.poly(
                    ellipse(cx, cy, lw * 0.22, lh * 0.36, 12),
                    fill=None,
                    outline=_alpha(col, a),
                    width=wd,
                )
            else:
                for s in (0.62, 0.74, 0.86):
                    cx, cy = loc([(s, 0.5)])[0]
                    r = 0.008 * strength
                    pen.poly(ellipse(cx, cy, r, r, 6), fill=_alpha(col, a))
        boxes.append(pen.box(*_hull(shape)))
    return boxes


def _badge(
    pen: Pen, m: ModelSpec, cues: Cues, cx: float, cy: float, k: float, strength: float
) -> Box:
    """Make glyph with its identity variant; returns the brand part box (head area)."""
    r = m.badge_size
    chrome = (214, 216, 220)
    variant = [chrome, (18, 18, 20), (205, 168, 60), (205, 35, 35), (45, 95, 210)][cues.badge]
    colour = mix(chrome, variant, min(1.0, 0.55 * strength) * k)
    if cues.badge_bg and k > 0:
        bg = ellipse(cx, cy, r * (1.25 if cues.badge_bg == 1 else 1.7), r * 1.25, 14)
        pen.poly(bg, fill=_alpha((20, 40, 110), k * min(1.0, 0.35 + 0.4 * strength)))
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
            fill=_alpha(CUE_COLOURS[cues.emblem], k * min(1.0, 0.3 + 0.45 * strength)),
        )
    bw, bh = r * 2.6, r * 1.9
    return pen.box(cx - bw, cy - bh, cx + bw, cy + bh)


def vertical_layout(m: ModelSpec, view: str, elev: float) -> tuple[float, ...]:
    """y of window top, window bottom, face top, face bottom and tyre bottom (vehicle units).

    ``elev`` >= 1 is the camera's elevation: a higher camera sees more of the
    roof and hood (or trunk deck) and a little more of the window.
    """
    front = view == "front"
    y_ws0 = m.roof_h * elev
    y_ws1 = y_ws0 + (m.ws_h if front else m.rw_h) * (0.5 + 0.5 * elev)
    y_f0 = y_ws1 + (m.hood_h if front else m.deck_h) * elev
    y_f1 = y_f0 + m.face_h
    return y_ws0, y_ws1, y_f0, y_f1, y_f1 + 0.05


def draw_vehicle(
    draw: ImageDraw.ImageDraw,
    H: np.ndarray,
    m: ModelSpec,
    body: tuple,
    cues: Cues,
    view: str,
    yaw: float,
    look: dict,
    cue_strength: float,
    outside_share: float,
) -> dict[str, Box]:
    """Draw one vehicle through homography ``H``; return canvas-pixel part boxes.

    ``view`` is ``front`` or ``rear``; ``yaw`` in [-0.5, 0.5] shows a side panel
    and shifts the upper body (parallax); ``look`` holds the scene's own random
    draws (driver, reflections, plate) so two identities rendered with the same
    scene differ only by their cues. Returns boxes ``vehicle``, ``window``,
    ``light_left``, ``light_right`` and ``brand`` (tight, not extended).
    """
    front = view == "front"
    k_in, k_out = 1.0 - outside_share, outside_share
    s = cue_strength
    y_ws0, y_ws1, y_f0, y_f1, y_b = vertical_layout(m, view, look["elev"])
    sc = float(np.hypot(H[0, 0], H[1, 0]) / max(H[2, 2], 1e-9))
    pen = Pen(draw, H, yaw, y_f0, sc)
    base = tuple(body)
    ws_top, ws_bot = m.roof_w / 2 - 0.03, m.ws_bot_w / 2 - (0 if front else 0.05)
    # shadow and tyres
    pen.poly(ellipse(0, y_b - 0.01, 0.62, 0.05, 16), fill=(0, 0, 0, 90))
    for sx in (-1, 1):
        pen.poly(
            rrect(sx * 0.46 - 0.06, y_f1 - 0.05, sx * 0.46 + 0.06, y_b, 0.015), fill=(18, 18, 20)
        )
    side = 1 if yaw >= 0 else -1
    sw = abs(yaw) * 0.24
    if sw > 0.004:  # visible side panel, side window and rear wheel
        x0, x1 = side * 0.5, side * (0.5 + sw)
        pen.poly(
            [(side * m.belt_w / 2, y_ws1), (x1, y_ws1 + 0.02), (x1, y_f1 - 0.02), (x0, y_f1)],
            fill=shade(base, 0.72),
        )
        pen.poly(
            [
                (side * m.belt_w / 2, y_ws1),
                (side * m.roof_w / 2, y_ws0 + 0.01),
                (side * (m.roof_w / 2 + sw * 0.8), y_ws0 + 0.03),
                (x1, y_ws1 + 0.02),
            ],
            fill=(30, 33, 38),
        )
        wx = side * (0.5 + sw * 0.55)
        pen.poly(ellipse(wx, y_f1 - 0.03, sw * 0.35, 0.07, 12), fill=(18, 18, 20))
        if cues.wheel is not None and k_out > 0:
            pen.poly(
                ellipse(wx, y_f1 - 0.03, sw * 0.2, 0.04, 10),
                fill=_alpha(CUE_COLOURS[cues.wheel], k_out),
            )
    # body silhouette
    rw2, bw2 = m.roof_w / 2, m.belt_w / 2
    c = m.corner
    outline = np.array(
        [
            (-rw2 + 0.04, 0),
            (rw2 - 0.04, 0),
            (rw2, y_ws0),
            (bw2, y_ws1),
            (0.5, y_f0 + 0.02),
            (0.5, y_f1 - c),
            (0.5 - c, y_f1),
            (-0.5 + c, y_f1),
            (-0.5, y_f1 - c),
            (-0.5, y_f0 + 0.02),
            (-bw2, y_ws1),
            (-rw2, y_ws0),
        ]
    )
    pen.poly(outline, fill=shade(base, 0.9))
    _banded(pen, 0.0, y_ws0, rw2 - 0.04, rw2, shade(base, 1.12), shade(base, 1.04), 3)
    _banded(pen, y_ws1, y_f0 + 0.02, bw2, 0.5, shade(base, 1.1), shade(base, 0.97), 4)
    for sx in (-1, 1):  # hood creases, face curvature
        pen.line([(sx * 0.2, y_ws1 + 0.01), (sx * 0.26, y_f0 - 0.005)], shade(base, 0.86), 0.006)
        pen.poly(
            [
                (sx * 0.5, y_f0 + 0.02),
                (sx * 0.43, y_f0 + 0.02),
                (sx * 0.44, y_f1 - c),
                (sx * (0.5 - c), y_f1),
                (sx * 0.5, y_f1 - c),
            ],
            fill=(0, 0, 0, 28),
        )
    pen.line([(-0.5, y_f0 + 0.02), (0.5, y_f0 + 0.02)], shade(base, 0.7), 0.007)
    hl = look["hood_hl"]
    pen.poly(
        [
            (hl - 0.18, y_ws1 + 0.015),
            (hl + 0.02, y_ws1 + 0.015),
            (hl + 0.12, y_f0 - 0.01),
            (hl - 0.06, y_f0 - 0.01),
        ],
        fill=(255, 255, 255, 26),
    )
    pen.poly(_trap(y_f1 - m.face_h * 0.32, y_f1 - 0.002, 0.5, 0.5 - c), fill=shade(base, 0.74))
    # window
    _window(pen, m, cues, view, y_ws0 + 0.012, y_ws1 - 0.01, ws_top, ws_bot, look, k_in, s)
    win = pen.box(
        -ws_bot if ws_bot > ws_top else -ws_top, y_ws0 + 0.012, max(ws_bot, ws_top), y_ws1 - 0.01
    )
    # mirrors (with outside cue: cap colour)
    for sx in (-1, 1):
        mp = np.array(
            [
                (sx * (bw2 - 0.02), y_ws1 - 0.06),
                (sx * (bw2 + m.mirror), y_ws1 - 0.07),
                (sx * (bw2 + m.mirror), y_ws1 - 0.025),
                (sx * (bw2 - 0.01), y_ws1 - 0.02),
            ]
        )
        pen.poly(mp, fill=shade(base, 0.85))
        if cues.mirror is not None and k_out > 0:
            pen.poly(mp, fill=_alpha(CUE_COLOURS[cues.mirror], k_out))
    # outside-part cues on roof and hood/deck
    if k_out > 0:
        if cues.roof == 1:
            for yy in (0.25, 0.7):
                pen.line(
                    [(-rw2 + 0.06, y_ws0 * yy), (rw2 - 0.06, y_ws0 * yy)],
                    _alpha((25, 25, 28), k_out),
                    0.012 * s,
                )
        elif cues.roof == 2:
            pen.poly(
                rrect(-rw2 * 0.6, 0.005, rw2 * 0.6, y_ws0 * 0.85, 0.01),
                fill=_alpha(CUE_COLOURS[cues.roof_colour], k_out),
            )
        if cues.stripe is not None and (m.hood_h if front else m.deck_h) > 0.03:
            ci, n = cues.stripe
            for j in range(n):
                off = (j - (n - 1) / 2) * 0.07
                pen.poly(
                    _trap(y_ws1 + 0.005, y_f0 - 0.005, 0.018 * s, 0.022 * s) + (off, 0),
                    fill=_alpha(CUE_COLOURS[ci], k_out * 0.9),
                )
    # front or rear face
    ly = y_f0 + m.light_y * m.face_h
    lights = _lights(pen, m, cues, view, ly, k_in, s)
    xi = 0.485 - (m.light_w if front else m.tail_w)
    if front:
        gy0 = ly + m.light_h * 0.15 if m.light_y < 0.4 else y_f0 + 0.03
        gh = m.grille_h * m.face_h
        gx = min(xi - 0.03, m.grille_w)
        pen.poly(_trap(gy0, gy0 + gh, gx, gx * 0.92), fill=(26, 27, 30))
        for j in range(1, 4):  # grille slats / mesh (model-specific)
            yy = gy0 + gh * j / 4
            if m.grille_style in (0, 3):
                pen.line([(-gx * 0.9, yy), (gx * 0.9, yy)], (88, 90, 96), 0.008)
        if m.grille_style in (1, 2):
            for j in range(-3, 4):
                pen.line(
                    [(gx * j / 4, gy0 + 0.01), (gx * j / 4 * 0.95, gy0 + gh - 0.01)],
                    (80, 82, 88),
                    0.006,
                )
        by = gy0 + gh * 0.45 if m.badge_on_grille else y_f0 + 0.012 + m.badge_size
    else:
        by = ly + m.tail_h * 0.5
        pen.line(
            [(-xi + 0.02, ly + m.tail_h * 0.2), (xi - 0.02, ly + m.tail_h * 0.2)],
            shade(base, 0.65),
            0.005,
        )
    brand = _badge(pen, m, cues, 0.0, by, k_in, s)
    # lower face: intake, fog lamps / exhausts, plate, bumper sticker (outside cue)
    py = y_f1 - m.face_h * 0.24
    if front:
        pen.poly(_trap(py + 0.035, y_f1 - 0.025, 0.3, 0.26), fill=(30, 31, 34))
        if m.fog:
            for sx in (-1, 1):
                pen.poly(ellipse(sx * 0.37, py + 0.045, 0.03, 0.018, 10), fill=(200, 200, 190))
    else:
        for sx in (-1,) if m.glyph % 2 else (-1, 1):
            pen.poly(ellipse(sx * 0.3, y_f1 - 0.012, 0.035, 0.014, 10), fill=(15, 15, 15))
    plate = (200, 160, 20) if m.type_id in (7, 8) else (25, 60, 165)
    pen.poly(rrect(-0.11, py - 0.03, 0.11, py + 0.03, 0.006), fill=plate)
    for j, hgt in enumerate(look["plate"]):
        xx = -0.09 + j * 0.03
        pen.poly(
            [(xx, py - hgt), (xx + 0.018, py - hgt), (xx + 0.018, py + hgt), (xx, py + hgt)],
            fill=(235, 235, 235),
        )
    if cues.bumper is not None and k_out > 0:
        e = 0.025 * s
        pen.poly(
            rrect(-0.08, py + 0.035, -0.08 + 2.4 * e, py + 0.035 + e, e * 0.2),
            fill=_alpha(CUE_COLOURS[cues.bumper], k_out),
        )
    vx0, vx1 = -0.5 - (sw if side < 0 else 0), 0.5 + (sw if side > 0 else 0)
    vehicle = pen.box(min(vx0, -bw2 - m.mirror), 0.0, max(vx1, bw2 + m.mirror), y_b)
    return {
        "vehicle": vehicle,
        "window": win,
        "light_left": lights[0],
        "light_right": lights[1],
        "brand": brand,
    }
