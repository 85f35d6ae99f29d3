"""The SynthVeh world: make -> model -> colour -> identity.

A make has a brand glyph; a model has a type (sedan ... estate) and a
silhouette (:class:`ModelSpec`: body proportions, window, light and grille
shapes); a colour is one of VeRi-776's ten colour names; an identity adds
:class:`Cues`: the personal details that tell near-duplicates apart. Most cues
sit inside the paper's parts (window: stickers, inspection labels, ornament,
dashboard items; lights: aftermarket tint and daytime-light pattern; brand:
badge finish, badge plate, extra emblem); the outside cues (roof rack or box,
hood stripes, mirror caps, bumper sticker, wheel colour) are drawn with weight
``outside_cue_share`` and the inside ones with ``1 - outside_cue_share``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from prreid_lib.synthveh.shapes import CUE_COLOURS, N_LIGHT_STYLES

TYPE_NAMES: tuple[str, ...] = (
    "sedan",
    "suv",
    "van",
    "hatchback",
    "mpv",
    "pickup",
    "bus",
    "truck",
    "estate",
)
"""VeRi-776 typeID 1..9, in order."""

COLOURS: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("white", 7, (226, 227, 224)),
    ("black", 10, (30, 31, 34)),
    ("gray", 4, (140, 143, 148)),
    ("red", 5, (165, 28, 30)),
    ("blue", 6, (36, 70, 150)),
    ("golden", 8, (182, 152, 94)),
    ("brown", 9, (108, 70, 44)),
    ("yellow", 1, (222, 186, 38)),
    ("green", 3, (46, 116, 62)),
    ("orange", 2, (222, 112, 32)),
)
"""(name, VeRi-776 colorID, RGB), most common first; a config with n colours uses the first n."""

MAKE_NAMES: tuple[str, ...] = (
    "Arvo",
    "Belka",
    "Corin",
    "Dalmar",
    "Ester",
    "Fenwick",
    "Galen",
    "Horta",
    "Isel",
    "Juno",
)

_TYPE_WEIGHTS = np.array([0.3, 0.2, 0.07, 0.12, 0.1, 0.05, 0.04, 0.04, 0.08])
# roof_w roof_h ws_h hood_h face_h rw_h deck_h light_y
_PROPORTIONS = {
    "sedan": (0.66, 0.14, 0.23, 0.25, 0.27, 0.2, 0.16, 0.08),
    "suv": (0.76, 0.13, 0.25, 0.2, 0.34, 0.27, 0.05, 0.08),
    "van": (0.86, 0.09, 0.34, 0.08, 0.38, 0.34, 0.03, 0.10),
    "hatchback": (0.70, 0.13, 0.24, 0.22, 0.28, 0.26, 0.05, 0.08),
    "mpv": (0.80, 0.11, 0.3, 0.12, 0.33, 0.3, 0.04, 0.08),
    "pickup": (0.74, 0.11, 0.24, 0.2, 0.34, 0.18, 0.18, 0.08),
    "bus": (0.94, 0.06, 0.46, 0.02, 0.46, 0.44, 0.02, 0.56),
    "truck": (0.90, 0.06, 0.32, 0.06, 0.48, 0.22, 0.03, 0.56),
    "estate": (0.70, 0.14, 0.23, 0.24, 0.27, 0.25, 0.05, 0.08),
}


@dataclass(frozen=True)
class ModelSpec:
    """One vehicle model's silhouette in vehicle units (width 1)."""

    type_id: int
    glyph: int
    roof_w: float
    roof_h: float
    ws_h: float
    hood_h: float
    face_h: float
    rw_h: float
    deck_h: float
    light_y: float
    ws_bot_w: float
    belt_w: float
    corner: float
    mirror: float
    light_style: int
    light_w: float
    light_h: float
    tail_style: int
    tail_w: float
    tail_h: float
    grille_style: int
    grille_w: float
    grille_h: float
    badge_on_grille: bool
    badge_size: float
    fog: bool
    wiper: bool
    brake3: bool


def sample_model(rng: np.random.Generator, make: int) -> ModelSpec:
    """A random model of make ``make`` (type, proportions jittered by about 8%, shapes)."""
    type_id = int(rng.choice(len(TYPE_NAMES), p=_TYPE_WEIGHTS / _TYPE_WEIGHTS.sum())) + 1
    p = np.array(_PROPORTIONS[TYPE_NAMES[type_id - 1]]) * rng.uniform(0.92, 1.08, 8)
    big = type_id in (7, 8)
    tall_tail = type_id in (2, 3, 5) and rng.random() < 0.5
    return ModelSpec(
        type_id=type_id,
        glyph=make,
        roof_w=float(min(p[0], 0.97)),
        roof_h=float(p[1]),
        ws_h=float(p[2]),
        hood_h=float(p[3]),
        face_h=float(p[4]),
        rw_h=float(p[5]),
        deck_h=float(p[6]),
        light_y=float(p[7]),
        ws_bot_w=float(rng.uniform(0.84, 0.9) if not big else 0.92),
        belt_w=float(rng.uniform(0.93, 0.97)),
        corner=float(rng.uniform(0.02, 0.07)),
        mirror=float(rng.uniform(0.04, 0.07) * (1.4 if big else 1.0)),
        light_style=int(rng.integers(N_LIGHT_STYLES)),
        light_w=float(rng.uniform(0.19, 0.27) * (0.7 if big else 1.0)),
        light_h=float(rng.uniform(0.05, 0.085)),
        tail_style=int(rng.integers(N_LIGHT_STYLES)),
        tail_w=float(rng.uniform(0.09, 0.12) if tall_tail else rng.uniform(0.18, 0.28)),
        tail_h=float(rng.uniform(0.12, 0.16) if tall_tail else rng.uniform(0.06, 0.09)),
        grille_style=int(rng.integers(4)),
        grille_w=float(rng.uniform(0.14, 0.22)),
        grille_h=float(rng.uniform(0.28, 0.45)),
        badge_on_grille=bool(rng.random() < 0.7),
        badge_size=float(rng.uniform(0.028, 0.038)),
        fog=bool(rng.random() < 0.5),
        wiper=type_id in (2, 3, 4, 5, 9),
        brake3=bool(rng.random() < 0.6),
    )


@dataclass(frozen=True)
class Cues:
    """An identity's personal details (indices into ``CUE_COLOURS``; None = absent).

    Window: ``stickers``/``rear_stickers`` (u, v, w, h, colour) with u in [-1, 1]
    across and v in [0, 1] down the glass; ``ornament`` (colour, shape, length);
    ``dash``/``rear_items`` (u, w, h, colour); ``sunshade``. Lights: ``light_tint``
    (0 none, smoked, amber, blue, yellow), ``drl`` pattern (0 none .. 4) and its
    colour, ``tail_tint``, ``tail_pattern``. Brand: ``badge`` finish (0 chrome,
    black, gold, red, blue), ``badge_bg`` (0 none, disc, oval), ``emblem``.
    Outside parts: ``roof`` (0 none, rack, box) and ``roof_colour``, ``stripe``
    (colour, count), ``mirror``, ``bumper``, ``wheel``.
    """

    stickers: tuple
    rear_stickers: tuple
    ornament: tuple | None
    dash: tuple
    rear_items: tuple
    sunshade: int | None
    light_tint: int
    drl: int
    drl_colour: int
    tail_tint: int
    tail_pattern: int
    badge: int
    badge_bg: int
    emblem: int | None
    roof: int
    roof_colour: int
    stripe: tuple[int, int] | None
    mirror: int | None
    bumper: int | None
    wheel: int | None

    def inside_key(self) -> tuple:
        """Discrete summary of the in-part cues (near-duplicates must differ here)."""
        st = tuple((round(u, 1), round(v, 1), c) for u, v, _, _, c in self.stickers)
        return (
            st,
            self.ornament[:2] if self.ornament else None,
            len(self.dash),
            self.sunshade,
            self.light_tint,
            self.drl,
            self.tail_tint,
            self.tail_pattern,
            self.badge,
            self.badge_bg,
            self.emblem,
        )

    def outside_key(self) -> tuple:
        """Discrete summary of the outside-part cues."""
        return (
            self.roof,
            self.roof_colour if self.roof == 2 else None,
            self.stripe,
            self.mirror,
            self.bumper,
            self.wheel,
        )


_SLOTS = ((0.72, 0.2), (-0.72, 0.2), (0.62, 0.72), (-0.62, 0.72), (0.35, 0.16), (-0.3, 0.16))


def _colour(rng: np.random.Generator) -> int:
    return int(rng.integers(len(CUE_COLOURS)))


def _maybe(rng: np.random.Generator, p: float) -> int | None:
    return _colour(rng) if rng.random() < p else None


def _stickers(rng: np.random.Generator, n: int, palette: list[int]) -> tuple:
    slots = rng.choice(len(_SLOTS), size=n, replace=False)
    out = []
    for j, s in enumerate(slots):
        u, v = _SLOTS[s]
        c = palette[j] if j < len(palette) else _colour(rng)
        out.append(
            (
                float(u + rng.uniform(-0.06, 0.06)),
                float(v + rng.uniform(-0.05, 0.05)),
                float(rng.uniform(0.8, 1.4)),
                float(rng.uniform(0.7, 1.3)),
                c,
            )
        )
    return tuple(out)


def sample_cues(rng: np.random.Generator) -> Cues:
    """Random identity cues; every identity gets at least one in-part and one outside cue."""
    n_st = int(rng.choice(4, p=[0.1, 0.35, 0.35, 0.2]))
    front = _stickers(rng, n_st, [])
    palette = [s[4] for s in front]
    rear = _stickers(rng, int(rng.choice(4, p=[0.15, 0.35, 0.35, 0.15])), palette)
    dash = tuple(
        (
            float(rng.uniform(-0.7, 0.7)),
            float(rng.uniform(0.06, 0.14)),
            float(rng.uniform(0.02, 0.04)),
            _colour(rng),
        )
        for _ in range(int(rng.choice(3, p=[0.3, 0.45, 0.25])))
    )
    items = tuple(
        (
            float(rng.uniform(-0.6, 0.6)),
            float(rng.uniform(0.08, 0.16)),
            float(rng.uniform(0.02, 0.04)),
            _colour(rng),
        )
        for _ in range(int(rng.choice(3, p=[0.4, 0.4, 0.2])))
    )
    ornament = None
    if rng.random() < 0.55:
        ornament = (_colour(rng), int(rng.integers(2)), float(rng.uniform(0.25, 0.45)))
    stripe = (_colour(rng), int(rng.integers(1, 3))) if rng.random() < 0.4 else None
    cues = Cues(
        stickers=front,
        rear_stickers=rear,
        ornament=ornament,
        dash=dash,
        rear_items=items,
        sunshade=int(rng.choice([0, 1, 6])) if rng.random() < 0.15 else None,
        light_tint=int(rng.choice(5, p=[0.3, 0.2, 0.15, 0.2, 0.15])),
        drl=int(rng.choice(5, p=[0.25, 0.2, 0.2, 0.2, 0.15])),
        drl_colour=int(rng.choice([3, 6, 5, 0])),
        tail_tint=int(rng.integers(4)),
        tail_pattern=int(rng.integers(5)),
        badge=int(rng.choice(5, p=[0.35, 0.2, 0.15, 0.15, 0.15])),
        badge_bg=int(rng.choice(3, p=[0.6, 0.2, 0.2])),
        emblem=_maybe(rng, 0.35),
        roof=int(rng.choice(3, p=[0.5, 0.25, 0.25])),
        roof_colour=_colour(rng),
        stripe=stripe,
        mirror=_maybe(rng, 0.4),
        bumper=_maybe(rng, 0.4),
        wheel=_maybe(rng, 0.5),
    )
    if cues.roof == 0 and cues.stripe is None and cues.mirror is None and cues.bumper is None:
        cues = replace(cues, mirror=_colour(rng))
    return cues


def sample_group_cues(rng: np.random.Generator, n: int) -> list[Cues]:
    """Cues for the ``n`` identities of one make-model-colour group, pairwise distinct
    in their in-part summary and in their outside summary (up to 50 redraws each)."""
    out: list[Cues] = []
    seen_in: set = set()
    seen_out: set = set()
    for _ in range(n):
        for _try in range(50):
            c = sample_cues(rng)
            if c.inside_key() not in seen_in and c.outside_key() not in seen_out:
                break
        seen_in.add(c.inside_key())
        seen_out.add(c.outside_key())
        out.append(c)
    return out


@dataclass(frozen=True)
class Identity:
    """One vehicle: make, model (index within the make), colour index, group, cues."""

    pid: int
    make: int
    model: int
    colour: int
    group: int
    split: str
    cues: Cues


def assign_groups(
    n: int, share: float, n_combos: int, weights: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Make-model-colour combination (group id) of each of ``n`` identities.

    ``ceil(share * n)`` identities (at least 2) go into groups of two or more
    sharing a combination; the rest get combinations of their own while there
    are enough, else they join groups too (the share then grows). Popular
    combinations (``weights``) are used first.
    """
    order = rng.choice(n_combos, size=n_combos, replace=False, p=weights / weights.sum())
    if n < 2:
        return order[:n]
    n_dup = min(n, max(2, math.ceil(share * n))) if share > 0 else 0
    n_single = n - n_dup
    if n_single > n_combos - (n_dup > 0):
        n_single = n_combos - 1
        n_dup = n - n_single
    groups = max(1, min(n_combos - n_single, n_dup // 2)) if n_dup else 0
    sizes = np.zeros(0, dtype=int)
    if groups:
        sizes = 2 + rng.multinomial(n_dup - 2 * groups, rng.dirichlet(np.full(groups, 2.0)))
    combos = np.concatenate(
        [order[:n_single], np.repeat(order[n_single : n_single + groups], sizes)]
    )
    return combos[rng.permutation(n)]


def sample_identities(
    n_makes: int,
    models_per_make: int,
    n_colours: int,
    share: float,
    pids,
    split: str,
    rng: np.random.Generator,
) -> list[Identity]:
    """Identities ``pids`` of one split: group by :func:`assign_groups`, then cues
    (:func:`sample_group_cues`); colours are weighted towards the common ones."""
    n_combos = n_makes * models_per_make * n_colours
    model_w = rng.dirichlet(np.full(n_makes * models_per_make, 3.0))
    colour_w = 1.0 / (np.arange(n_colours) + 1.5)
    combos = assign_groups(len(pids), share, n_combos, np.outer(model_w, colour_w).ravel(), rng)
    cues: dict[int, list[Cues]] = {}
    for c in sorted(set(combos.tolist())):
        cues[c] = sample_group_cues(rng, int((combos == c).sum()))
    out = []
    for pid, c in zip(pids, combos.tolist(), strict=True):
        mm, col = divmod(c, n_colours)
        out.append(
            Identity(
                int(pid), mm // models_per_make, mm % models_per_make, col, c, split, cues[c].pop()
            )
        )
    return out
