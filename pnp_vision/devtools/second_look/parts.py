"""Part packages at their real proportions, drawn from above (top side) or below (bottom side).

Sizes are millimetres from the packages' data sheets (body, height, the span over the leads);
a scene picks the camera's magnification (units per mm), so an 0402 on a 0.5 mm nozzle and a
QFP on a 3 mm one keep their true relation. Part-local axes: x along the body's length, y
across it; pin 1 (and the polarity marker) sits at the (-x, -y) corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pnp_vision.devtools.second_look.canvas import (
    Canvas,
    Colour,
    Point,
    mix,
    place,
    rect_points,
    rounded_rect_points,
    shade,
)


@dataclass(frozen=True)
class Package:
    name: str
    kind: str
    length: float  # body, mm (x)
    width: float  # body, mm (y)
    height: float  # body, mm
    span_x: float  # over leads or terminals, mm
    span_y: float
    pins: int = 2
    pitch: float = 0.0


def _chip(name: str, kind: str, l: float, w: float, t: float) -> Package:  # noqa: E741
    return Package(name, kind, l, w, t, l, w)


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in [
        _chip("R0201", "chip_r", 0.6, 0.3, 0.23),
        _chip("R0402", "chip_r", 1.0, 0.5, 0.35),
        _chip("R0603", "chip_r", 1.6, 0.8, 0.45),
        _chip("R0805", "chip_r", 2.0, 1.25, 0.5),
        _chip("R1206", "chip_r", 3.2, 1.6, 0.55),
        _chip("R2512", "chip_r", 6.3, 3.2, 0.6),
        _chip("C0201", "chip_c", 0.6, 0.3, 0.3),
        _chip("C0402", "chip_c", 1.0, 0.5, 0.5),
        _chip("C0603", "chip_c", 1.6, 0.8, 0.8),
        _chip("C0805", "chip_c", 2.0, 1.25, 1.0),
        _chip("C1206", "chip_c", 3.2, 1.6, 1.2),
        _chip("C1210", "chip_c", 3.2, 2.5, 1.6),
        _chip("MINIMELF", "melf", 3.5, 1.4, 1.4),
        _chip("MICROMELF", "melf", 2.0, 1.25, 1.25),
        Package("SOD123", "sod", 2.7, 1.6, 1.1, 3.7, 1.6),
        _chip("TANT-A", "tant", 3.2, 1.6, 1.6),
        _chip("TANT-B", "tant", 3.5, 2.8, 1.9),
        _chip("LED0603", "led", 1.6, 0.8, 0.6),
        _chip("LED-PLCC2", "led", 3.5, 2.8, 1.9),
        _chip("IND4x4", "inductor", 4.0, 4.0, 2.0),
        Package("XTAL3225", "crystal", 3.2, 2.5, 0.8, 3.2, 2.5, 4),
        Package("SOT23", "sot23", 2.9, 1.3, 1.0, 2.9, 2.4, 3, 0.95),
        Package("SOT223", "sot223", 6.5, 3.5, 1.6, 6.5, 7.0, 4, 2.3),
        Package("SOIC8", "soic", 4.9, 3.9, 1.5, 4.9, 6.0, 8, 1.27),
        Package("SOIC16", "soic", 9.9, 3.9, 1.5, 9.9, 6.0, 16, 1.27),
        Package("TSSOP20", "soic", 6.5, 4.4, 1.0, 6.5, 6.4, 20, 0.65),
        Package("QFN16", "qfn", 3.0, 3.0, 0.9, 3.0, 3.0, 16, 0.5),
        Package("QFN32", "qfn", 5.0, 5.0, 0.9, 5.0, 5.0, 32, 0.5),
        Package("QFP32", "qfp", 7.0, 7.0, 1.4, 9.0, 9.0, 32, 0.8),
        Package("QFP64", "qfp", 10.0, 10.0, 1.4, 12.0, 12.0, 64, 0.5),
        Package("BGA64", "bga", 8.0, 8.0, 1.2, 8.0, 8.0, 64, 0.8),
        Package("BGA100", "bga", 10.0, 10.0, 1.3, 10.0, 10.0, 100, 0.8),
        Package("ELEC5", "elec", 5.3, 5.3, 5.4, 5.3, 5.3),
        Package("ELEC6", "elec", 6.6, 6.6, 5.4, 6.6, 6.6),
    ]
}

TWO_TERMINAL = [
    n for n, p in PACKAGES.items() if p.kind in ("chip_r", "chip_c", "melf", "sod", "tant", "led")
]
COMMON = [
    "R0402",
    "R0603",
    "R0805",
    "C0402",
    "C0603",
    "C0805",
    "C1206",
    "SOT23",
    "SOIC8",
    "QFN32",
    "TANT-A",
]

# -- materials ------------------------------------------------------------------------------
CERAMIC_C = [(196, 166, 120), (168, 128, 86), (118, 86, 58), (150, 148, 140), (122, 128, 140)]
MELF_GLASS = [(64, 104, 176), (206, 132, 146), (84, 146, 96), (150, 190, 215)]
BAND = [(120, 60, 30), (200, 40, 30), (20, 20, 20), (230, 120, 20), (230, 200, 40), (40, 110, 200)]
SUBSTRATE = [(46, 74, 44), (70, 56, 36), (28, 40, 30)]


@dataclass(frozen=True)
class PartLook:
    """How one part's materials look to a camera (one draw per part)."""

    body: Colour  # epoxy, ceramic or glass
    metal: Colour  # leads, terminals, balls
    accent: Colour  # band, stripe, substrate
    gloss: float  # 0..1 specular strength
    silhouette: bool = False  # a backlit camera: everything the part covers is dark


def part_look(rng: np.random.Generator, pkg: Package, *, from_below: bool) -> PartLook:
    metal_v = int(rng.integers(175, 236))
    metal = (metal_v, metal_v - int(rng.integers(0, 10)), metal_v - int(rng.integers(4, 22)))
    if pkg.kind == "chip_r":
        v = int(rng.integers(205, 236)) if from_below else int(rng.integers(18, 40))
        body: Colour = (v, v - 4, v - 10) if from_below else (v, v, v + 4)
    elif pkg.kind == "chip_c":
        body = CERAMIC_C[int(rng.integers(len(CERAMIC_C)))]
    elif pkg.kind == "melf":
        body = MELF_GLASS[int(rng.integers(len(MELF_GLASS)))]
    elif pkg.kind == "tant":
        body = [(214, 168, 44), (36, 34, 38), (220, 120, 30)][int(rng.integers(3))]
    elif pkg.kind == "led":
        body = (230, 228, 218)
    elif pkg.kind == "inductor":
        v = int(rng.integers(50, 85))
        body = (v, v, v + 3)
    elif pkg.kind == "crystal":
        body = (214, 196, 160)
    elif pkg.kind == "elec":
        body = (30, 30, 34)
    else:
        v = int(rng.integers(20, 42))
        body = (v, v, v + int(rng.integers(0, 6)))
    accent = BAND[int(rng.integers(len(BAND)))]
    if pkg.kind == "bga":
        accent = SUBSTRATE[int(rng.integers(len(SUBSTRATE)))]
    return PartLook(body, metal, accent, float(rng.uniform(0.2, 1.0)))


class PartDrawer:
    """Draws one package at one place: `centre` and `angle` (scene), `upm` units per mm."""

    def __init__(
        self, cv: Canvas, pkg: Package, centre: Point, angle: float, upm: float, look: PartLook
    ) -> None:
        self.cv, self.pkg, self.centre, self.angle, self.upm, self.look = (
            cv,
            pkg,
            centre,
            angle,
            upm,
            look,
        )

    def P(self, pts: list[Point]) -> list[Point]:
        """Part-local millimetres -> scene units."""
        return place([(x * self.upm, y * self.upm) for x, y in pts], self.centre, self.angle)

    def at(self, x: float, y: float) -> Point:
        return self.P([(x, y)])[0]

    def box(self, cx: float, cy: float, w: float, h: float, colour: Colour, layer: str | None):
        pts = [(cx + x, cy + y) for x, y in rect_points(w, h)]
        self.cv.polygon(self.P(pts), fill=self._c(colour), layer=layer)

    def _c(self, colour: Colour) -> Colour:
        return (14, 14, 16) if self.look.silhouette else colour

    def metal_box(self, cx: float, cy: float, w: float, h: float, along_x: bool = True) -> None:
        """A tinned lead or terminal: metal with a brighter streak where the light catches."""
        m = self.look.metal
        self.box(cx, cy, w, h, shade(m, 0.8), "part")
        if self.look.silhouette:
            return
        g = self.look.gloss
        if along_x:
            self.box(cx, cy - h * 0.12, w * 0.9, h * 0.28, shade(m, 1.0 + 0.25 * g), None)
        else:
            self.box(cx - w * 0.12, cy, w * 0.28, h * 0.9, shade(m, 1.0 + 0.25 * g), None)

    def body(self, colour: Colour, corner: float = 0.06, bevel: bool = True) -> None:
        L, W = self.pkg.length, self.pkg.width
        r = corner * min(L, W)
        self.cv.polygon(self.P(rounded_rect_points(L, W, r)), fill=self._c(colour), layer="part")
        if bevel and not self.look.silhouette:
            inset = 0.07 * min(L, W)
            top = shade(colour, 1.18 if sum(colour[:3]) < 200 else 1.04)
            pts = rounded_rect_points(L - 2 * inset, W - 2 * inset, r)
            self.cv.polygon(self.P(pts), fill=top)


# -- seen from below (the up-looking camera) ------------------------------------------------
def draw_bottom(d: PartDrawer) -> None:
    """The part's underside as an up-looking camera under ring lights sees it."""
    pkg, lk = d.pkg, d.look
    L, W = pkg.length, pkg.width
    k = pkg.kind
    if k in ("chip_r", "chip_c", "led", "tant", "inductor"):
        d.body(lk.body, 0.04, bevel=k != "chip_r")
        e = {"chip_r": 0.2, "chip_c": 0.24, "led": 0.28, "tant": 0.22, "inductor": 0.26}[k] * L
        for s in (-1, 1):
            d.metal_box(s * (L - e) / 2, 0, e, W * (0.98 if k != "tant" else 0.55), along_x=False)
        if k == "led":
            d.box(-L / 2 + e * 0.5, -W * 0.3, e * 0.5, W * 0.25, (40, 150, 60), None)
    elif k == "melf":
        _cylinder(d)
    elif k == "sod":
        d.body(lk.body)
        for s in (-1, 1):
            d.metal_box(s * (L / 2 + 0.25), 0, 0.9, 0.6, along_x=False)
    elif k == "crystal":
        d.body(lk.body, 0.1)
        for sx in (-1, 1):
            for sy in (-1, 1):
                d.box(sx * L * 0.3, sy * W * 0.28, L * 0.32, W * 0.36, (214, 174, 70), "part")
    elif k in ("sot23", "sot223", "soic"):
        _gullwing(d)
    elif k == "qfn":
        d.body(lk.body, 0.03, bevel=False)
        ep = 0.58 * L
        d.box(0, 0, ep, ep, shade(lk.metal, 0.85), None)
        d.cv.polygon(
            d.P(
                [(-ep / 2, -ep / 2), (-ep / 2 + ep * 0.18, -ep / 2), (-ep / 2, -ep / 2 + ep * 0.18)]
            ),
            fill=d._c(lk.body),
        )
        _perimeter_pads(d, inside=True)
    elif k == "qfp":
        d.body(lk.body, 0.02)
        _perimeter_pads(d, inside=False)
    elif k == "bga":
        d.body(lk.accent, 0.02, bevel=False)
        _balls(d)
    elif k == "elec":
        _elec_bottom(d)


def _cylinder(d: PartDrawer) -> None:
    """A MELF: glass body shaded across its round, colour bands, bright end caps."""
    L, W = d.pkg.length, d.pkg.width
    lk = d.look
    cap = 0.16 * L
    n = 9
    prof = [abs(math.cos(math.pi * (i + 0.5) / n - math.pi / 2)) for i in range(n)]

    def shaded(colour: Colour) -> list[Colour]:
        return [d._c(shade(colour, 0.55 + 0.65 * p * (0.6 + 0.4 * lk.gloss))) for p in prof]

    def quad(x0: float, x1: float, colour: Colour, layer: str | None = None) -> None:
        a, b, c, e = d.P([(x0, -W / 2), (x0, W / 2), (x1, W / 2), (x1, -W / 2)])
        d.cv.strips(a, b, c, e, shaded(colour), layer=layer)

    quad(-L / 2 + cap, L / 2 - cap, lk.body, "part")
    for i, x in enumerate((-0.22 * L, -0.1 * L, 0.02 * L)):
        quad(x, x + 0.07 * L, BAND[(i * 2 + int(lk.gloss * 10)) % len(BAND)])
    quad(-L / 2, -L / 2 + cap, lk.metal, "part")
    quad(L / 2 - cap, L / 2, lk.metal, "part")


def _gullwing(d: PartDrawer) -> None:
    """SOT-23, SOT-223, SOIC/TSSOP: leads out of the long sides, feet flat on the ground."""
    pkg, lk = d.pkg, d.look
    W = pkg.width
    reach = (pkg.span_y - W) / 2
    foot = reach * 0.62
    if pkg.kind == "sot23":
        xs_pos, xs_neg, lw = [-pkg.pitch, pkg.pitch], [0.0], 0.4
    elif pkg.kind == "sot223":
        xs_pos, xs_neg, lw = [-pkg.pitch, 0.0, pkg.pitch], [], 0.7
    else:
        n = pkg.pins // 2
        xs = [(i - (n - 1) / 2) * pkg.pitch for i in range(n)]
        xs_pos, xs_neg, lw = xs, xs, 0.42 * pkg.pitch
    for s, xs in ((1, xs_pos), (-1, xs_neg)):
        for x in xs:
            d.box(x, s * (W / 2 + reach / 2), lw * 0.85, reach, shade(lk.metal, 0.6), "part")
            d.metal_box(x, s * (W / 2 + reach - foot / 2), lw, foot, along_x=False)
    if pkg.kind == "sot223":
        d.box(0, -(W / 2 + reach / 2), 3.0, reach, shade(lk.metal, 0.6), "part")
        d.metal_box(0, -(W / 2 + reach - foot / 2), 3.0, foot, along_x=True)
    d.body(lk.body, 0.05)


def _perimeter_pads(d: PartDrawer, inside: bool) -> None:
    """QFN pads flush under the body's edge, or QFP leads out of all four sides."""
    pkg = d.pkg
    L = pkg.length
    n = pkg.pins // 4
    span = pkg.span_x
    for side in range(4):
        for i in range(n):
            t = (i - (n - 1) / 2) * pkg.pitch
            if inside:
                cx, cy, w, h = t, -L / 2 + 0.2, pkg.pitch * 0.5, 0.4
            else:
                reach = (span - L) / 2
                cx, cy, w, h = t, -L / 2 - reach / 2, pkg.pitch * 0.45, reach
            for _ in range(side):
                cx, cy, w, h = -cy, cx, h, w
            d.metal_box(cx, cy, w, h, along_x=w > h)


def _balls(d: PartDrawer) -> None:
    """A BGA's solder balls: grey spheres, each with the ring light's highlight."""
    pkg, lk = d.pkg, d.look
    n = round(math.sqrt(pkg.pins))
    r = pkg.pitch * 0.3
    for i in range(n):
        for j in range(n):
            x = (i - (n - 1) / 2) * pkg.pitch
            y = (j - (n - 1) / 2) * pkg.pitch
            if n > 8 and abs(i - (n - 1) / 2) < 1.6 and abs(j - (n - 1) / 2) < 1.6:
                continue  # depopulated middle
            c = d.at(x, y)
            ru = r * d.upm
            if lk.silhouette:
                d.cv.circle(c, ru, fill=(14, 14, 16), layer="part")
                continue
            m = lk.metal
            d.cv.radial(c, ru, [(1.0, shade(m, 0.45)), (0.6, shade(m, 0.8)), (0.0, m)], "part")
            d.cv.circle((c[0] - 0.3 * ru, c[1] - 0.3 * ru), 0.22 * ru, fill=shade(m, 1.25))


def _elec_bottom(d: PartDrawer) -> None:
    """An SMD electrolytic from below: the black base plate (two corners cut) and its tabs."""
    L = d.pkg.length
    lk = d.look
    d.cv.circle(d.centre, L * 0.5 * d.upm, fill=d._c(shade(lk.metal, 0.7)), layer="part")
    c = 0.22 * L
    h = L / 2
    pts = [(-h + c, -h), (h, -h), (h, h), (-h + c, h), (-h, h - c), (-h, -h + c)]
    d.cv.polygon(d.P(pts), fill=d._c(lk.body), layer="part")
    for s in (-1, 1):
        d.metal_box(s * L * 0.3, 0, L * 0.34, 0.7 * 0.9)


# -- seen from above (down-looking cameras) -------------------------------------------------
def draw_top(d: PartDrawer, marking: list[str] | None = None, text_style: dict | None = None):
    """The part's top side; `marking` lines are printed along its length (see `print_marking`)."""
    pkg, lk = d.pkg, d.look
    L, W = pkg.length, pkg.width
    k = pkg.kind
    if k in ("chip_r", "chip_c", "led", "inductor"):
        e = {"chip_r": 0.18, "chip_c": 0.22, "led": 0.16, "inductor": 0.2}[k] * L
        d.body(lk.body, 0.04, bevel=k != "chip_r")
        for s in (-1, 1):
            d.metal_box(s * (L - e) / 2, 0, e, W, along_x=False)
        if k == "led":
            d.cv.ellipse(
                d.at(0, 0), 0.3 * L * d.upm, 0.36 * W * d.upm, d.angle, fill=(236, 214, 120)
            )
            d.box(-L / 2 + e + 0.06 * L, -0.3 * W, 0.06 * L, 0.3 * W, (40, 150, 60), None)
    elif k == "tant":
        d.body(lk.body, 0.06)
        stripe = (110, 70, 20) if lk.body[0] > 150 else (205, 205, 200)
        d.box(-L * 0.36, 0, L * 0.1, W * 0.86, stripe, None)
        for s in (-1, 1):
            d.metal_box(s * L * 0.47, 0, 0.06 * L, W * 0.55, along_x=False)
    elif k == "melf":
        _cylinder(d)
    elif k == "sod":
        for s in (-1, 1):
            d.metal_box(s * (L / 2 + 0.25), 0, 0.9, 0.6, along_x=False)
        d.body(lk.body)
        d.box(-L * 0.32, 0, L * 0.12, W * 0.86, (190, 190, 186), None)
    elif k == "crystal":
        d.body((206, 192, 160), 0.1, bevel=False)
        pts = rounded_rect_points(L * 0.9, W * 0.86, 0.12 * W)
        d.cv.polygon(d.P(pts), fill=shade(lk.metal, 0.95), layer="part")
    elif k in ("sot23", "sot223", "soic"):
        _gullwing(d)
    elif k == "qfn":
        d.body(lk.body, 0.03)
        _qfn_edges(d)
    elif k == "qfp":
        _perimeter_pads(d, inside=False)
        d.body(lk.body, 0.02)
    elif k == "bga":
        d.body(lk.accent, 0.02, bevel=False)
        pts = rounded_rect_points(L * 0.84, W * 0.84, 0.03 * L)
        d.cv.polygon(d.P(pts), fill=lk.body, layer="part")
    elif k == "elec":
        _elec_top(d)
    if marking:
        print_marking(d, marking, **(text_style or {}))


def _qfn_edges(d: PartDrawer) -> None:
    """From above a QFN shows only the ends of its pads along the body's edges."""
    pkg = d.pkg
    L = pkg.length
    n = pkg.pins // 4
    for side in range(4):
        for i in range(n):
            cx, cy, w, h = (i - (n - 1) / 2) * pkg.pitch, -L / 2 + 0.05, pkg.pitch * 0.5, 0.1
            for _ in range(side):
                cx, cy, w, h = -cy, cx, h, w
            d.box(cx, cy, w, h, shade(d.look.metal, 0.85), None)


def _elec_top(d: PartDrawer) -> None:
    """An electrolytic can from above: base plate corners, the aluminium top, its dark
    negative-side half-moon (drawn toward -x)."""
    L = d.pkg.length
    lk = d.look
    h = L / 2
    c = 0.22 * L
    pts = [(-h + c, -h), (h, -h), (h, h), (-h + c, h), (-h, h - c), (-h, -h + c)]
    d.cv.polygon(d.P(pts), fill=(28, 28, 30), layer="part")
    r = 0.47 * L * d.upm
    m = lk.metal
    d.cv.radial(d.centre, r, [(1.0, shade(m, 0.7)), (0.9, m), (0.0, shade(m, 1.1))], "part")
    seg = [(-0.47 * L * math.cos(a), 0.47 * L * math.sin(a)) for a in np.linspace(-1.1, 1.1, 20)]
    seg = [(x, y) for x, y in seg] + [(-0.47 * L * math.cos(1.1), -0.47 * L * math.sin(1.1))]
    d.cv.polygon(d.P(seg), fill=(24, 26, 60) if lk.gloss > 0.6 else (22, 22, 24))
    d.cv.ring(d.centre, 0.2 * L * d.upm, 0.02 * L * d.upm, shade(m, 0.8))


def print_marking(
    d: PartDrawer,
    lines: list[str],
    *,
    style: str = "laser",
    size: float = 0.26,
    squeeze: float = 1.0,
    flip: bool = False,
    dx: float = 0.0,
) -> None:
    """The marking, centred on the body (offset `dx` mm along it), upright along +x (or
    upside down with `flip`): laser-etched (low contrast, soft), ink (crisp) or ink-jet dots.
    `size`: capital height as a share of the body's width, split over the lines."""
    pkg = d.pkg
    body_dark = sum(d.look.body[:3]) < 300
    if pkg.kind == "elec":  # printed small on the can, beside the stripe
        ink: Colour = (20, 20, 22)
        across = 0.3 * pkg.width
    elif style == "laser":
        ink = (150, 150, 146) if body_dark else (70, 66, 60)
        across = pkg.width * 0.8
    else:
        ink = (232, 232, 226) if body_dark else (24, 24, 28)
        across = pkg.width * 0.8
    n = len(lines)
    cap = min(size * pkg.width, across / (n + (n - 1) * 0.45))
    longest = max(len(t) for t in lines)
    room = 0.72 * pkg.length * (0.8 if pkg.kind in ("qfp", "bga", "qfn", "elec") else 1.0)
    cap = min(cap, room / max(1, longest) / 0.72 / squeeze)
    d.cv.text(
        d.at(dx, 0.0),
        lines,
        cap * d.upm,
        d.angle + (180 if flip else 0),
        ink,
        squeeze=squeeze,
        bold=style == "ink",
        dots=style == "dots",
        blur=0.05 * cap * d.upm if style == "laser" else 0.0,
        layer="marking",
    )


def mixed_metal(rng: np.random.Generator) -> Colour:
    """Tin, gold (ENIG) or copper (OSP) for pads."""
    kind = int(rng.integers(3))
    base = [(196, 196, 190), (222, 184, 90), (206, 130, 92)][kind]
    return mix(base, (255, 255, 255), float(rng.uniform(0, 0.15)))
