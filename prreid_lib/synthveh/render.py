"""Drawing one SynthVeh vehicle, front or rear view, and its part boxes.

A vehicle is vector art in *vehicle units* (width 1, x from -0.5 to 0.5, y from
the roof down): a model-specific silhouette (:class:`ModelSpec`), a body colour
and identity cues (:class:`Cues`). :func:`draw_vehicle` maps every point
through a 3x3 homography (the camera, built in :mod:`prreid_lib.synthveh.scene`)
before drawing, so the tight part boxes of the paper's parts (window, two
lights, brand; Sec. 3.2) are exact after the camera geometry: each box's
corners go through the same map and the axis-aligned hull is kept. Identity
cues inside parts (:mod:`prreid_lib.synthveh.part_art`) are drawn with opacity
``1 - outside_share``, those outside (roof, hood stripes, mirror caps, bumper
sticker, wheels) with ``outside_share``.
"""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from prreid_lib.synthveh.part_art import draw_badge, draw_lights, draw_window
from prreid_lib.synthveh.shapes import (
    CUE_COLOURS,
    Box,
    Pen,
    banded,
    ellipse,
    rgba,
    rrect,
    shade,
    trap,
)
from prreid_lib.synthveh.world import Cues, ModelSpec


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
                fill=rgba(CUE_COLOURS[cues.wheel], k_out),
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
    banded(pen, 0.0, y_ws0, rw2 - 0.04, rw2, shade(base, 1.12), shade(base, 1.04), 3)
    banded(pen, y_ws1, y_f0 + 0.02, bw2, 0.5, shade(base, 1.1), shade(base, 0.97), 4)
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
    pen.poly(trap(y_f1 - m.face_h * 0.32, y_f1 - 0.002, 0.5, 0.5 - c), fill=shade(base, 0.74))
    # window
    draw_window(pen, m, cues, view, y_ws0 + 0.012, y_ws1 - 0.01, ws_top, ws_bot, look, k_in, s)
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
            pen.poly(mp, fill=rgba(CUE_COLOURS[cues.mirror], k_out))
    # outside-part cues on roof and hood/deck
    if k_out > 0:
        if cues.roof == 1:
            for yy in (0.25, 0.7):
                pen.line(
                    [(-rw2 + 0.06, y_ws0 * yy), (rw2 - 0.06, y_ws0 * yy)],
                    rgba((25, 25, 28), k_out),
                    0.012 * s,
                )
        elif cues.roof == 2:
            pen.poly(
                rrect(-rw2 * 0.6, 0.005, rw2 * 0.6, y_ws0 * 0.85, 0.01),
                fill=rgba(CUE_COLOURS[cues.roof_colour], k_out),
            )
        if cues.stripe is not None and (m.hood_h if front else m.deck_h) > 0.03:
            ci, n = cues.stripe
            for j in range(n):
                off = (j - (n - 1) / 2) * 0.07
                pen.poly(
                    trap(y_ws1 + 0.005, y_f0 - 0.005, 0.018 * s, 0.022 * s) + (off, 0),
                    fill=rgba(CUE_COLOURS[ci], k_out * 0.9),
                )
    # front or rear face
    ly = y_f0 + m.light_y * m.face_h
    lights = draw_lights(pen, m, cues, view, ly, k_in, s)
    xi = 0.485 - (m.light_w if front else m.tail_w)
    if front:
        gy0 = ly + m.light_h * 0.15 if m.light_y < 0.4 else y_f0 + 0.03
        gh = m.grille_h * m.face_h
        gx = min(xi - 0.03, m.grille_w)
        pen.poly(trap(gy0, gy0 + gh, gx, gx * 0.92), fill=(26, 27, 30))
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
    brand = draw_badge(pen, m, cues, 0.0, by, k_in, s)
    # lower face: intake, fog lamps / exhausts, plate, bumper sticker (outside cue)
    py = y_f1 - m.face_h * 0.24
    if front:
        pen.poly(trap(py + 0.035, y_f1 - 0.025, 0.3, 0.26), fill=(30, 31, 34))
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
            fill=rgba(CUE_COLOURS[cues.bumper], k_out),
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
