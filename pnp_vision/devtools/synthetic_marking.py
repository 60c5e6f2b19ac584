"""The part-marking and polarity scene (down-looking camera over an IC).

Kept apart from `synthetic_scenes` so the marking and polarity looks can grow on their own; it
uses the same drawing helpers and units (1/224 of the frame's shorter side).
"""

from __future__ import annotations

import string

import numpy as np

from pnp_vision.devtools.glyphs import draw_text
from pnp_vision.devtools.synthetic_scenes import (
    DEFAULT,
    Question,
    Variation,
    _board,
    _box,
    _circle,
    _color,
    _crosshair_centre,
    _q,
)

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def random_marking(rng: np.random.Generator) -> str:
    """A marking that matches the template pattern ^[A-Z0-9][A-Z0-9-]{0,15}$ (4-7 characters)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(rng.choice(list(alphabet), size=int(rng.integers(4, 8))))


def chip(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Down-looking camera over an IC: a printed marking and a polarity dot in one corner."""
    _board(img, rng, u)
    cx, cy = _crosshair_centre(img, rng, u, var)
    w, h = rng.uniform(110, 150) * u, rng.uniform(80, 115) * u
    x0, y0 = cx - w / 2, cy - h / 2
    lead = _color(rng, (170, 170, 170), (230, 230, 230))
    n = int(rng.integers(4, 9))
    for i in range(n):  # gull-wing leads on the long sides
        x = x0 + (i + 0.5) * w / n
        for y in (y0 - 6 * u, y0 + h + 6 * u):
            _box(img, (x, y), w / n * 0.45, 14 * u, 0, lead)
    _box(img, (cx, cy), w, h, 0, _color(rng, (15, 15, 15), (55, 55, 55)))
    ink = _color(rng, (150, 150, 150), (235, 235, 235))
    marking = random_marking(rng)
    draw_text(img, marking, (cx, cy), w * 0.8, ink)
    corner = CORNERS[rng.integers(4)]
    inset, r = rng.uniform(13, 18) * u, rng.uniform(6.5, 9) * u
    dx = x0 + inset if corner.endswith("left") else x0 + w - inset
    dy = y0 + inset if corner.startswith("top") else y0 + h - inset
    _circle(img, (dx, dy), r, ink)
    other = CORNERS[(CORNERS.index(corner) + rng.integers(1, 4)) % 4]
    wrong = random_marking(rng)
    while wrong == marking:
        wrong = random_marking(rng)
    return [
        _q("part_marking", True, marking=marking),
        _q("part_marking", False, marking=wrong),
        _q("polarity_mark", True, corner=corner),
        _q("polarity_mark", False, corner=other),
    ]
