"""Lines of part-marking text in one of the marking faces, drawn at any pose.

A face is how a marking machine writes: a laser or pad printer draws strokes (`stroke_font`,
regular or condensed), an ink-jet prints a 5x7 dot matrix (`glyphs`). A block of lines is laid
out centred on (0, 0) in the caller's units (the part's millimetres) and drawn through a 2x3
affine map to frame pixels, so text turns and scales with its part. Only OpenCV primitives with
fixed-point coordinates draw (the same bytes on OpenCV 4.x and 5.x).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pnp_vision.devtools import stroke_font
from pnp_vision.devtools.glyphs import GLYPHS as DOT_GLYPHS

_SHIFT = 4  # sub-pixel bits, as in synthetic_scenes
_ONE = 1 << _SHIFT
LINE_PITCH = 1.55  # baseline to baseline, in cap heights
DOT_ROWS, DOT_ADVANCE = 7, 6  # the 5x7 matrix: cells per cap height, cells per character


@dataclass(frozen=True)
class Face:
    """``kind``: "stroke" or "dot". ``aspect``: glyph widths scaled by this (condensed < 1;
    stroke faces only). ``weight``: stroke width per cap height, or dot diameter per dot pitch.
    ``slashed_zero``: a bar through 0 (stroke faces; the dot font's 0 always has one)."""

    kind: str = "stroke"
    aspect: float = 1.0
    weight: float = 0.12
    slashed_zero: bool = False

    def advance(self, text: str) -> float:
        """The width of `text` in cap heights."""
        if self.kind == "dot":
            return (DOT_ADVANCE * len(text) - 1) / DOT_ROWS if text else 0.0
        return stroke_font.line_strokes(text, self.aspect)[1] / stroke_font.CAP


REGULAR = Face("stroke", 1.0, 0.12)
CONDENSED = Face("stroke", 0.62, 0.12)
DOT_MATRIX = Face("dot", 1.0, 0.85)


def block_size(lines: list[str], face: Face, cap: float) -> tuple[float, float]:
    """(width, height) of the block, in the units of `cap`."""
    width = max(face.advance(line) for line in lines) * cap
    return width, cap * (1 + LINE_PITCH * (len(lines) - 1))


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(pts * _ONE).astype(np.int32)


def draw_block(
    img: np.ndarray,
    lines: list[str],
    face: Face,
    cap: float,
    m: np.ndarray,
    colors: list[tuple[int, int, int]],
) -> None:
    """Draws `lines` (top first, each centred) as a block centred on (0, 0) of the map `m`
    (2x3, the caller's units to frame pixels), line k in `colors[k]`, in place."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # frame pixels per unit
    top = -block_size(lines, face, cap)[1] / 2
    for k, line in enumerate(lines):
        y0 = top + k * LINE_PITCH * cap  # the cap line of line k
        x0 = -face.advance(line) * cap / 2
        color = colors[k]
        if face.kind == "dot":
            pitch = cap / DOT_ROWS
            cells = [
                (x0 + (i * DOT_ADVANCE + c + 0.5) * pitch, y0 + (r + 0.5) * pitch)
                for i, ch in enumerate(line)
                if ch != " "
                for r, c in zip(*np.nonzero(DOT_GLYPHS[ch]), strict=True)
            ]
            if not cells:
                continue
            radius = round(face.weight * pitch * scale / 2 * _ONE)
            for x, y in _fixed(_apply(m, np.asarray(cells, dtype=np.float64))):
                cv2.circle(img, (int(x), int(y)), radius, color, -1, cv2.LINE_AA, _SHIFT)
        else:
            strokes, _ = stroke_font.line_strokes(line, face.aspect, face.slashed_zero)
            unit = cap / stroke_font.CAP
            polys = [_fixed(_apply(m, s * unit + (x0, y0))) for s in strokes]
            thickness = max(1, round(face.weight * cap * scale))
            cv2.polylines(img, polys, False, color, thickness, cv2.LINE_AA, _SHIFT)
