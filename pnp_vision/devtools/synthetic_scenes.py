"""Drawing of the synthetic pick-and-place scenes (see `synthetic.py` for the public API).

Each scene function draws on a canvas of the requested size and returns the questions it can
answer with their true answers; ``yes`` picks the answer of the scene's main question (the
caller balances it), the rest is random. Lengths are in "units" of 1/224 of the shorter side,
so a scene looks the same at 112x112 and 640x480, and every answer-bearing cue (an offset, a
dot, a missing part) stays several pixels large after a downscale to 112x112. Everything the
answer must not depend on (where the crosshair is, sizes, colours) is drawn at random.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from pnp_vision.devtools.synthetic_variation import (
    CENTRED_MAX,
    DEFAULT,
    OFF_MIN,
    TIP_STYLES,
    Range,
    Variation,
)

__all__ = ["CENTRED_MAX", "DEFAULT", "OFF_MIN", "TIP_STYLES", "Range", "Variation"]

Question = dict[str, Any]
Scene = Callable[[np.ndarray, np.random.Generator, float, bool, Variation], list[Question]]

_AA = cv2.LINE_AA
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _q(template: str, answer: bool, **params: str) -> Question:
    return {"template": template, "params": params, "answer": "YES" if answer else "NO"}


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x * _ONE), round(y * _ONE)


def _circle(img: np.ndarray, c: tuple[float, float], r: float, color, thickness: int = -1) -> None:
    cv2.circle(img, _pt(*c), round(r * _ONE), color, thickness, _AA, _SHIFT)


def _color(rng: np.random.Generator, lo: tuple, hi: tuple) -> tuple[int, int, int]:
    return tuple(int(rng.integers(a, b + 1)) for a, b in zip(lo, hi, strict=True))


def _fill(img: np.ndarray, color: tuple[int, int, int]) -> None:
    """The whole canvas in one colour (cv2 does it ~30x faster than `img[:] = color`)."""
    cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), color, -1)


def _box(img: np.ndarray, c: tuple[float, float], w: float, h: float, angle: float, color) -> None:
    pts = cv2.boxPoints(((c[0], c[1]), (w, h), angle))
    cv2.fillPoly(img, [np.round(pts * _ONE).astype(np.int32)], color, _AA, _SHIFT)


def _crosshair_centre(
    img: np.ndarray, rng: np.random.Generator, u: float, var: Variation
) -> tuple[float, float]:
    """The image centre moved by up to +-20 units (or `var.shift` away): never the same place
    twice."""
    h, w = img.shape[:2]
    if var.shift is None:
        return w / 2 + rng.uniform(-20, 20) * u, h / 2 + rng.uniform(-20, 20) * u
    dist, angle = rng.uniform(*var.shift), rng.uniform(0, 2 * np.pi)
    return w / 2 + dist * u * np.cos(angle), h / 2 + dist * u * np.sin(angle)


def _draw_crosshair(img: np.ndarray, c: tuple[float, float], rng: np.random.Generator, u: float):
    h, w = img.shape[:2]
    color = [(60, 220, 60), (60, 60, 230), (230, 220, 60), (60, 220, 230)][rng.integers(4)]
    t = max(1, round(rng.uniform(0.8, 1.6) * u))
    cv2.line(img, _pt(0, c[1]), _pt(w, c[1]), color, t, _AA, _SHIFT)
    cv2.line(img, _pt(c[0], 0), _pt(c[0], h), color, t, _AA, _SHIFT)
    if rng.random() < 0.5:  # some reticles add a ring
        _circle(img, c, rng.uniform(50, 70) * u, color, t)


def _up_camera_background(img: np.ndarray, rng: np.random.Generator) -> None:
    _fill(img, _color(rng, (10, 10, 10), (50, 45, 45)))


def _nozzle(
    img: np.ndarray, c: tuple[float, float], rng: np.random.Generator, u: float, var: Variation
) -> None:
    outer = rng.uniform(*var.tip_radius) * u
    styles = var.tip_styles  # one style draws nothing: the default stream stays as it was
    style = styles[int(rng.integers(len(styles)))] if len(styles) > 1 else styles[0]
    metal = int(rng.integers(150, 235))
    if style == "metallic":  # the original look
        _circle(img, c, outer * 1.35, (metal // 3,) * 3)  # the nozzle body, out of focus
        _circle(img, c, outer, (metal, metal, min(255, metal + 10)))
        _circle(img, (c[0] - outer * 0.3, c[1] - outer * 0.3), outer * 0.35, (255, 255, 255))
        _circle(img, c, outer * rng.uniform(0.3, 0.5), _color(rng, (5, 5, 5), (40, 40, 40)))
    elif style == "disc":  # a flat, evenly lit disc, tinted, no bore visible
        tint = _color(rng, (metal - 40, metal - 40, metal - 40), (metal, metal, metal))
        _circle(img, c, outer, tint)
    elif style == "ring":  # a thin-walled tip: a bright annulus around a wide dark bore
        _circle(img, c, outer, (metal, metal, metal))
        _circle(img, c, outer * rng.uniform(0.55, 0.8), _color(rng, (0, 0, 0), (30, 30, 30)))
    elif style == "gradient":  # a rounded tip: bright in the middle, darker to the rim
        steps = 8
        for k in range(steps):
            level = int(metal * (0.35 + 0.65 * k / (steps - 1)))
            _circle(img, c, outer * (1 - k / steps), (level, level, min(255, level + 8)))
    else:  # "outline": only the rim of the tip, as an edge-enhanced camera shows it
        t = max(1, round(rng.uniform(1.5, 3.5) * u))
        _circle(img, c, outer, (metal, metal, metal), t)
        _circle(img, c, max(1.0, outer * 0.12), (metal, metal, metal))


def nozzle_tip(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Up-looking camera, empty nozzle: centred on the crosshair (within `var.centred` units,
    default 2.5) or clearly off (`var.off`, default 14-40 units away)."""
    _up_camera_background(img, rng)
    cross = _crosshair_centre(img, rng, u, var)
    centred = yes
    dist = rng.uniform(*var.centred) if centred else rng.uniform(*var.off)
    angle = rng.uniform(0, 2 * np.pi)
    tip = (cross[0] + dist * u * np.cos(angle), cross[1] + dist * u * np.sin(angle))
    _nozzle(img, tip, rng, u, var)
    _draw_crosshair(img, cross, rng, u)
    # where the tip sits from the crosshair, in units: training's geometry target (`render`
    # moves it out of the question into the label's "geometry")
    offset = [float(dist * np.cos(angle)), float(dist * np.sin(angle))]
    # and where both are drawn, in frame pixels: training's per-image-token location target
    points = [float(v) for v in (*tip, *cross)]
    nozzle = {**_q("nozzle_alignment", centred), "offset": offset, "points": points}
    return [nozzle, _q("part_on_nozzle", False)]


def part_held(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Up-looking camera with a part on the nozzle: a body with metal terminals hides the tip."""
    _up_camera_background(img, rng)
    cross = _crosshair_centre(img, rng, u, var)
    c = (cross[0] + rng.uniform(-12, 12) * u, cross[1] + rng.uniform(-12, 12) * u)
    _held_part(img, c, rng, u)
    _draw_crosshair(img, cross, rng, u)
    return [_q("part_on_nozzle", True)]


def _held_part(img: np.ndarray, c: tuple[float, float], rng: np.random.Generator, u: float):
    """The original held part: a large body with metal terminals or leads, nozzle behind."""
    _circle(img, c, rng.uniform(30, 45) * u, (60, 60, 60))  # the nozzle body behind the part
    w, h, angle = rng.uniform(70, 120) * u, rng.uniform(40, 70) * u, rng.uniform(-15, 15)
    _box(img, c, w, h, angle, _color(rng, (70, 65, 60), (130, 120, 115)))
    if rng.random() < 0.5:  # a two-terminal part: metal end caps
        metal = _color(rng, (160, 160, 160), (235, 235, 235))
        rad = np.deg2rad(angle)
        for side in (-1, 1):
            d = side * (w / 2 - w * 0.1)
            _box(img, (c[0] + d * np.cos(rad), c[1] + d * np.sin(rad)), w * 0.2, h, angle, metal)
    else:  # an IC seen from below: rows of leads
        metal = _color(rng, (150, 150, 150), (230, 230, 230))
        rad = np.deg2rad(angle)
        n = int(rng.integers(4, 9))
        for i in range(n):
            along = (i - (n - 1) / 2) * w / n
            for side in (-1, 1):
                off = side * (h / 2 + 4 * u)
                x = c[0] + along * np.cos(rad) - off * np.sin(rad)
                y = c[1] + along * np.sin(rad) + off * np.cos(rad)
                _box(img, (x, y), w / n * 0.5, 9 * u, angle, metal)


def _board(img: np.ndarray, rng: np.random.Generator, u: float) -> None:
    """A PCB: solder-mask colour plus a few traces."""
    mask = [(40, 110, 30), (90, 50, 20), (30, 30, 30), (30, 30, 110)][rng.integers(4)]
    _fill(img, tuple(int(np.clip(v + rng.integers(-15, 16), 0, 255)) for v in mask))
    h, w = img.shape[:2]
    trace = tuple(min(255, v + 35) for v in mask)
    for _ in range(int(rng.integers(2, 6))):
        y = rng.uniform(0, h)
        y2 = y + rng.uniform(-40, 40) * u
        cv2.line(img, _pt(0, y), _pt(w, y2), trace, max(1, round(3 * u)), _AA, _SHIFT)


def tombstone(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Down-looking camera over a two-terminal part on its pads: lying flat, or standing on one
    pad with the other pad bare."""
    _board(img, rng, u)
    cx, cy = _crosshair_centre(img, rng, u, var)
    vertical = bool(rng.random() < 0.5)
    pad_l, pad_w, gap = rng.uniform(28, 38) * u, rng.uniform(34, 46) * u, rng.uniform(26, 40) * u
    solder = _color(rng, (175, 175, 180), (235, 235, 240))
    offsets = (-(gap + pad_l) / 2, (gap + pad_l) / 2)

    def at(d: float) -> tuple[float, float]:
        return (cx, cy + d) if vertical else (cx + d, cy)

    pad_size = (pad_w, pad_l) if vertical else (pad_l, pad_w)
    for d in offsets:
        _box(img, at(d), *pad_size, 0, solder)
    standing = yes
    body = _color(rng, (40, 90, 120), (90, 150, 200)) if rng.random() < 0.5 else (25, 25, 25)
    cap = _color(rng, (150, 150, 150), (210, 210, 210))
    if standing:
        d = offsets[int(rng.integers(2))]
        side = pad_w * rng.uniform(0.6, 0.8)
        shadow = at(d + np.sign(d) * side * 0.6)
        _box(img, shadow, side * 1.1, side * 1.1, 0, (10, 10, 10))
        _box(img, at(d), side, side, 0, cap)  # looking down on the upper end cap
        _box(img, at(d), side * 0.6, side * 0.6, 0, body)
        body_at = at(d)
    else:
        length = gap + pad_l * rng.uniform(1.1, 1.5)
        width = pad_w * rng.uniform(0.6, 0.8)
        size = (width, length) if vertical else (length, width)
        _box(img, (cx, cy), *size, 0, body)
        for d in (-(length / 2 - length * 0.1), length / 2 - length * 0.1):
            cap_size = (width, length * 0.2) if vertical else (length * 0.2, width)
            _box(img, at(d), *cap_size, 0, cap)
        body_at = (cx, cy)
    # where the part's body is and the middle of its pads (the same on a flat part), in frame
    # pixels: training's per-image-token location target
    return [{**_q("tombstone", standing), "points": [float(v) for v in (*body_at, cx, cy)]}]


def feeder_pocket(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation = DEFAULT
) -> list[Question]:
    """Down-looking feeder camera over embossed carrier tape: the pocket at the pick position
    (the middle of the view) is empty or holds a part; neighbours are random."""
    w = img.shape[1]
    _fill(img, _color(rng, (20, 20, 20), (60, 60, 60)))
    cx, cy = _crosshair_centre(img, rng, u, var)
    tape = _color(rng, (15, 15, 15), (60, 60, 60)) if rng.random() < 0.5 else (150, 190, 210)
    tape_w = rng.uniform(120, 150) * u
    cv2.rectangle(img, _pt(0, cy - tape_w / 2), _pt(w, cy + tape_w / 2), tape, -1, _AA, _SHIFT)
    hole_y, hole = cy - tape_w / 2 + 10 * u, (235, 235, 235) if sum(tape) < 300 else (20, 20, 20)
    pitch = rng.uniform(105, 125) * u
    for k in range(-4, 5):  # sprocket holes
        _circle(img, (cx + k * pitch / 2, hole_y), 4.5 * u, hole)
    pocket_w, pocket_h = rng.uniform(55, 70) * u, rng.uniform(60, 75) * u
    floor = tuple(max(0, v - 25) for v in tape) if sum(tape) > 150 else (5, 5, 5)
    empty = yes
    for k in range(-2, 3):
        pc = (cx + k * pitch, cy + 8 * u)
        _box(img, pc, pocket_w + 6 * u, pocket_h + 6 * u, 0, tuple(min(255, v + 30) for v in tape))
        _box(img, pc, pocket_w, pocket_h, 0, floor)
        filled = (not empty) if k == 0 else bool(rng.random() < 0.6)
        if filled:
            pw, ph = pocket_w * rng.uniform(0.6, 0.8), pocket_h * rng.uniform(0.5, 0.75)
            _box(img, pc, pw, ph, rng.uniform(-6, 6), _color(rng, (30, 30, 30), (120, 110, 100)))
            metal = _color(rng, (160, 160, 160), (230, 230, 230))
            for d in (-pw * 0.38, pw * 0.38):
                _box(img, (pc[0] + d, pc[1]), pw * 0.22, ph, 0, metal)
        else:
            _circle(img, pc, 4 * u, (0, 0, 0))  # the pocket's centre hole
    return [_q("feeder_pocket_empty", empty)]
