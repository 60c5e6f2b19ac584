"""The up-looking camera's world: nozzle tips of several makes at their real sizes, reticles of
any style and colour, and parts of every package held on the nozzle, seen from below.

The nozzle_alignment label stays in the frame's units whatever the millimetre scale: the tip's
centre is drawn `centred` or `off` units from the reticle's centre, and the camera scale is
chosen so the tip's radius in units stays within `Variation.tip_radius`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pnp_vision.devtools.synthetic_camera import Shot
from pnp_vision.devtools.synthetic_packages import sample_part
from pnp_vision.devtools.synthetic_pen import Pen, any_color, jitter, pick, scale, shade
from pnp_vision.devtools.synthetic_scenes import (
    _AA,
    _ONE,
    _SHIFT,
    Question,
    Variation,
    _color,
    _crosshair_centre,
    _draw_crosshair,
    _held_part,
    _nozzle,
    _q,
)
from pnp_vision.devtools.synthetic_variation import CLASSIC, NOZZLE_MAKES

UP_CAMERA_FOV = (5.0, 40.0)  # mm across the up-looking camera's shorter side
HELD_UNITS = (22.0, 120.0)  # a held part's longest side, in units: judgeable, mostly in view


@dataclass(frozen=True)
class Make:
    """A family of nozzles: tip outer diameters (mm), finishes, bore / diameter ratios, and
    how often a reflector disc sits behind the tip (with its diameter range)."""

    diameters: tuple[float, ...]
    finishes: tuple[str, ...]
    bores: tuple[float, float]
    reflector: float
    reflector_mm: tuple[float, float] = (6.0, 14.0)


MAKES = {
    "juki": Make((0.4, 0.7, 1.0, 1.3, 1.7, 2.5, 3.5, 5.0), ("shiny", "dull", "black"),
                 (0.3, 0.55), 0.6),
    "samsung": Make((0.4, 0.65, 1.0, 1.4, 2.2, 4.0, 7.5), ("ceramic", "black", "dull", "shiny"),
                    (0.3, 0.6), 0.2),
    "yamaha": Make((0.7, 1.0, 1.5, 2.5, 3.5, 5.0, 8.0), ("dull", "black", "shiny"),
                   (0.3, 0.55), 0.7, (8.0, 16.0)),
    "cp": Make((0.4, 0.5, 0.7, 0.9, 1.2, 1.6, 2.0, 4.0, 6.0, 8.0), ("shiny", "dull", "rubber"),
               (0.35, 0.7), 0.0),
}  # fmt: skip
_FACES = {  # the tip's end face under a ring light (BGR), and its rim
    "shiny": ((215, 215, 222), 30),
    "dull": ((155, 155, 160), 30),
    "black": ((38, 38, 42), 12),
    "ceramic": ((212, 224, 232), 18),
    "rubber": ((28, 26, 26), 8),
}


def background(img: np.ndarray, rng: np.random.Generator) -> None:
    """What an up-looking camera sees past the nozzle: the head far above, dark and out of
    focus (a few soft shapes drawn tiny and enlarged: smooth for free)."""
    h, w = img.shape[:2]
    base = np.asarray(_color(rng, (5, 5, 5), (60, 55, 55)), dtype=np.float64)
    small = np.empty((max(2, h // 24), max(2, w // 24), 3), np.uint8)
    small[:] = base.astype(np.uint8)
    sh, sw = small.shape[:2]
    for _ in range(int(rng.integers(0, 4))):
        color = jitter(rng, base * rng.uniform(0.4, 2.2), 8)
        center = (int(rng.integers(0, sw) * _ONE), int(rng.integers(0, sh) * _ONE))
        radius = int(rng.uniform(0.15, 0.6) * max(sw, sh) * _ONE)
        cv2.circle(small, center, radius, color, -1, _AA, _SHIFT)
    img[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def draw_tip(
    img: np.ndarray, c: tuple[float, float], px_per_mm: float, rng: np.random.Generator,
    make: str, diameter: float,
) -> None:  # fmt: skip
    """A nozzle seen from below, centred on `c`: reflector disc, shaft, the tapered cone lit
    in rings, the tip's end face in its finish, the bore."""
    spec = MAKES[make]
    finish = pick(rng, spec.finishes)
    if finish == "rubber" and diameter < 3:
        finish = "dull"
    pen = Pen(img, c, px_per_mm)
    r = diameter / 2
    if rng.random() < spec.reflector:  # a reflector disc, white or black, out of focus
        rr = max(r * 2.5, rng.uniform(*spec.reflector_mm) / 2)
        disc = (
            jitter(rng, (215, 220, 222), 20)
            if rng.random() < 0.5
            else _color(rng, (10, 10, 10), (45, 45, 45))
        )
        pen.circle(0, 0, rr, shade(disc, 0.8))
        pen.circle(0, 0, rr * 0.96, disc)
    shaft = max(r * rng.uniform(1.3, 2.2), rng.uniform(0.4, 1.6))
    level = rng.uniform(40, 110) * (0.5 if finish in ("black", "rubber") else 1.0)
    band = rng.uniform(0.3, 0.8)  # where the ring light's reflection sits on the cone
    steps = 8
    for i in range(steps):  # the cone, from the shaft in to the tip, smoothly lit
        t = i / (steps - 1)
        glow = 1 + 0.5 * np.exp(-(((t - band) / 0.2) ** 2))
        radius = shaft + (r * 1.02 - shaft) * t
        pen.circle(0, 0, radius, shade((level,) * 3, glow * (0.6 + 0.4 * t)))
    face, spread = _FACES[finish]
    face = jitter(rng, face, spread)
    if finish in ("black", "rubber"):  # a dark face: its rounded edge catches the ring light
        edge = rng.uniform(90, 170) if finish == "black" else rng.uniform(60, 110)
        rim = jitter(rng, (edge,) * 3, 6)
    else:
        rim = shade(face, 0.85)
    pen.circle(0, 0, r, rim)
    pen.circle(0, 0, r * 0.9, face)
    bore = r * rng.uniform(*spec.bores)
    if finish == "rubber":
        bore = r * rng.uniform(0.5, 0.75)
    pen.circle(0, 0, bore, _color(rng, (0, 0, 0), (35, 35, 35)))
    if finish in ("shiny", "ceramic") and r * px_per_mm > 4:  # the ring light on the face
        n, ring = int(rng.integers(6, 13)), (r + bore) / 2
        t = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n
        pen.circles(np.stack([np.cos(t), np.sin(t)], 1) * ring, (r - bore) * 0.18, (250,) * 3)


def reticle(
    img: np.ndarray, c: tuple[float, float], rng: np.random.Generator, u: float, var: Variation,
    shot: Shot,
) -> None:  # fmt: skip
    """The crosshair in one of `var.reticles`: classic (the original four colours), or any
    colour as full lines, dashes, circles, a scale of ticks, or lines stopping short of the
    centre; turned with the camera or square to the frame."""
    style = pick(rng, var.reticles)
    if style == CLASSIC:
        _draw_crosshair(img, c, rng, u)
        return
    color, t = any_color(rng), max(1, round(rng.uniform(0.6, 1.8) * u))
    rad = np.deg2rad(shot.reticle_angle(rng))
    axes = np.array([[np.cos(rad), np.sin(rad)], [-np.sin(rad), np.cos(rad)]])
    reach = float(np.hypot(*img.shape[:2]))
    centre = np.asarray(c, dtype=np.float64)
    segs = np.zeros((0, 2))  # (from, to) distances from the centre along each axis
    if style in ("cross", "ticks"):
        segs = np.array([(-reach, reach)])
    elif style == "dashed":
        dash, gap = rng.uniform(4, 12) * u, rng.uniform(3, 8) * u
        period = dash + gap
        start = -period * np.ceil(reach / period) - (dash / 2 if rng.random() < 0.5 else 0)
        froms = np.arange(start, reach, period)
        segs = np.stack([froms, froms + dash], 1)
    elif style == "gap":
        g = rng.uniform(4, 14) * u
        segs = np.array([(-reach, -g), (g, reach)])
    # (segments, 2 ends, xy) for both axes
    ends = [centre + segs[:, :, None] * axis for axis in axes]
    if style == "ticks":
        period, half = rng.uniform(5, 15) * u, rng.uniform(1.5, 4) * u
        steps = np.arange(1, int(reach / period) + 1) * period
        d = np.concatenate([steps, -steps])[:, None, None]
        for axis, across in ((axes[0], axes[1]), (axes[1], axes[0])):
            ends.append(centre + d * axis + np.array([-half, half])[None, :, None] * across)
    lines = np.rint(np.concatenate(ends) * _ONE).astype(np.int32)
    if len(lines):
        cv2.polylines(img, list(lines), False, color, t, _AA, _SHIFT)
    pen = Pen(img, c, 1.0)
    if style == "circle" or (style == "gap" and rng.random() < 0.5):
        for radius in np.sort(rng.uniform(6, 60, size=int(rng.integers(1, 4)))):
            pen.circle(0, 0, radius * u, color, t)
    if style == "circle" and rng.random() < 0.6:  # a small cross at the centre
        arm = rng.uniform(3, 8) * u
        for axis in axes:
            pen.line(tuple(-arm * axis), tuple(arm * axis), t, color)
    elif style in ("circle", "gap") and rng.random() < 0.4:
        pen.circle(0, 0, max(1.0, 0.8 * u), color)


def nozzle_tip(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation, shot: Shot
) -> list[Question]:
    """An empty nozzle of one of `var.nozzles`, its centre `centred` (YES) or `off` (NO)
    units from the reticle's centre."""
    background(img, rng)
    cross = _crosshair_centre(img, rng, u, var)
    dist = rng.uniform(*var.centred) if yes else rng.uniform(*var.off)
    angle = rng.uniform(0, 2 * np.pi)
    tip = (cross[0] + dist * u * np.cos(angle), cross[1] + dist * u * np.sin(angle))
    make = pick(rng, var.nozzles)
    if make == CLASSIC:
        _nozzle(img, tip, rng, u, var)
    else:
        diameter = pick(rng, MAKES[make].diameters) * rng.uniform(0.97, 1.03)
        units_per_mm = scale(rng, UP_CAMERA_FOV, diameter / 2, var.tip_radius)
        draw_tip(img, tip, units_per_mm * u, rng, make, diameter)
        shot.facts["tip_radius"] = diameter / 2 * units_per_mm
    reticle(img, cross, rng, u, var, shot)
    shot.mark("tip", tip)
    shot.mark("cross", cross)
    points = [float(v) for v in (*tip, *cross)]
    return [{**_q("nozzle_alignment", yes), "points": points}, _q("part_on_nozzle", False)]


def part_held(
    img: np.ndarray, rng: np.random.Generator, u: float, yes: bool, var: Variation, shot: Shot
) -> list[Question]:
    """A part of one of `var.packages` on the nozzle, seen from below at any angle and a small
    pick offset; the nozzle's shaft and reflector show around a small part."""
    background(img, rng)
    cross = _crosshair_centre(img, rng, u, var)
    c = (cross[0] + rng.uniform(-12, 12) * u, cross[1] + rng.uniform(-12, 12) * u)
    name = pick(rng, var.packages)
    if name == CLASSIC:
        _held_part(img, c, rng, u)
        shot.mark("part", c)
    else:
        part = sample_part(name, rng)
        units_per_mm = scale(rng, UP_CAMERA_FOV, max(part.length, part.width), HELD_UNITS)
        ppm = units_per_mm * u
        narrow = min(part.body[:2])
        makes = [m for m in var.nozzles if m != CLASSIC] or list(NOZZLE_MAKES[1:])
        make = pick(rng, makes)
        fits = [d for d in MAKES[make].diameters if d <= 0.6 * narrow]
        diameter = fits[int(rng.integers(len(fits)))] if fits else 0.6 * narrow
        draw_tip(img, c, ppm, rng, make, diameter)
        slip = rng.uniform(-0.15, 0.15) * narrow * np.exp(1j * rng.uniform(0, 2 * np.pi))
        at = (c[0] + slip.real * ppm, c[1] + slip.imag * ppm)
        angle = rng.uniform(0, 360)
        part.below(Pen(img, at, ppm, angle))
        shot.mark("part", at)
        shot.facts.update(package=name, part_units=max(part.length, part.width) * units_per_mm)
    reticle(img, cross, rng, u, var, shot)
    return [_q("part_on_nozzle", True)]
