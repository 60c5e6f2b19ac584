"""Parts at their real sizes, seen from below (held on a nozzle) or from above (in a pocket, on
a board): chips 0201-1206, MELF, SOT-23, SOT-223, SOIC-8, TSSOP, QFN, QFP, BGA, aluminium
electrolytic and tantalum capacitors, LEDs.

`sample_part` draws one part's every random choice (size variant, colours, leads) up front, so
drawing it is a pure function of the pen: the same part can be drawn twice. Lengths are in mm,
the part's long axis along x of the pen's frame; bodies carry their real colours, metal is
bright as it is under a ring light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pnp_vision.devtools.synthetic_pen import Color, Pen, jitter, metal, pick, shade
from pnp_vision.devtools.synthetic_variation import CHIPS

Draw = Callable[[Pen], None]

# body length, width, thickness in mm (EIA sizes; a chip's length is its terminal-to-terminal)
CHIP_SIZES = {
    "0201": (0.6, 0.3, 0.23),
    "0402": (1.0, 0.5, 0.35),
    "0603": (1.6, 0.8, 0.45),
    "0805": (2.0, 1.25, 0.5),
    "1206": (3.2, 1.6, 0.55),
}
_EPOXY = (30.0, 30.0, 33.0)
_MLCC = ((95, 140, 180), (60, 90, 130), (135, 135, 128), (130, 170, 200), (80, 120, 150))
_CERAMIC = (205.0, 220.0, 228.0)  # the alumina underside of a chip resistor
_SUBSTRATE = ((50, 95, 40), (40, 60, 85), (30, 32, 30), (70, 110, 120))
_MELF = ((170, 110, 50), (60, 140, 60), (150, 150, 220), (45, 45, 45), (110, 180, 200))
_TANTALUM = ((40, 180, 225), (40, 130, 220), (35, 35, 38))


@dataclass(frozen=True)
class Part:
    """One sampled part: overall size (leads included) and its two views."""

    name: str
    length: float  # overall, along x, mm
    width: float  # overall, along y, mm
    body: tuple[float, float, float]  # body length, width, thickness, mm
    below: Draw
    above: Draw
    # colours of the faces a tilted two-terminal part shows: top face, end cap
    faces: tuple[Color, Color] = ((30, 30, 33), (200, 200, 200))


def sample_part(name: str, rng: np.random.Generator, two_terminal: bool = False) -> Part:
    """A part of package `name` (see `synthetic_variation.PACKAGES`) with its random look;
    `two_terminal`: only the package's two-terminal chip forms (an LED: 0603 / 0805)."""
    if name == "led":
        return _led(name, rng, two_terminal)
    return _FAMILIES[name if name not in CHIPS else "chip"](name, rng)


def _chip(name: str, rng: np.random.Generator) -> Part:
    size = np.asarray(CHIP_SIZES[name]) * rng.uniform(0.96, 1.04, size=3)
    length, width, thick = (float(v) for v in size)
    cap = metal(rng)
    term = length * rng.uniform(0.18, 0.28)
    if rng.random() < 0.5:  # a resistor: black top (a marking), white alumina underneath
        top, bottom = jitter(rng, _EPOXY, 8), jitter(rng, _CERAMIC, 12)
        ink = jitter(rng, (190, 190, 190), 25) if length >= 1.0 and rng.random() < 0.7 else None
    else:  # a ceramic capacitor: the same colour all round
        top = bottom = jitter(rng, _MLCC[int(rng.integers(len(_MLCC)))], 15)
        ink = None

    def view(face: Color, marking: Color | None) -> Draw:
        def draw(pen: Pen) -> None:
            pen.box(0, 0, length, width, face)
            pen.boxes([(-(length - term) / 2, 0), ((length - term) / 2, 0)], (term, width), cap)
            if marking is not None:  # three digits, as bars
                pen.boxes([(-0.18 * length, 0), (0, 0), (0.18 * length, 0)], (0.09 * length,
                          0.4 * width), marking)  # fmt: skip

        return draw

    return Part(name, length, width, (length, width, thick), view(bottom, None), view(top, ink),
                (top, cap))  # fmt: skip


def _melf(name: str, rng: np.random.Generator) -> Part:
    length, dia = ((2.2, 1.1), (3.5, 1.4), (3.6, 1.45), (5.8, 2.2))[int(rng.integers(4))]
    body = jitter(rng, _MELF[int(rng.integers(len(_MELF)))], 15)
    cap, end = metal(rng), length * rng.uniform(0.11, 0.15)
    bands = [jitter(rng, (rng.integers(256), rng.integers(256), rng.integers(256)), 0)
             for _ in range(int(rng.integers(0, 5)))]  # fmt: skip

    def draw(pen: Pen) -> None:  # a cylinder: dark flanks, a bright line along the top
        pen.box(0, 0, length - 2 * end, dia, shade(body, 0.7))
        pen.box(0, 0, length - 2 * end, dia * 0.6, body)
        pen.box(0, 0, length - 2 * end, dia * 0.18, shade(body, 1.5))
        for i, color in enumerate(bands):
            pen.box(-length * 0.28 + i * length * 0.14, 0, length * 0.06, dia, color)
        for side in (-1, 1):
            pen.box(side * (length - end) / 2, 0, end, dia, shade(cap, 0.75))
            pen.box(side * (length - end) / 2, 0, end, dia * 0.45, cap)

    return Part(name, length, dia, (length, dia, dia), draw, draw, (body, cap))


def _leads(
    pen: Pen, xs: np.ndarray, y_edge: float, extend: float, lead_w: float, sign: int,
    colors: tuple[Color, Color], foot: float = 0.55, along_y: bool = False,
) -> None:  # fmt: skip
    """A row of gull-wing leads leaving a body edge at `y_edge` (the shoulder dimmer than the
    flat foot); `along_y` swaps axes (a row on the left / right side)."""
    shoulder = extend * (1 - foot)
    for (offset, length), color in zip(
        ((y_edge + shoulder / 2, shoulder), (y_edge + shoulder + extend * foot / 2, extend * foot)),
        colors,
        strict=True,
    ):
        centres = np.stack([xs, np.full_like(xs, sign * offset)], axis=1)
        size = (lead_w, length)
        if along_y:
            centres, size = centres[:, ::-1], size[::-1]
        pen.boxes(centres, size, color)


def _pitched(n: int, pitch: float) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * pitch


def _ic(name: str, rng: np.random.Generator) -> Part:
    """Gull-wing packages with leads on two long sides: SOT-23, SOT-223, SOIC-8, TSSOP."""
    if name == "sot23":
        pins = int(pick(rng, (3, 3, 5, 6)))
        length, width, extend, lead_w, pitch, thick = 2.9, 1.3, 0.55, 0.4, 0.95, 1.0
    elif name == "sot223":
        pins, length, width, extend, lead_w, pitch, thick = 4, 6.5, 3.5, 1.75, 0.7, 2.3, 1.6
    elif name == "soic8":
        pins, length, width, extend, lead_w, pitch, thick = 8, 4.9, 3.9, 1.05, 0.41, 1.27, 1.5
    else:  # tssop
        pins = int(pick(rng, (8, 14, 16, 20, 24, 28)))
        length = {8: 3.0, 14: 5.0, 16: 5.0, 20: 6.5, 24: 7.8, 28: 9.7}[pins]
        width, extend, lead_w, pitch, thick = 4.4, 1.0, 0.25, 0.65, 1.0
    body = jitter(rng, _EPOXY, 10)
    lead = metal(rng, 160, 240)
    colors = (shade(lead, rng.uniform(0.55, 0.8)), lead)
    ink = jitter(rng, (150, 150, 150), 30)
    if name == "sot23":
        rows = (
            (_pitched(2, 1.9) if pins == 3 else _pitched(3, pitch)),
            (_pitched(1, pitch) if pins == 3 else _pitched(2 if pins == 5 else 3, pitch)),
        )
    elif name == "sot223":
        rows = (_pitched(3, pitch), None)  # the other side: one wide tab
    else:
        rows = (_pitched(pins // 2, pitch), _pitched(pins // 2, pitch))
    dot = rng.random() < 0.7

    def view(marked: bool) -> Draw:
        def draw(pen: Pen) -> None:
            for sign, xs in zip((1, -1), rows, strict=True):
                if xs is None:
                    pen.boxes([(0, -(width / 2 + extend / 2))], (3.0, extend), colors[1])
                else:
                    _leads(pen, xs, width / 2, extend, lead_w, sign, colors)
            pen.box(0, 0, length, width, body)
            if marked and dot and length > 2:  # pin 1
                pen.circle(-length / 2 + 0.6, width / 2 - 0.6, 0.25, shade(body, 1.8))
            if marked:
                pen.box(0, 0, length * 0.45, width * 0.18, shade(ink, 0.6))

        return draw

    total = width + 2 * extend
    return Part(name, length, total, (length, width, thick), view(False), view(True))


def _qfn(name: str, rng: np.random.Generator) -> Part:
    side = float(pick(rng, (3.0, 4.0, 5.0, 6.0, 7.0)))
    pitch = float(pick(rng, (0.4, 0.5, 0.5, 0.65)))
    n = int((side - 0.8) / pitch)
    body, pad = jitter(rng, _EPOXY, 10), metal(rng, 170, 245)
    exposed = side * rng.uniform(0.45, 0.7)
    xs = _pitched(n, pitch)

    def below(pen: Pen) -> None:
        pen.box(0, 0, side, side, body)
        pen.box(0, 0, exposed, exposed, pad)
        depth = 0.4
        for sign in (-1, 1):
            edge = sign * (side / 2 - depth / 2)
            pen.boxes(np.stack([xs, np.full_like(xs, edge)], 1), (pitch * 0.5, depth), pad)
            pen.boxes(np.stack([np.full_like(xs, edge), xs], 1), (depth, pitch * 0.5), pad)

    def above(pen: Pen) -> None:
        pen.box(0, 0, side, side, body)
        for sign in (-1, 1):
            edge = sign * (side / 2 - 0.03)
            pen.boxes(np.stack([xs, np.full_like(xs, edge)], 1), (pitch * 0.5, 0.06), pad)
            pen.boxes(np.stack([np.full_like(xs, edge), xs], 1), (0.06, pitch * 0.5), pad)
        pen.circle(-side / 2 + 0.5, -side / 2 + 0.5, 0.2, shade(body, 2.0))

    return Part(name, side, side, (side, side, 0.85), below, above)


def _qfp(name: str, rng: np.random.Generator) -> Part:
    side = float(pick(rng, (7.0, 10.0, 14.0, 20.0)))
    pitch = float(pick(rng, (0.5, 0.65, 0.8)))
    n = int((side - 1.5) / pitch)
    extend, lead_w = 1.0, pitch * 0.45
    body, lead = jitter(rng, _EPOXY, 10), metal(rng, 160, 240)
    colors = (shade(lead, rng.uniform(0.55, 0.8)), lead)
    xs = _pitched(n, pitch)

    def view(marked: bool) -> Draw:
        def draw(pen: Pen) -> None:
            for sign in (-1, 1):
                _leads(pen, xs, side / 2, extend, lead_w, sign, colors)
                _leads(pen, xs, side / 2, extend, lead_w, sign, colors, along_y=True)
            c = side / 2
            cut = side * 0.06
            pen.poly([(-c + cut, -c), (c, -c), (c, c), (-c, c), (-c, -c + cut)], body)
            if marked:
                pen.circle(-c + side * 0.12, -c + side * 0.12, side * 0.04, shade(body, 1.8))

        return draw

    total = side + 2 * extend
    return Part(name, total, total, (side, side, 1.4), view(False), view(True))


def _bga(name: str, rng: np.random.Generator) -> Part:
    side = float(pick(rng, (5.0, 7.0, 8.0, 10.0, 12.0, 13.0, 15.0, 17.0)))
    pitch = float(pick(rng, (0.5, 0.65, 0.8, 1.0)))
    rows = int(side / pitch) - 1
    while rows > 16:  # keep the ball count (and the drawing time) bounded
        pitch += 0.15
        rows = int(side / pitch) - 1
    grid = _pitched(rows, pitch)
    gx, gy = np.meshgrid(grid, grid)
    keep = np.ones(gx.shape, dtype=bool)
    if rows >= 8 and rng.random() < 0.5:  # a depopulated middle
        hole = int(rows * rng.uniform(0.3, 0.5)) // 2
        mid = rows // 2
        keep[mid - hole : mid + hole, mid - hole : mid + hole] = False
    balls = np.stack([gx[keep], gy[keep]], 1)
    substrate = jitter(rng, _SUBSTRATE[int(rng.integers(len(_SUBSTRATE)))], 12)
    ball, mould = metal(rng, 150, 225), jitter(rng, _EPOXY, 8)
    r = pitch * rng.uniform(0.25, 0.3)

    def below(pen: Pen) -> None:
        pen.box(0, 0, side, side, substrate)
        pen.circles(balls, r, shade(ball, 0.6))
        if r * pen.s >= 2:  # the ring light's highlight on each ball
            pen.circles(balls, r * 0.5, ball)

    def above(pen: Pen) -> None:
        pen.box(0, 0, side, side, substrate)
        pen.box(0, 0, side * 0.9, side * 0.9, mould)
        pen.circle(-side * 0.35, -side * 0.35, side * 0.04, shade(mould, 1.8))

    return Part(name, side, side, (side, side, 1.2), below, above)


def _elco(name: str, rng: np.random.Generator) -> Part:
    side = float(pick(rng, (4.3, 5.3, 6.6, 8.3)))
    base = jitter(rng, _EPOXY, 10) if rng.random() < 0.8 else jitter(rng, (200, 215, 225), 10)
    lead, can = metal(rng, 170, 235), metal(rng, 160, 215)
    band = jitter(rng, (40, 40, 40), 10) if rng.random() < 0.6 else jitter(rng, (130, 70, 20), 15)
    lead_w = side * rng.uniform(0.1, 0.15)
    c, cut = side / 2, side * 0.15
    seat = [(-c + cut, -c), (c, -c), (c, c), (-c + cut, c), (-c, c - cut), (-c, -c + cut)]

    def below(pen: Pen) -> None:
        pen.poly(seat, base)
        pen.boxes([(-c * 0.65, 0), (c * 0.65, 0)], (c * 0.8, lead_w), lead)

    def above(pen: Pen) -> None:
        pen.poly(seat, base)
        pen.circle(0, 0, c * 0.95, can)
        t = np.linspace(np.pi * 0.62, np.pi * 1.38, 9)  # the polarity band on the can's top
        pen.poly(np.stack([np.cos(t), np.sin(t)], 1) * c * 0.95, band)
        pen.line((-c * 0.3, 0), (c * 0.3, 0), 0.06, shade(can, 0.6))  # the vent's cross
        pen.line((0, -c * 0.3), (0, c * 0.3), 0.06, shade(can, 0.6))

    return Part(name, side + 0.6, side, (side, side, side), below, above)


def _tantalum(name: str, rng: np.random.Generator) -> Part:
    length, width, thick = ((3.2, 1.6, 1.6), (3.5, 2.8, 1.9), (6.0, 3.2, 2.5), (7.3, 4.3, 2.8))[
        int(rng.integers(4))
    ]
    body = jitter(rng, _TANTALUM[int(rng.integers(len(_TANTALUM)))], 12)
    term = metal(rng, 160, 230)
    band = shade(body, 0.45) if sum(body) > 200 else jitter(rng, (170, 170, 170), 20)
    pad_l, pad_w = length * rng.uniform(0.2, 0.3), width * rng.uniform(0.6, 0.8)

    def below(pen: Pen) -> None:
        pen.box(0, 0, length, width, body)
        pen.boxes([(-(length - pad_l) / 2, 0), ((length - pad_l) / 2, 0)], (pad_l, pad_w), term)

    def above(pen: Pen) -> None:
        pen.box(0, 0, length, width, body)
        pen.box(-length * 0.36, 0, length * 0.12, width, band)  # the anode band
        pen.boxes([(-length * 0.48, 0), (length * 0.48, 0)], (length * 0.04, width * 0.7), term)

    return Part(name, length, width, (length, width, thick), below, above, (body, term))


def _led(name: str, rng: np.random.Generator, chip_only: bool = False) -> Part:
    kind = pick(rng, ("0603", "0805") if chip_only else ("0603", "0805", "3528", "5050"))
    housing = jitter(rng, (225, 230, 232), 10)
    phosphor = rng.random() < 0.6  # a white LED's yellow phosphor, else a clear lens
    lens = jitter(rng, (70, 200, 235), 20) if phosphor else jitter(rng, (185, 200, 205), 15)
    pad = metal(rng, 170, 240)
    if kind in ("0603", "0805"):
        length, width, thick = (1.6, 0.8, 0.6) if kind == "0603" else (2.0, 1.25, 0.8)
        sub = housing if rng.random() < 0.5 else jitter(rng, (70, 140, 60), 15)
        term = length * 0.18

        def below(pen: Pen) -> None:
            pen.box(0, 0, length, width, sub)
            pen.boxes([(-(length - term) / 2, 0), ((length - term) / 2, 0)], (term, width), pad)
            pen.poly([(-0.1, -0.2 * width), (0.15, 0), (-0.1, 0.2 * width)], shade(pad, 0.7))

        def above(pen: Pen) -> None:
            pen.box(0, 0, length, width, sub)
            pen.box(0, 0, length * 0.6, width * 0.85, lens)
            pen.boxes([(-(length - term) / 2, 0), ((length - term) / 2, 0)], (term, width), pad)

        return Part(name, length, width, (length, width, thick), below, above, (lens, pad))
    length, width = (3.5, 2.8) if kind == "3528" else (5.0, 5.0)
    pads = 2 if kind == "3528" else 3

    def below_plcc(pen: Pen) -> None:
        pen.box(0, 0, length, width, housing)
        ys = _pitched(pads, width / pads)
        for side in (-1, 1):
            pen.boxes(np.stack([np.full_like(ys, side * length * 0.36), ys], 1),
                      (length * 0.22, width / pads * 0.7), pad)  # fmt: skip

    def above_plcc(pen: Pen) -> None:
        pen.box(0, 0, length, width, housing)
        pen.circle(0, 0, min(length, width) * 0.4, lens)
        pen.poly([(-length / 2, -width / 2), (-length / 2 + 0.6, -width / 2),
                  (-length / 2, -width / 2 + 0.6)], shade(housing, 0.6))  # fmt: skip

    return Part(name, length, width, (length, width, 1.9), below_plcc, above_plcc)


_FAMILIES: dict[str, Callable[[str, np.random.Generator], Part]] = {
    "chip": _chip,
    "melf": _melf,
    "sot23": _ic,
    "sot223": _ic,
    "soic8": _ic,
    "tssop": _ic,
    "qfn": _qfn,
    "qfp": _qfp,
    "bga": _bga,
    "elco": _elco,
    "tantalum": _tantalum,
    "led": _led,
}
