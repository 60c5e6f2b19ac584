"""Part markings drawn with our own 5x7 dot font, rasterised in numpy.

OpenCV's Hershey text changed between 4.x and 5.x (other pixels for the same call), so frames
with text were not reproducible across the OpenCV a user happens to have. This font is data and
its anti-aliasing is a fixed supersampling, so the same call gives the same bytes everywhere.
"""

from __future__ import annotations

import numpy as np

# Each glyph: 7 rows of 5 cells, "1" = ink. Covers the marking alphabet [A-Z0-9-], and the
# '.' and ' ' of date codes and voltages on a part's other lines.
_ROWS = {
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}
GLYPHS: dict[str, np.ndarray] = {
    ch: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool)
    for ch, rows in _ROWS.items()
}
_SUPERSAMPLE = 4  # sub-samples per pixel side: the anti-aliasing


def text_cells(text: str) -> np.ndarray:
    """The text as a boolean cell grid, 7 rows high, one empty column between glyphs."""
    missing = sorted(set(text) - GLYPHS.keys())
    if missing:
        raise ValueError(f"no glyph for {missing}; the font covers A-Z, 0-9, '-', '.' and ' '")
    gap = np.zeros((7, 1), dtype=bool)
    parts: list[np.ndarray] = []
    for i, ch in enumerate(text):
        parts.extend([gap, GLYPHS[ch]] if i else [GLYPHS[ch]])
    return np.concatenate(parts, axis=1)


def draw_text(
    img: np.ndarray, text: str, centre: tuple[float, float], width: float, color: tuple[int, ...]
) -> None:
    """Draws `text` centred at `centre`, `width` pixels wide, cells square, in place."""
    cells = text_cells(text)
    cell = width / cells.shape[1]
    x0, y0 = centre[0] - width / 2, centre[1] - cell * cells.shape[0] / 2
    h, w = img.shape[:2]
    left, top = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    right = min(w, int(np.ceil(x0 + width)))
    bottom = min(h, int(np.ceil(y0 + cell * cells.shape[0])))
    if right <= left or bottom <= top:
        return
    s = _SUPERSAMPLE
    xs = (np.arange(left * s, right * s) + 0.5) / s  # sub-sample centres, in pixels
    ys = (np.arange(top * s, bottom * s) + 0.5) / s
    col = np.floor((xs - x0) / cell).astype(np.int64)
    row = np.floor((ys - y0) / cell).astype(np.int64)
    inside = ((row >= 0) & (row < cells.shape[0]))[:, None] & ((col >= 0) & (col < cells.shape[1]))
    lit = inside & cells[row.clip(0, cells.shape[0] - 1)[:, None], col.clip(0, cells.shape[1] - 1)]
    cover = lit.reshape(bottom - top, s, right - left, s).mean(axis=(1, 3))[..., None]
    patch = img[top:bottom, left:right].astype(np.float32)
    ink = np.asarray(color, dtype=np.float32)
    img[top:bottom, left:right] = np.rint(patch * (1 - cover) + ink * cover).astype(img.dtype)
