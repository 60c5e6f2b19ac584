"""Marked parts seen from above at their real proportions, with the polarity cues they carry.

A part is data in millimetres (origin at the body's centre, x along the body's length, y
across it): what to fill in which order (pads, leads, body, cues), where its marking may go,
what it reads, and its polarity cues. Drawing is one pure function of the part and a pose, so
the scene knows exactly where every cue landed. Families and sizes are the real ones: SOIC,
TSSOP, LQFP/TQFP, QFN, SOT-23(-5/6), SOT-223, 0603-1206 chip resistors, tantalum and
aluminium electrolytic capacitors, SOD-123 / SMA diodes.

Polarity cues as parts show them: a pin-1 dot (printed, laser-etched or a moulded dimple) and a
chamfered body corner lie in one corner of the body: they answer polarity_mark. A bevelled
long edge, an end notch, a cathode or anode band and an electrolytic's stripe span a side and
sit on a centre line: they are drawn (a part may carry them beside a dot) but never asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pnp_vision.devtools import marking_codes as codes
from pnp_vision.devtools.marking_text import CONDENSED, DOT_MATRIX, REGULAR, Face

Color = tuple[int, int, int]
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Shape:
    """A filled polygon (`pts`, k x 2) or disc (`pts` its centre, radius `r`), in mm."""

    pts: np.ndarray
    color: Color
    r: float = 0.0


@dataclass(frozen=True)
class Cue:
    """A polarity cue: ``kind`` (dot, chamfer, bevel, notch, band, stripe), where it is (its
    centre, mm) and how far it reaches from there; ``corner``: it lies in one quadrant.
    ``shapes`` (corner cues): where it is seen, in drawing order: a dot's disc (a dimple's lit
    rim, then its darker core), or the corner a chamfer cut off the body (in the body's
    colour: what lies below shows there instead)."""

    kind: str
    at: tuple[float, float]
    reach: float
    corner: bool
    shapes: tuple[Shape, ...] = ()


@dataclass
class Part:
    family: str
    package: str
    body: tuple[float, float]  # half length, half width of the body (mm)
    extent: tuple[float, float]  # half sizes with leads and terminals (mm)
    shapes: list[Shape] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    text_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # cx, cy, w, h (mm)
    alt_box: tuple[float, float, float, float] | None = None  # another place the text fits
    text_turn: float = 0.0  # the marking's upright direction in the part's frame (degrees)
    max_cap: float = 1.0  # the tallest capital such a part is marked with (mm)
    faces: tuple[Face, ...] = (REGULAR,)
    ink: Color = (220, 220, 220)
    surface: Color = (30, 30, 30)  # what the text is printed on
    illegible: bool = False  # drawn too small to read in this frame: asked about its cue only

    @property
    def corner_cue(self) -> Cue | None:
        """The cue polarity_mark asks about, a dot before a chamfer in the same corner (None:
        this part carries no corner cue)."""
        corners = sorted((c for c in self.cues if c.corner), key=lambda c: c.kind != "dot")
        return corners[0] if corners else None


def _c(rng: np.random.Generator, lo: int, hi: int, tint: int = 6) -> Color:
    """A grey between lo and hi with a small random tint."""
    v = int(rng.integers(lo, hi + 1))
    return tuple(int(np.clip(v + rng.integers(-tint, tint + 1), 0, 255)) for _ in range(3))


def _shade(color: Color, delta: int) -> Color:
    return tuple(int(np.clip(v + delta, 0, 255)) for v in color)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def _body(bx: float, by: float, cut: float = 0.0, corner: tuple[int, int] = (-1, -1)):
    """The body's outline; `cut` mm off the `corner` (signs of x, y) when chamfered."""
    pts = [(-bx, -by), (bx, -by), (bx, by), (-bx, by)]
    if cut <= 0:
        return np.array(pts, dtype=np.float64)
    sx, sy = corner
    out = []
    for x, y in pts:
        if np.sign(x) == sx and np.sign(y) == sy:  # replace the corner by two points
            first, second = (x - sx * cut, y), (x, y - sy * cut)
            out.extend([first, second] if sx * sy < 0 else [second, first])
        else:
            out.append((x, y))
    return np.array(out, dtype=np.float64)


def _ink(rng: np.random.Generator, epoxy: Color) -> tuple[Color, tuple[Face, ...]]:
    """How an IC is marked: laser-etched (a low-contrast grey a little above the epoxy) or
    ink-printed (white); and the faces that process writes."""
    if rng.random() < 0.65:
        return _shade(epoxy, int(rng.integers(55, 95))), (REGULAR, CONDENSED)
    return _c(rng, 190, 240, 8), (REGULAR, CONDENSED, DOT_MATRIX)


def _metal(rng: np.random.Generator) -> Color:
    return _c(rng, 165, 235, 5)


def _pad(rng: np.random.Generator) -> Color:
    return (
        _c(rng, 150, 200, 4) if rng.random() < 0.6 else tuple(int(v) for v in (70, 150, 195))
    )  # tinned, or gold (ENIG)


def _dot_cue(
    rng: np.random.Generator, part: Part, corner: tuple[int, int], epoxy: Color, ink: Color
) -> None:
    """A pin-1 dot in `corner`: printed like the marking, or a moulded dimple."""
    bx, by = part.body
    side = 2 * min(bx, by)
    r = min(0.6, side * rng.uniform(0.06, 0.1))
    inset = r + side * rng.uniform(0.06, 0.12)
    at = (corner[0] * (bx - inset), corner[1] * (by - inset))
    if rng.random() < 0.55:  # a moulded dimple: darker, with a lit rim
        shapes = (
            Shape(np.array([at]), _shade(epoxy, int(rng.integers(18, 35))), r),
            Shape(np.array([at]), _shade(epoxy, -int(rng.integers(12, 25))), r * 0.8),
        )
    else:
        shapes = (Shape(np.array([at]), ink, r),)
    part.shapes.extend(shapes)
    part.cues.append(Cue("dot", at, r, True, shapes))


def _gull_wings(
    part: Part, rng: np.random.Generator, xs: np.ndarray, y_edge: float, span: float, w: float
) -> None:
    """Leads along y = +-y_edge ... +-span (sign of y_edge), at x positions `xs`."""
    metal, pad = _metal(rng), _pad(rng)
    foot = (span - abs(y_edge)) * 0.55
    s = np.sign(y_edge)
    for x in xs:
        part.shapes.append(Shape(_rect(x - w * 0.8, s * (span - foot * 1.1), x + w * 0.8,
                                       s * (span + 0.25)), pad))  # fmt: skip
        part.shapes.append(Shape(_rect(x - w / 2, y_edge, x + w / 2, s * span), metal))
        part.shapes.append(Shape(_rect(x - w / 2, y_edge, x + w / 2, y_edge + s * 0.25 *
                                       (span - abs(y_edge))), _shade(metal, -60)))  # fmt: skip


def _ic_body(part: Part, rng: np.random.Generator, cut_corner: tuple[int, int] | None) -> Color:
    bx, by = part.body
    epoxy = _c(rng, 18, 50, 5)
    cut = 2 * min(bx, by) * rng.uniform(0.08, 0.13) if cut_corner else 0.0
    part.shapes.append(Shape(_body(bx, by, cut, cut_corner or (-1, -1)), epoxy))
    if cut_corner:
        sx, sy = cut_corner
        at = (sx * (bx - cut / 3), sy * (by - cut / 3))
        corner = np.array(
            [(sx * bx, sy * by), (sx * (bx - cut), sy * by), (sx * bx, sy * (by - cut))]
        )
        part.cues.append(Cue("chamfer", at, cut * 0.5, True, (Shape(corner, epoxy),)))
    return epoxy


def _text_box_clear_of(part: Part, margin: float, edge: float = 0.0) -> None:
    """The marking's boxes: the body less a margin (and `edge` more off the long sides: a
    bevel), kept clear of a corner cue sideways, or (`alt_box`) above and below it; the
    layout takes the one that holds the larger text."""
    bx, by = part.body
    by = by - edge
    half_w, half_h = bx - margin, by - margin
    for cue in part.cues:
        if cue.corner:
            half_w = min(half_w, abs(cue.at[0]) - cue.reach - margin * 0.6)
            half_h = min(half_h, abs(cue.at[1]) - cue.reach - margin * 0.6)
    part.text_box = (0.0, 0.0, 2 * max(half_w, bx * 0.3), 2 * (by - margin))
    if half_h < by - margin:
        part.alt_box = (0.0, 0.0, 2 * (bx - margin), 2 * max(half_h, by * 0.3))


def _corner(rng: np.random.Generator) -> tuple[int, int]:
    return (1 if rng.random() < 0.5 else -1, 1 if rng.random() < 0.5 else -1)


def soic(rng: np.random.Generator) -> Part:
    """SOIC-8/14/16 or TSSOP-8/14/16/20: gull wings on the long sides."""
    tssop = rng.random() < 0.35
    if tssop:
        pins, length = [(8, 3.0), (14, 5.0), (16, 5.0), (20, 6.5)][int(rng.integers(4))]
        width, span, pitch, lead, family = 4.4, 3.2, 0.65, 0.25, "tssop"
    else:
        pins, length = [(8, 4.9), (14, 8.65), (16, 9.9)][int(rng.integers(3))]
        width, span, pitch, lead, family = 3.9, 3.0, 1.27, 0.42, f"soic{pins}"
    part = Part("ic", f"{'TSSOP' if tssop else 'SOIC'}-{pins}", (length / 2, width / 2),
                (length / 2, span + 0.25))  # fmt: skip
    xs = (np.arange(pins // 2) - (pins // 2 - 1) / 2) * pitch
    for s in (-1, 1):
        _gull_wings(part, rng, xs, s * width / 2, span, lead)
    epoxy = _ic_body(part, rng, None)
    ink, faces = _ink(rng, epoxy)
    corner = _corner(rng)
    bx, by = part.body
    bevel = 2 * by * rng.uniform(0.12, 0.2) if rng.random() < 0.4 else 0.0
    if bevel:  # a bevel along the pin-1 edge
        y0 = corner[1] * by
        band = _rect(-bx, y0, bx, y0 - corner[1] * bevel)
        part.shapes.append(Shape(band, _shade(epoxy, int(rng.integers(14, 30)))))
        part.cues.append(Cue("bevel", (0.0, corner[1] * by * 0.85), by * 0.2, False))
    if rng.random() < 0.2:  # a half-round notch into the pin-1 end
        r = by * rng.uniform(0.15, 0.22)
        t = np.linspace(np.pi / 2, 3 * np.pi / 2, 13)
        notch = np.column_stack([corner[0] * (bx + r * np.cos(t)), r * np.sin(t)])
        part.shapes.append(Shape(notch, _shade(epoxy, -12)))
        part.cues.append(Cue("notch", (corner[0] * bx, 0.0), r, False))
    if rng.random() < 0.85:
        _dot_cue(rng, part, corner, epoxy, ink)
    part.lines = codes.ic_lines(rng, "tssop" if tssop else family)
    part.ink, part.faces, part.surface = ink, faces, epoxy
    part.max_cap = 0.7 if tssop else 1.0
    _text_box_clear_of(part, margin=0.35 if tssop else 0.45, edge=bevel)
    return part


def quad(rng: np.random.Generator) -> Part:
    """LQFP/TQFP (gull wings on four sides) or QFN (terminals flush with the body)."""
    if rng.random() < 0.6:
        choices = [("LQFP-48", 7.0, 0.5, 0.22, "lqfp48"), ("LQFP-64", 10.0, 0.5, 0.22, "lqfp64"),
                   ("LQFP-100", 14.0, 0.5, 0.22, "lqfp100"), ("TQFP-32", 7.0, 0.8, 0.37, "tqfp32"),
                   ("TQFP-44", 10.0, 0.8, 0.37, "tqfp44")]  # fmt: skip
        package, side, pitch, lead, family = choices[int(rng.integers(len(choices)))]
        qfn = False
    else:
        side = float(rng.choice([3.0, 4.0, 5.0, 6.0]))
        pitch, lead, family, qfn = 0.5, 0.25, "qfn", True
        package = f"QFN-{int(4 * (side - 1) / pitch) // 4 * 4}"
    half = side / 2
    span = half + (0.25 if qfn else 1.0)
    part = Part("ic", package, (half, half), (span + 0.25, span + 0.25))
    n = int((side - (1.0 if qfn else 1.5)) / pitch) + 1
    ts = (np.arange(n) - (n - 1) / 2) * pitch
    metal, pad = _metal(rng), _pad(rng)
    for turn in range(4):  # the four sides: leads as drawn on the bottom side, turned
        c, s = np.cos(turn * np.pi / 2), np.sin(turn * np.pi / 2)
        rot = np.array([[c, -s], [s, c]])
        for t in ts:
            if qfn:
                shapes = [
                    (_rect(t - 0.15, half - 0.05, t + 0.15, span + 0.15), pad),
                    (_rect(t - 0.12, half - 0.02, t + 0.12, half + 0.12), metal),
                ]
            else:
                shapes = [(_rect(t - lead * 0.8, span - 0.65, t + lead * 0.8, span + 0.25), pad),
                          (_rect(t - lead / 2, half, t + lead / 2, span), metal),
                          (_rect(t - lead / 2, half, t + lead / 2, half + 0.3),
                           _shade(metal, -60))]  # fmt: skip
            for pts, color in shapes:
                part.shapes.append(Shape(pts @ rot.T, color))
    corner = _corner(rng)
    chamfer = rng.random() < (0.2 if qfn else 0.4)
    dot = rng.random() < (0.9 if qfn else 0.85) or not chamfer
    epoxy = _ic_body(part, rng, corner if chamfer else None)
    ink, faces = _ink(rng, epoxy)
    if dot:
        _dot_cue(rng, part, corner, epoxy, ink)
    if not qfn and rng.random() < 0.25:  # ejector-pin marks: large, shallow, faint
        for k in range(int(rng.integers(1, 3))):
            other = (-corner[0], -corner[1]) if k == 0 else (corner[0], -corner[1])
            r = side * rng.uniform(0.1, 0.13)
            at = (other[0] * (half - r - side * 0.06), other[1] * (half - r - side * 0.06))
            part.shapes.append(Shape(np.array([at]), _shade(epoxy, int(rng.integers(5, 11))), r))
    part.lines = codes.ic_lines(rng, family)
    part.ink, part.faces, part.surface = ink, faces, epoxy
    part.max_cap = side * (0.16 if qfn else 0.12)
    _text_box_clear_of(part, margin=side * 0.1)
    return part


def sot(rng: np.random.Generator) -> Part:
    """SOT-23 (3 leads, a 2-3 character code), SOT-23-5/6 (sometimes a pin-1 dot) or SOT-223."""
    kind = rng.choice(["sot23", "sot23-6", "sot223"], p=[0.5, 0.25, 0.25])
    if kind == "sot223":
        bx, by, span = 3.25, 1.75, 3.5
        part = Part("sot", "SOT-223", (bx, by), (bx, span + 0.25))
        metal, pad = _metal(rng), _pad(rng)
        part.shapes.append(Shape(_rect(-1.8, -span - 0.25, 1.8, -by + 0.2), pad))
        part.shapes.append(Shape(_rect(-1.5, -span, 1.5, -by), metal))  # the tab
        _gull_wings(part, rng, np.array([-2.3, 0.0, 2.3]), by, span, 0.7)
        lines = codes.sot223_lines(rng)
    else:
        pins = 3 if kind == "sot23" else int(rng.choice([5, 6]))
        bx, by, span = 1.45, 0.65 if pins == 3 else 0.8, 1.2 if pins == 3 else 1.4
        part = Part("sot", "SOT-23" if pins == 3 else f"SOT-23-{pins}", (bx, by), (bx, span + 0.25))
        top = np.array([-0.95, 0.95]) if pins == 3 else np.array([-0.95, 0.0, 0.95])
        bottom = np.array([0.0]) if pins == 3 else (np.array([-0.95, 0.95]) if pins == 5 else top)
        _gull_wings(part, rng, top, by, span, 0.4)
        _gull_wings(part, rng, bottom, -by, span, 0.4)
        lines = codes.sot23_lines(rng)
    epoxy = _ic_body(part, rng, None)
    ink, faces = _ink(rng, epoxy)
    if kind == "sot23-6" and rng.random() < 0.5:
        _dot_cue(rng, part, _corner(rng), epoxy, ink)
    part.lines, part.ink, part.faces, part.surface = lines, ink, faces, epoxy
    part.max_cap = 1.1 if kind == "sot223" else 0.75
    _text_box_clear_of(part, margin=0.12 if kind != "sot223" else 0.35)
    return part


def chip_resistor(rng: np.random.Generator) -> Part:
    """A thick-film chip resistor: black top, metal end caps, a printed value code."""
    size = str(rng.choice(["0603", "0805", "1206"], p=[0.45, 0.35, 0.2]))
    length, width, cap = {"0603": (1.6, 0.8, 0.3), "0805": (2.0, 1.25, 0.4),
                          "1206": (3.2, 1.6, 0.5)}[size]  # fmt: skip
    bx, by = length / 2, width / 2
    part = Part("passive", size, (bx, by), (bx + 0.25, by + 0.15))
    pad, metal = _pad(rng), _metal(rng)
    for s in (-1, 1):
        part.shapes.append(Shape(_rect(s * (bx - cap * 0.6), -by - 0.15, s * (bx + 0.25),
                                       by + 0.15), pad))  # fmt: skip
        part.shapes.append(Shape(_rect(s * (bx - cap), -by, s * bx, by), metal))
    top = _c(rng, 15, 45, 4)
    part.shapes.append(Shape(_rect(-bx + cap * 0.85, -by, bx - cap * 0.85, by), top))
    part.lines = [codes.resistor_code(rng, size)]
    part.ink, part.faces, part.surface = _c(rng, 200, 245, 6), (REGULAR, CONDENSED), top
    part.text_box = (0.0, 0.0, 2 * (bx - cap * 0.95), 2 * by * 0.85)
    part.text_turn = 180.0 if rng.random() < 0.5 else 0.0  # printed either way on the reel
    part.max_cap = 0.65 * width
    return part


def tantalum(rng: np.random.Generator) -> Part:
    """A moulded tantalum capacitor: an anode band at the + end, value code (and voltage)."""
    case = str(rng.choice(["A", "B", "C", "D"]))
    length, width = {"A": (3.2, 1.6), "B": (3.5, 2.8), "C": (6.0, 3.2), "D": (7.3, 4.3)}[case]
    bx, by = length / 2, width / 2
    part = Part("passive", f"tantalum-{case}", (bx, by), (bx + 0.3, by))
    pad, metal = _pad(rng), _metal(rng)
    for s in (-1, 1):
        part.shapes.append(Shape(_rect(s * (bx - 0.3), -by * 0.8, s * (bx + 0.3), by * 0.8), pad))
        part.shapes.append(Shape(_rect(s * (bx - 0.1), -by * 0.6, s * (bx + 0.15), by * 0.6),
                                 metal))  # fmt: skip
    yellow = rng.random() < 0.7
    body = _color3(rng, (25, 150, 200), (60, 195, 240)) if yellow else _c(rng, 20, 45)
    part.shapes.append(Shape(_rect(-bx, -by, bx, by), body))
    band_w = length * rng.uniform(0.1, 0.15)
    band = _c(rng, 30, 70) if yellow else _shade(body, 70)
    part.shapes.append(Shape(_rect(-bx, -by, -bx + band_w, by), band))
    part.cues.append(Cue("band", (-bx + band_w / 2, 0.0), band_w / 2, False))
    part.lines = codes.tantalum_lines(rng)
    part.ink = _c(rng, 25, 60) if yellow else _c(rng, 180, 230)
    part.faces, part.surface = (REGULAR, CONDENSED), body
    part.text_box = (band_w / 2, 0.0, 2 * bx - band_w - 0.4, 2 * by - 0.4)
    part.max_cap = 0.45 * width
    return part


def _color3(rng: np.random.Generator, lo: Color, hi: Color) -> Color:
    return tuple(int(rng.integers(a, b + 1)) for a, b in zip(lo, hi, strict=True))


def electrolytic(rng: np.random.Generator) -> Part:
    """An aluminium electrolytic (V-chip) from above: the can's top with its negative stripe
    and printed value and voltage, on a plastic base chamfered at the + side."""
    d = float(rng.choice([4.0, 5.0, 6.3, 8.0]))
    half = d / 2 + 0.15
    part = Part("passive", f"electrolytic-{d:g}", (half, half), (half + 0.6, half))
    pad, metal = _pad(rng), _metal(rng)
    for s in (-1, 1):
        part.shapes.append(Shape(_rect(s * (half - 0.6), -0.6, s * (half + 0.9), 0.6), pad))
        part.shapes.append(Shape(_rect(s * (half - 0.2), -0.35, s * (half + 0.55), 0.35), metal))
    cut = d * 0.18
    base = np.array([(-half, -half), (half - cut, -half), (half, -half + cut),
                     (half, half - cut), (half - cut, half), (-half, half)])  # fmt: skip
    part.shapes.append(Shape(base, _c(rng, 20, 40)))
    can = _color3(rng, (165, 165, 160), (215, 210, 205))
    part.shapes.append(Shape(np.array([(0.0, 0.0)]), can, d / 2))
    # the negative stripe: the can's segment beyond a chord on the - side (x < 0)
    chord = -d / 2 + d * rng.uniform(0.2, 0.27)
    t = np.linspace(np.arccos(chord / (d / 2)), 2 * np.pi - np.arccos(chord / (d / 2)), 24)
    stripe = np.column_stack([np.cos(t), np.sin(t)]) * (d / 2 - 0.02)
    dark = _color3(rng, (15, 15, 15), (70, 45, 40))
    part.shapes.append(Shape(stripe, dark))
    part.cues.append(Cue("stripe", ((chord - d / 2) / 2, 0.0), (chord + d / 2) / 2, False))
    part.lines = codes.electrolytic_lines(rng)
    part.ink, part.faces, part.surface = _c(rng, 15, 50), (REGULAR, CONDENSED), can
    width = 2 * np.sqrt((d / 2) ** 2 - (d * 0.2) ** 2) - abs(chord) * 0.2
    part.text_box = ((chord + d / 2) / 2, 0.0, min(width, d / 2 - chord - 0.3), d * 0.55)
    part.max_cap = 0.2 * d
    return part


def diode(rng: np.random.Generator) -> Part:
    """SOD-123 (gull wings at the ends) or SMA (J-bend ends): black body, cathode band."""
    sma = rng.random() < 0.5
    length, width, term = (4.3, 2.6, 1.4) if sma else (2.7, 1.6, 0.6)
    bx, by = length / 2, width / 2
    reach = 0.25 if sma else 0.55
    part = Part("passive", "SMA" if sma else "SOD-123", (bx, by), (bx + reach + 0.2, by))
    pad, metal = _pad(rng), _metal(rng)
    for s in (-1, 1):
        part.shapes.append(Shape(_rect(s * (bx - 0.2), -term * 0.75, s * (bx + reach + 0.2),
                                       term * 0.75), pad))  # fmt: skip
        part.shapes.append(Shape(_rect(s * (bx - 0.1), -term / 2, s * (bx + reach), term / 2),
                                 metal))  # fmt: skip
    body = _c(rng, 18, 45)
    part.shapes.append(Shape(_rect(-bx, -by, bx, by), body))
    band_w = length * rng.uniform(0.1, 0.14)
    x0 = -bx + length * 0.05
    part.shapes.append(Shape(_rect(x0, -by, x0 + band_w, by), _c(rng, 130, 215)))
    part.cues.append(Cue("band", (x0 + band_w / 2, 0.0), band_w / 2, False))
    ink, faces = _ink(rng, body)
    part.lines, part.ink, part.faces, part.surface = codes.diode_lines(rng), ink, faces, body
    left = x0 + band_w + 0.15
    part.text_box = ((left + bx - 0.15) / 2, 0.0, bx - 0.15 - left, 2 * by - 0.3)
    part.max_cap = 0.45 * width
    return part


FAMILIES = {"soic": soic, "quad": quad, "sot": sot, "resistor": chip_resistor,
            "tantalum": tantalum, "electrolytic": electrolytic, "diode": diode}  # fmt: skip
FAMILY_WEIGHTS = (0.25, 0.3, 0.12, 0.12, 0.08, 0.06, 0.07)


def sample_part(rng: np.random.Generator, families: tuple[str, ...] = tuple(FAMILIES)) -> Part:
    """A part of one of `families`, drawn at their weights."""
    weights = np.array([FAMILY_WEIGHTS[list(FAMILIES).index(f)] for f in families])
    return FAMILIES[families[int(rng.choice(len(families), p=weights / weights.sum()))]](rng)


# -- drawing --------------------------------------------------------------------------------


def pose_matrix(centre: tuple[float, float], scale: float, angle: float) -> np.ndarray:
    """Part millimetres to frame pixels: `scale` px per mm, turned `angle` degrees clockwise
    as seen (y is down), the body's centre at `centre`."""
    c, s = np.cos(np.deg2rad(angle)) * scale, np.sin(np.deg2rad(angle)) * scale
    return np.array([[c, -s, centre[0]], [s, c, centre[1]]], dtype=np.float64)


def to_frame(m: np.ndarray, pts) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def draw_shapes(img: np.ndarray, shapes: list[Shape], m: np.ndarray) -> None:
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    for shape in shapes:
        pts = np.round(to_frame(m, shape.pts) * _ONE).astype(np.int32)
        if shape.r > 0:
            radius = round(shape.r * scale * _ONE)
            cv2.circle(img, (int(pts[0, 0]), int(pts[0, 1])), radius, shape.color, -1,
                       cv2.LINE_AA, _SHIFT)  # fmt: skip
        else:
            cv2.fillPoly(img, [pts], shape.color, cv2.LINE_AA, _SHIFT)
