"""Cameras, backgrounds and the image pipeline of SynthVeh.

A :class:`Camera` fixes a viewpoint (yaw, pitch keystone, roll, shear), a crop
size, illumination, colour cast, blur, resolution, noise, a road background
and an occluder habit (a pole or another car's edge). :func:`sample_scene`
draws one image's variation around its camera, and :func:`render_image`
composes background, vehicle (:func:`prreid_lib.synthveh.render.draw_vehicle`,
drawn at 2x and reduced) and occluder, degrades the picture like a traffic
camera, and returns the image with its part boxes and visibility flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from prreid_lib.synthveh.render import draw_vehicle, vertical_layout
from prreid_lib.synthveh.shapes import ellipse, shade, triple
from prreid_lib.synthveh.world import COLOURS, Cues, ModelSpec

PART_KEYS = ("vehicle", "window", "light_left", "light_right", "brand")
"""Keys of the box dict returned by :func:`render_image`."""


@dataclass(frozen=True)
class Camera:
    """Fixed properties of one camera (VeRi-776) or of one VehicleID shot."""

    cam_id: int
    width: int
    elev: float
    yaw: float
    pitch: float
    roll: float
    shear: float
    fill: float
    brightness: float
    contrast: float
    gamma: float
    cast: tuple[float, float, float]
    light_dir: float
    blur: float
    res: float
    noise: float
    p_front: float
    occluder: int
    p_occ: float
    pole_x: float
    road: tuple[int, int, int]
    lanes: int
    lane_angle: float
    sky: tuple[int, int, int]


def sample_camera(
    rng: np.random.Generator, cam_id: int, image_size: int, kind: str = "veri"
) -> Camera:
    """A random camera; ``kind='vehicleid'`` gives milder yaw and fewer occlusions."""
    veri = kind == "veri"
    width = int(2 * round(image_size * rng.uniform(0.88, 1.12) / 2))
    grey = rng.uniform(70, 135)
    tint = rng.uniform(-8, 8, 3)
    return Camera(
        cam_id=cam_id,
        width=width,
        elev=float(rng.uniform(1.1, 1.6) if veri else rng.uniform(1.1, 1.45)),
        yaw=float(rng.uniform(-0.45, 0.45) if veri else rng.uniform(-0.18, 0.18)),
        pitch=float(rng.uniform(0.05, 0.3)),
        roll=float(rng.uniform(-5, 5) if veri else rng.uniform(-2, 2)),
        shear=float(rng.uniform(-0.06, 0.06)),
        fill=float(rng.uniform(0.8, 0.93)),
        brightness=float(rng.uniform(0.72, 1.18)),
        contrast=float(rng.uniform(0.8, 1.1)),
        gamma=float(rng.uniform(0.85, 1.2)),
        cast=triple(float(x) for x in rng.uniform(0.88, 1.12, 3)),
        light_dir=float(rng.uniform(-0.25, 0.25)),
        blur=float(rng.uniform(0.0, 0.9)),
        res=float(rng.uniform(0.45, 1.0)),
        noise=float(rng.uniform(1.5, 5.0)),
        p_front=float(rng.choice([0.15, 0.5, 0.85])) if veri else 0.5,
        occluder=int(rng.choice(3, p=[0.3, 0.4, 0.3]))
        if veri
        else int(rng.choice(3, p=[0.8, 0.1, 0.1])),
        p_occ=float(rng.uniform(0.2, 0.5)),
        pole_x=float(rng.uniform(0.15, 0.85)),
        road=triple(int(np.clip(grey + t, 0, 255)) for t in tint),
        lanes=int(rng.integers(4)),
        lane_angle=float(rng.uniform(-0.3, 0.3)),
        sky=triple(int(x) for x in rng.uniform(120, 215, 3)),
    )


_BG_CACHE: dict[tuple, np.ndarray] = {}


def background_texture(cam: Camera, key: tuple) -> np.ndarray:
    """Road texture (uint8, 2x the crop size): grain, stains, lane marks, a kerb; cached."""
    ck = (*key, cam.width)
    if ck in _BG_CACHE:
        return _BG_CACHE[ck]
    rng = np.random.default_rng(list(key))
    w, h = int(cam.width * 2.2), int(cam.width * 2.2 * 1.6)
    low = rng.normal(0, 1, (h // 24 + 2, w // 24 + 2))
    low = (
        np.asarray(
            Image.fromarray(((low + 3) * 40).clip(0, 255).astype(np.uint8)).resize(
                (w, h), Image.Resampling.BICUBIC
            ),
            dtype=np.float32,
        )
        / 40
        - 3
    )
    base = np.array(cam.road, dtype=np.float32) + low[..., None] * 9 + rng.normal(0, 6, (h, w, 1))
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(2, 6))):  # stains, patches, manholes
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, w / 6)
        d.polygon(
            [tuple(p) for p in ellipse(cx, cy, r, r * rng.uniform(0.3, 1), 12)],
            fill=(20, 20, 22, int(rng.integers(20, 70))),
        )
    lane_col = (235, 235, 230, 200) if cam.lanes != 2 else (230, 190, 40, 210)
    if cam.lanes in (1, 2):
        for x in rng.uniform(0, w, 2):
            dash = cam.lanes == 1
            for y in range(-h, 2 * h, h // 3 if dash else 2 * h):
                y1 = y + (h // 6 if dash else 4 * h)
                d.line(
                    [(x + cam.lane_angle * y, y), (x + cam.lane_angle * y1, y1)],
                    fill=lane_col,
                    width=max(2, w // 50),
                )
    elif cam.lanes == 3:  # zebra crossing
        y0 = rng.uniform(0, h * 0.6)
        for x in range(0, w, w // 8):
            d.rectangle([x, y0, x + w // 16, y0 + h * 0.35], fill=(230, 230, 225, 170))
    side = rng.integers(2)
    kx = rng.uniform(0.02, 0.12) * w
    kerb = [(0, 0), (kx, 0), (kx + 0.2 * w * cam.lane_angle, h), (0, h)]
    if side:
        kerb = [(w - x, y) for x, y in kerb]
    d.polygon(kerb, fill=(150, 150, 145) if rng.random() < 0.5 else (70, 105, 60))
    arr = np.asarray(img)
    if len(_BG_CACHE) > 64:
        _BG_CACHE.clear()
    _BG_CACHE[ck] = arr
    return arr


@dataclass(frozen=True)
class Scene:
    """One image's draws: placement, pose jitter, occluder, lighting jitter, noise seed."""

    camera: Camera
    bg_key: tuple
    yaw: float
    scale_jitter: float
    margin: float
    dx: float
    dy: float
    bg_xy: tuple[float, float]
    look: dict
    occ: tuple | None
    bright: float
    noise_seed: int


def sample_scene(
    cam: Camera,
    bg_key: tuple,
    rng: np.random.Generator,
    track_rng: np.random.Generator | None = None,
) -> Scene:
    """One image's variation; draws from ``track_rng`` (shared by a track) when given."""
    t = track_rng if track_rng is not None else rng
    yaw = float(np.clip(cam.yaw + t.normal(0, 0.04), -0.5, 0.5))
    bright = float(t.normal(0, 0.06))
    look = {
        "driver": bool(t.random() < 0.65),
        "lhd": True,
        "sky": cam.sky,
        "refl": (float(rng.uniform(-0.6, 0.8)), float(rng.uniform(0.15, 0.35))),
        "refl_a": int(rng.integers(8, 40)),
        "hood_hl": float(rng.uniform(-0.3, 0.3)),
        "elev": cam.elev * float(t.uniform(0.95, 1.05)),
        "plate": tuple(float(x) for x in t.uniform(0.008, 0.017, 6)),
    }
    occ = None
    if cam.occluder and rng.random() < cam.p_occ:
        if cam.occluder == 1:
            occ = (
                1,
                float(np.clip(cam.pole_x + rng.normal(0, 0.1), 0.02, 0.98)),
                float(rng.uniform(0.05, 0.1)),
                float(rng.uniform(-0.05, 0.05)),
                int(rng.integers(60, 160)),
            )
        else:
            occ = (
                2,
                float(rng.choice([-1.0, 1.0])),
                float(rng.uniform(0.12, 0.3)),
                float(rng.uniform(0.15, 0.45)),
                int(rng.integers(len(COLOURS))),
            )
    return Scene(
        cam,
        bg_key,
        yaw,
        float(rng.uniform(0.94, 1.06)),
        float(rng.uniform(0.86, 0.95)),
        float(rng.normal(0, 0.025)),
        float(rng.normal(0, 0.025)),
        (float(rng.random()), float(rng.random())),
        look,
        occ,
        bright,
        int(rng.integers(2**31)),
    )


def crop_size(cam: Camera, scene: Scene, m: ModelSpec, view: str) -> tuple[int, int]:
    """Stored image size: the camera's width (jittered) and a height that fits the vehicle
    like a detector's crop (clipped to 0.55-1.6 times the width)."""
    w = int(round(cam.width * scene.scale_jitter))
    width = 1.0 + abs(scene.yaw) * 0.24 + 0.1
    h = w * cam.fill * vertical_layout(m, view, scene.look["elev"])[-1] / width / scene.margin
    return w, int(np.clip(round(h), 0.55 * w, 1.6 * w))


def _homography(cam: Camera, scene: Scene, m: ModelSpec, view: str, W: int, H: int) -> np.ndarray:
    """Vehicle units -> 2x canvas pixels: placement, then roll/shear/keystone about the centre."""
    y_b = vertical_layout(m, view, scene.look["elev"])[-1]
    width = 1.0 + abs(scene.yaw) * 0.24 + 0.1
    s = min(cam.fill * W / width, scene.margin * H / y_b)
    cx, cy = W * (0.5 + scene.dx), H * (0.5 + scene.dy)
    A = np.array([[s, 0, cx + s * scene.yaw * 0.12], [0, s, cy - s * y_b / 2], [0, 0, 1.0]])
    r = math.radians(cam.roll)
    P = np.array(
        [
            [math.cos(r), -math.sin(r) + cam.shear, 0],
            [math.sin(r), math.cos(r), 0],
            [-scene.yaw * 0.35, -cam.pitch, 1.0],
        ]
    )
    T = np.array([[W, 0, W / 2], [0, W, H / 2], [0, 0, 1.0]])
    T_inv = np.array([[1 / W, 0, -0.5], [0, 1 / W, -H / (2 * W)], [0, 0, 1.0]])
    return T @ P @ T_inv @ A


def _occluder(d: ImageDraw.ImageDraw, md: ImageDraw.ImageDraw, occ: tuple, W: int, H: int) -> None:
    if occ[0] == 1:
        _, x, wd, tilt, g = occ
        x0, x1 = x * W - wd * W / 2, x * W + wd * W / 2
        pts: list[tuple[float, float]] = [
            (x0 - tilt * H, 0),
            (x1 - tilt * H, 0),
            (x1 + tilt * H, H),
            (x0 + tilt * H, H),
        ]
        d.polygon(pts, fill=(g, g, g + 8))
        d.polygon(
            [pts[0], ((x0 + x1) / 2 - tilt * H, 0), ((x0 + x1) / 2 + tilt * H, H), pts[3]],
            fill=shade((g, g, g + 8), 1.25),
        )
    else:  # the corner of another car in front of this one
        _, sgn, ext, top, ci = occ
        col = COLOURS[ci % len(COLOURS)][2]
        xo, xe = (-0.05 * W, ext * W) if sgn < 0 else (1.05 * W, W - ext * W)
        r, y0 = 0.4 * ext * W, top * H
        pts = [
            (xo, y0),
            (xe - sgn * r, y0),
            (xe - sgn * r * 0.3, y0 + r * 0.3),
            (xe, y0 + r),
            (xe, H * 1.05),
            (xo, H * 1.05),
        ]
        d.polygon(pts, fill=shade(col, 0.85))
        yw = y0 + 0.3 * (H - y0)
        d.polygon(
            [
                (xo, y0),
                (xe - sgn * r, y0),
                (xe - sgn * r * 0.3, y0 + r * 0.3),
                (xe - sgn * 0.05 * W, yw),
                (xo, yw),
            ],
            fill=shade(col, 1.08),
        )
        d.polygon(
            [
                (xo, yw + 0.02 * H),
                (xe - sgn * 0.12 * W, yw + 0.02 * H),
                (xe - sgn * 0.1 * W, yw + 0.16 * H),
                (xo, yw + 0.16 * H),
            ],
            fill=(28, 31, 36),
        )
        ly = yw + 0.24 * H
        d.polygon(
            [
                (xe - sgn * 0.015 * W, ly),
                (xe - sgn * 0.09 * W, ly),
                (xe - sgn * 0.09 * W, ly + 0.045 * H),
                (xe - sgn * 0.015 * W, ly + 0.045 * H),
            ],
            fill=(170, 25, 25) if ci % 2 else (225, 225, 215),
        )
    md.polygon(pts, fill=255)


def render_image(
    m: ModelSpec,
    body: tuple,
    cues: Cues,
    view: str,
    scene: Scene,
    cue_strength: float,
    outside_share: float,
) -> tuple[Image.Image, dict[str, tuple[float, ...]], dict[str, int]]:
    """Compose and degrade one camera image; return (image, boxes, visible).

    Boxes (x1, y1, x2, y2) are in stored-image pixels, clipped to the image;
    a part is invisible (0) when an occluder covers half of its box or less
    than half of it lies inside the crop.
    """
    cam = scene.camera
    w, h = crop_size(cam, scene, m, view)
    W, H = 2 * w, 2 * h
    tex = background_texture(cam, scene.bg_key)
    ox, oy = int(scene.bg_xy[0] * (tex.shape[1] - w)), int(scene.bg_xy[1] * (tex.shape[0] - h))
    canvas = Image.fromarray(tex[oy : oy + h, ox : ox + w]).resize(
        (W, H), Image.Resampling.BILINEAR
    )
    draw = ImageDraw.Draw(canvas, "RGBA")
    Hm = _homography(cam, scene, m, view, W, H)
    raw = draw_vehicle(
        draw, Hm, m, body, cues, view, scene.yaw, scene.look, cue_strength, outside_share
    )
    mask = None
    if scene.occ is not None:
        mask = Image.new("L", (W, H), 0)
        _occluder(draw, ImageDraw.Draw(mask), scene.occ, W, H)
    img = canvas.reduce(2)
    if cam.res < 0.97:
        small = (max(8, round(w * cam.res)), max(8, round(h * cam.res)))
        img = img.resize(small, Image.Resampling.BILINEAR, reducing_gap=2.0).resize(
            (w, h), Image.Resampling.BILINEAR
        )
    if cam.blur > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    arr = np.asarray(img, dtype=np.float32)
    ramp = 1.0 + cam.light_dir * np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    gain = np.array(cam.cast, dtype=np.float32) * (cam.brightness * (1 + scene.bright))
    v = np.clip(arr * ramp * gain, 0, 255).astype(np.uint8)
    lut = np.clip(128 + (np.arange(256, dtype=np.float32) - 128) * cam.contrast, 0, 255)
    lut = 255 * (lut / 255) ** cam.gamma + 0.5
    noise = np.random.default_rng(scene.noise_seed).standard_normal(v.shape, dtype=np.float32)
    out = Image.fromarray(np.clip(lut[v] + noise * cam.noise, 0, 255).astype(np.uint8))
    boxes: dict[str, tuple[float, ...]] = {}
    visible: dict[str, int] = {}
    mk = np.asarray(mask) if mask is not None else None
    for key in PART_KEYS:
        x1, y1, x2, y2 = (c / 2 for c in raw[key])
        area = max((x2 - x1) * (y2 - y1), 1e-6)
        c = (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))
        inside = (c[2] - c[0]) * (c[3] - c[1]) / area
        cover = 0.0
        if mk is not None:
            sub = mk[
                int(2 * c[1]) : int(math.ceil(2 * c[3])), int(2 * c[0]) : int(math.ceil(2 * c[2]))
            ]
            cover = float(sub.mean()) / 255 if sub.size else 0.0
        boxes[key] = c
        visible[key] = int(inside >= 0.5 and (cover < 0.5 or key == "vehicle"))
    return out, boxes, visible
