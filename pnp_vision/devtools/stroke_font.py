"""A stroke font for part markings: the lines a laser or a pad printer draws on a package.

Real IC and passive markings are simple sans-serif strokes (laser-etched or ink-printed), not
the 5x7 dot matrix of `glyphs`. Each glyph is data: polylines in design units (cap height 6,
y down, x from 0 to the glyph's width), so a line of text is a list of polylines that any pose
(rotation, scale, condensing) maps to frame pixels and OpenCV draws with fixed-point
coordinates, byte-identical across OpenCV 4.x and 5.x (never OpenCV's own font rasteriser).

The look-alike pairs that decide a wrong reel stay apart by shape, as on real parts: O is
round and 0 narrow (a slashed zero is an option), B and D have a straight stem where 8 and 0
curve, 5 has a flat top and a corner where S curves, 2 a round top where Z is straight, G a
bar where 6 closes a loop, I serifs where 1 has a flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CAP = 6.0  # design units from the top of a capital to the baseline


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> list[tuple]:
    """Points of an elliptical arc, angles in degrees counter-clockwise as seen (y is down),
    from `a0` to `a1` (a1 < a0 runs clockwise), one point per 15 degrees or less."""
    n = max(2, int(np.ceil(abs(a1 - a0) / 15)) + 1)
    t = np.deg2rad(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy - ry * np.sin(t), strict=True))


def _ring(cx: float, cy: float, rx: float, ry: float) -> list[tuple]:
    return _arc(cx, cy, rx, ry, 90, 450)


@dataclass(frozen=True)
class Glyph:
    width: float
    strokes: tuple[np.ndarray, ...]


def _g(width: float, *strokes: list) -> Glyph:
    return Glyph(width, tuple(np.asarray(s, dtype=np.float64) for s in strokes))


_P_BOWL = [(0, 6), (0, 0), (2.5, 0), *_arc(2.5, 1.6, 1.5, 1.6, 90, -90), (0, 3.2)]
GLYPHS: dict[str, Glyph] = {
    "A": _g(4, [(0, 6), (2, 0), (4, 6)], [(0.7, 4), (3.3, 4)]),
    "B": _g(
        4,
        [(0, 0), (0, 6)],
        [(0, 0), (2.4, 0), *_arc(2.4, 1.5, 1.4, 1.5, 90, -90), (0, 3)],
        [(0, 3), (2.6, 3), *_arc(2.6, 4.5, 1.4, 1.5, 90, -90), (0, 6)],
    ),
    "C": _g(4, _arc(2, 3, 2, 3, 48, 312)),
    "D": _g(4, [(0, 0), (1.6, 0), *_arc(1.6, 3, 2.4, 3, 90, -90), (0, 6), (0, 0)]),
    "E": _g(4, [(4, 0), (0, 0), (0, 6), (4, 6)], [(0, 3), (3.2, 3)]),
    "F": _g(4, [(4, 0), (0, 0), (0, 6)], [(0, 3), (3.2, 3)]),
    "G": _g(4, [*_arc(2, 3, 2, 3, 48, 360), (2.2, 3)]),
    "H": _g(4, [(0, 0), (0, 6)], [(4, 0), (4, 6)], [(0, 3), (4, 3)]),
    "I": _g(2, [(1, 0), (1, 6)], [(0, 0), (2, 0)], [(0, 6), (2, 6)]),
    "J": _g(4, [(4, 0), *_arc(2, 4.3, 2, 1.7, 0, -165)]),
    "K": _g(4, [(0, 0), (0, 6)], [(4, 0), (0, 4)], [(1.4, 2.6), (4, 6)]),
    "L": _g(4, [(0, 0), (0, 6), (4, 6)]),
    "M": _g(4.6, [(0, 6), (0, 0), (2.3, 4.2), (4.6, 0), (4.6, 6)]),
    "N": _g(4, [(0, 6), (0, 0), (4, 6), (4, 0)]),
    "O": _g(4.4, _ring(2.2, 3, 2.2, 3)),
    "P": _g(4, _P_BOWL),
    "Q": _g(4.4, _ring(2.2, 3, 2.2, 3), [(2.6, 4.4), (4.4, 6.3)]),
    "R": _g(4, _P_BOWL, [(2, 3.2), (4, 6)]),
    "S": _g(4, [*_arc(2, 1.5, 1.9, 1.5, 25, 270), *_arc(2, 4.5, 2, 1.5, 90, -155)]),
    "T": _g(4, [(0, 0), (4, 0)], [(2, 0), (2, 6)]),
    "U": _g(4, [(0, 0), *_arc(2, 4.2, 2, 1.8, 180, 360), (4, 0)]),
    "V": _g(4, [(0, 0), (2, 6), (4, 0)]),
    "W": _g(4.6, [(0, 0), (1.15, 6), (2.3, 1.8), (3.45, 6), (4.6, 0)]),
    "X": _g(4, [(0, 0), (4, 6)], [(4, 0), (0, 6)]),
    "Y": _g(4, [(0, 0), (2, 3.2), (4, 0)], [(2, 3.2), (2, 6)]),
    "Z": _g(4, [(0, 0), (4, 0), (0, 6), (4, 6)]),
    "0": _g(3.4, _ring(1.7, 3, 1.7, 3)),
    "1": _g(3, [(0.4, 1.4), (1.9, 0), (1.9, 6)]),
    "2": _g(4, [*_arc(2, 1.8, 2, 1.8, 160, -30), (0, 6), (4, 6)]),
    "3": _g(4, [(0.3, 0), (3.8, 0), (1.8, 2.3), *_arc(2, 4.1, 2, 1.9, 96, -150)]),
    "4": _g(4, [(3, 6), (3, 0), (0, 4.2), (4, 4.2)]),
    "5": _g(4, [(3.8, 0), (0.4, 0), (0.3, 2.75), *_arc(1.9, 4.1, 2.1, 1.9, 136, -150)]),
    "6": _g(4, _ring(2, 4.1, 2, 1.9), _arc(2, 4.1, 2, 4.1, 70, 180)),
    "7": _g(4, [(0, 0), (4, 0), (1.5, 6)]),
    "8": _g(4, _ring(2, 1.45, 1.7, 1.45), _ring(2, 4.4, 2, 1.6)),
    "9": _g(4, _ring(2, 1.9, 2, 1.9), _arc(2, 1.9, 2, 4.1, 0, -110)),
    "-": _g(3.4, [(0.6, 3.2), (2.8, 3.2)]),
    ".": _g(1, [(0.5, 5.6), (0.5, 6)]),
    " ": _g(2.6),
}
_SLASH = np.array([(3.0, 0.9), (0.4, 5.1)])  # the slashed zero's bar
TRACKING = 0.9  # design units between glyphs


def line_strokes(
    text: str, aspect: float = 1.0, slashed_zero: bool = False
) -> tuple[list[np.ndarray], float]:
    """The polylines of one line of text in design units (x scaled by `aspect`: 0.6 is a
    condensed face), left edge at x = 0, and the line's width."""
    missing = sorted(set(text) - GLYPHS.keys())
    if missing:
        raise ValueError(f"no glyph for {missing}; the stroke font covers A-Z, 0-9, '-', '.', ' '")
    out: list[np.ndarray] = []
    x = 0.0
    for i, ch in enumerate(text):
        glyph = GLYPHS[ch]
        strokes = [*glyph.strokes, _SLASH] if ch == "0" and slashed_zero else glyph.strokes
        out.extend(s * (aspect, 1.0) + (x, 0.0) for s in strokes)
        x += glyph.width * aspect + (TRACKING * aspect if i < len(text) - 1 else 0.0)
    return out, x
