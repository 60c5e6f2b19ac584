"""Part markings and polarity marks, seen from above (part_marking, polarity_mark).

A part fills a good part of the frame: an IC with 1-3 marked lines (part number, date code,
lot), a resistor's value code, a SOT's two- or three-character code, an electrolytic's value.
The asked positive is the first line, read upright (the marking may be printed upside down
relative to pin 1 and the part may lie at any quarter turn). Negatives are what a wrong reel
looks like: one character changed (look-alikes first), two swapped, one dropped or added, the
asked text on another line, or an unrelated part number. The polarity marker (dot, dimple,
corner bevel, notch, printed triangle) is drawn clearly inside one quadrant of the body as the
image shows it; a rotation that would bring it near the body's centre lines is not drawn.
"""

from __future__ import annotations

import math
import re

import numpy as np

from pnp_vision.devtools.second_look.board import FINISHES, MASK_COLOURS
from pnp_vision.devtools.second_look.canvas import (
    Canvas,
    Colour,
    place,
    rect_points,
    rotate,
    shade,
    smooth_noise,
)
from pnp_vision.devtools.second_look.parts import (
    PACKAGES,
    Package,
    PartDrawer,
    draw_top,
    part_look,
)
from pnp_vision.devtools.second_look.shots import Ctx, Draft, pick, roi_half

MARKING = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")  # the template's parameter pattern
LOOKALIKES = {
    "O": "0",
    "0": "OD",
    "I": "1",
    "1": "I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "2",
    "2": "Z",
    "D": "0",
    "G": "6",
    "6": "G",
}
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
MARKED = (
    "SOIC8",
    "SOIC16",
    "TSSOP20",
    "QFP32",
    "QFP64",
    "QFN16",
    "QFN32",
    "BGA64",
    "BGA100",
    "SOT23",
    "SOT223",
    "R0805",
    "R1206",
    "R2512",
    "ELEC5",
    "ELEC6",
    "TANT-B",
    "XTAL3225",
)
POLARISED = ("soic", "qfp", "qfn", "bga", "crystal")
PREFIXES = (
    "LM",
    "TL",
    "NE",
    "STM32F",
    "ATMEGA",
    "MAX",
    "TPS",
    "LP",
    "AD",
    "SN74HC",
    "MC",
    "IRF",
    "PIC16F",
    "NRF52",
    "CH",
    "XC",
    "LT",
    "OPA",
    "INA",
    "MCP",
    "PCA",
    "HT",
    "AMS",
    "GD32F",
    "W25Q",
    "74LVC",
    "BSS",
    "AO",
    "SI",
    "DS",
)
E24 = (
    "10",
    "11",
    "12",
    "13",
    "15",
    "16",
    "18",
    "20",
    "22",
    "24",
    "27",
    "30",
    "33",
    "36",
    "39",
    "43",
    "47",
    "51",
    "56",
    "62",
    "68",
    "75",
    "82",
    "91",
)


# -- strings --------------------------------------------------------------------------------
def part_number(rng: np.random.Generator) -> str:
    text = pick(rng, PREFIXES) + "".join(
        pick(rng, "0123456789") for _ in range(int(rng.integers(2, 5)))
    )
    if rng.random() < 0.5:
        text += pick(rng, ["P", "G", "A", "DR", "B", "CT", "S", "T6", "D"])
    if rng.random() < 0.2:
        text += pick(rng, ["-33", "-5", "-18", "-ADJ"])
    return text[:16]


def date_code(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"{int(rng.integers(15, 27)):02d}{int(rng.integers(1, 53)):02d}"
    return "".join(pick(rng, ALNUM) for _ in range(int(rng.integers(4, 7))))


def value_code(rng: np.random.Generator) -> str:
    """Resistor codes: 3-digit, 4-digit, with R for the decimal point, or EIA-96."""
    k = int(rng.integers(4))
    if k == 0:
        return pick(rng, E24) + str(int(rng.integers(0, 7)))
    if k == 1:
        return pick(rng, E24) + pick(rng, "0123456789") + str(int(rng.integers(0, 5)))
    if k == 2:
        v = pick(rng, E24)
        return v[0] + "R" + v[1]
    return f"{int(rng.integers(1, 97)):02d}" + pick(rng, "ZYRXSABCDEFH")


def marking_lines(rng: np.random.Generator, pkg: Package) -> list[str]:
    k = pkg.kind
    if k == "chip_r":
        return [value_code(rng)]
    if k == "sot23":
        return ["".join(pick(rng, ALNUM) for _ in range(int(rng.integers(2, 4))))]
    if k == "elec":
        return [
            pick(rng, ["10", "22", "47", "100", "220", "330", "470"]),
            pick(rng, ["6V3", "10V", "16V", "25V", "35V", "50V"]),
        ]
    if k == "tant":
        return [pick(rng, ["105", "475", "106", "226", "107", "476"]) + pick(rng, "ACDEV")]
    if k == "crystal":
        return [pick(rng, ["8M", "12M", "16M", "24M", "25M", "32M"]) + pick(rng, ["", "-T", "HZ"])]
    lines = [part_number(rng)]
    n = 1 if pkg.kind in ("sot223", "qfn") and pkg.length < 4 else int(rng.integers(1, 4))
    if n >= 2:
        lines.append(date_code(rng))
    if n >= 3:
        lines.append(
            pick(rng, ["PHL", "TWN", "CHN", "MYS", "E4", "G4", "KOR"])
            + str(int(rng.integers(0, 10)))
        )
    return lines


def _valid(text: str, positive: str) -> bool:
    return bool(MARKING.match(text)) and text != positive


def negative(rng: np.random.Generator, lines: list[str]) -> tuple[str, str]:
    """A text the first line does not read, and how it differs from it."""
    positive = lines[0]
    roll = rng.random()
    if roll < 0.15:
        others = [t for t in lines[1:] if _valid(t, positive)]
        if others:
            return pick(rng, others), "other_line"
    if roll < 0.30:
        for _ in range(20):
            t = part_number(rng) if rng.random() < 0.7 else value_code(rng)
            if _valid(t, positive):
                return t, "unrelated"
    if roll < 0.45:
        pairs = [i for i in range(len(positive) - 1) if positive[i] != positive[i + 1]]
        rng.shuffle(pairs)
        for i in pairs:
            t = positive[:i] + positive[i + 1] + positive[i] + positive[i + 2 :]
            if _valid(t, positive):
                return t, "swapped"
    if roll < 0.60:
        for _ in range(20):
            if rng.random() < 0.5 and len(positive) > 1:
                i = int(rng.integers(len(positive)))
                t, kind = positive[:i] + positive[i + 1 :], "missing"
            else:
                i = int(rng.integers(len(positive) + 1))
                t, kind = positive[:i] + pick(rng, ALNUM) + positive[i:], "extra"
            if _valid(t, positive):
                return t, kind
    return changed(rng, positive)


def changed(rng: np.random.Generator, positive: str) -> tuple[str, str]:
    """One character changed, to a look-alike where the text has one."""
    spots = [i for i, ch in enumerate(positive) if ch in LOOKALIKES]
    if spots:
        i = pick(rng, spots)
        t = positive[:i] + pick(rng, LOOKALIKES[positive[i]]) + positive[i + 1 :]
        if _valid(t, positive):
            return t, "lookalike"
    while True:
        i = int(rng.integers(len(positive)))
        t = positive[:i] + pick(rng, ALNUM) + positive[i + 1 :]
        if _valid(t, positive):
            return t, "changed"


def corner_of(dx: float, dy: float) -> str:
    """The image quadrant (y down) of an offset from the body's centre."""
    return ("top" if dy < 0 else "bottom") + "_" + ("left" if dx < 0 else "right")


# -- scene ----------------------------------------------------------------------------------
def part_top(ctx: Ctx) -> Draft:
    """One part large in the frame, marked, maybe with a polarity marker."""
    rng = ctx.rng
    pkg = PACKAGES[pick(rng, MARKED)]
    look = part_look(ctx.look_rng, pkg, from_below=False)
    hx, hy = roi_half(ctx.size, 1.0)
    marker = pick(rng, ["dot", "dimple", "ink_dot", "bevel", "notch", "triangle"])
    polarised = pkg.kind in POLARISED
    # a rotation that keeps the marker well inside one image quadrant
    inset = 0.12 * min(pkg.length, pkg.width)
    local = (-pkg.length / 2 + inset, -pkg.width / 2 + inset)
    for _ in range(50):
        angle = 90.0 * int(rng.integers(4)) + float(rng.uniform(-12, 12))
        dx, dy = rotate(rotate(local, angle), ctx.rotation)
        d = math.hypot(dx, dy)
        if not polarised or min(abs(dx), abs(dy)) >= 0.25 * d:
            break
    else:
        angle = 0.0
    ex, ey = _half_box(pkg, angle + ctx.rotation)
    extent = float(rng.uniform(0.4, 0.75)) * 224
    upm = extent / max(pkg.span_x, pkg.span_y)
    upm = min(upm, 0.92 * hx / ex, 0.92 * hy / ey)
    room_x, room_y = max(0.0, hx - ex * upm - 3), max(0.0, hy - ey * upm - 3)
    shift = rotate(
        (float(rng.uniform(-1, 1) * room_x), float(rng.uniform(-1, 1) * room_y)), -ctx.rotation
    )
    centre = (shift[0] * 0.6, shift[1] * 0.6)
    cv = _background(ctx, pkg, centre, angle, upm)
    d = PartDrawer(cv, pkg, centre, angle, upm, look)
    lines = marking_lines(rng, pkg)
    style = pick(rng, ["laser", "laser", "ink", "dots"]) if pkg.kind not in ("elec",) else "ink"
    text_style = {
        "style": style,
        "flip": bool(rng.random() < 0.3),
        "squeeze": float(rng.uniform(0.78, 1.0)),
        "size": 0.15 if polarised else 0.28,
    }
    draw_top(d, lines, text_style)
    wrong, how = negative(rng, lines)
    questions = [
        ("part_marking", {"marking": lines[0]}, "YES"),
        ("part_marking", {"marking": wrong}, "NO"),
    ]
    truth: dict = {
        "package": pkg.name,
        "lines": lines,
        "negative": wrong,
        "negative_kind": how,
        "angle": angle,
        "centre": centre,
        "upm": upm,
    }
    if polarised:
        _polarity(d, local, marker, look.body)
        ix, iy = rotate(rotate((local[0] * upm, local[1] * upm), angle), ctx.rotation)
        corner = corner_of(ix, iy)
        other = pick(rng, [c for c in CORNERS if c != corner])
        questions += [
            ("polarity_mark", {"corner": corner}, "YES"),
            ("polarity_mark", {"corner": other}, "NO"),
        ]
        truth.update(corner=corner, marker=marker, marker_image_offset=(ix, iy))
    return Draft("part_top", cv, questions, truth)


def _half_box(pkg: Package, angle: float) -> tuple[float, float]:
    """Half extents (mm) of the part's outline turned by `angle`, in image axes."""
    pts = [rotate(p, angle) for p in rect_points(pkg.span_x, pkg.span_y)]
    return max(abs(p[0]) for p in pts), max(abs(p[1]) for p in pts)


def _background(ctx: Ctx, pkg: Package, centre, angle: float, upm: float) -> Canvas:
    """A board with the part's land pattern, a tray, or a gel pack."""
    r = ctx.look_rng
    kind = pick(r, ["board", "board", "tray", "gel"])
    tex = ctx.texture()
    mask = MASK_COLOURS[pick(r, ctx.style.masks)]
    colour: Colour = {"board": mask, "tray": (46, 46, 50), "gel": (120, 128, 140)}[kind]
    cv = ctx.canvas(colour)
    w, h = cv.work_size
    cv.texture(
        smooth_noise(ctx.rng, (h, w), 30 * cv.k) * 10 * tex
        + smooth_noise(ctx.rng, (h, w), 2 * cv.k) * 3 * tex
    )
    if kind == "board":
        pad = FINISHES[pick(r, list(FINISHES))]
        pts = rect_points(pkg.span_x + 0.6, pkg.span_y + 0.6)
        if pkg.kind in ("soic", "sot23", "sot223", "qfp"):
            for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
                cv.polygon(
                    place(
                        [
                            (
                                x * upm * 0.5 + sx * pkg.span_x * upm * 0.25,
                                y * upm * 0.5 + sy * pkg.span_y * upm * 0.3,
                            )
                            for x, y in pts
                        ],
                        centre,
                        angle,
                    ),
                    fill=shade(pad, 0.9),
                )
        silk = (236, 236, 230) if sum(mask) < 500 else (20, 20, 20)
        o = rect_points(pkg.span_x * 1.1 + 1.0, pkg.span_y * 1.1 + 1.0)
        cv.polygon(
            place([(x * upm, y * upm) for x, y in o], centre, angle), outline=silk, width=0.15 * upm
        )
    cv.shadow(
        [
            place(
                [
                    (x * upm + 0.4 * upm, y * upm + 0.5 * upm)
                    for x, y in rect_points(pkg.length, pkg.width)
                ],
                centre,
                angle,
            )
        ],
        blur=0.5 * upm,
        opacity=0.45,
    )
    return cv


def _polarity(d: PartDrawer, local: tuple[float, float], marker: str, body: Colour) -> None:
    """Pin 1's marker at part-local `local` (mm), painted on mask layer "polarity"."""
    cv = d.cv
    m = min(d.pkg.length, d.pkg.width)
    r = 0.065 * m * d.upm
    c = d.at(*local)
    dark = sum(body[:3]) < 300
    if marker == "ink_dot":
        cv.circle(c, r, fill=(236, 236, 230) if dark else (20, 20, 20), layer="polarity")
    elif marker == "dimple":
        cv.circle(c, r * 1.2, fill=shade(body, 0.6 if not dark else 2.2), layer="polarity")
        cv.circle((c[0] + 0.25 * r, c[1] + 0.25 * r), r * 0.9, fill=shade(body, 0.85))
    elif marker == "dot":
        cv.circle(c, r, fill=shade(body, 1.9 if dark else 0.6), layer="polarity")
    elif marker in ("bevel", "notch"):
        L, W = d.pkg.length, d.pkg.width
        cut = 0.22 * m
        corner = (-L / 2, -W / 2)
        if marker == "bevel":
            pts = [corner, (corner[0] + cut, corner[1]), (corner[0], corner[1] + cut)]
        else:
            pts = [corner] + [
                (corner[0] + cut * math.cos(a), corner[1] + cut * math.sin(a))
                for a in np.linspace(0, math.pi / 2, 10)
            ]
        cv.polygon(d.P(pts), fill=shade(body, 2.4 if dark else 0.55), layer="polarity")
    else:  # triangle
        s = 0.18 * m
        x, y = local
        pts = [(x - s / 2, y - s / 2), (x + s / 2, y - s / 2), (x - s / 2, y + s / 2)]
        cv.polygon(d.P(pts), fill=(236, 236, 230) if dark else (24, 24, 24), layer="polarity")
