"""Drawing in scene units through a camera: the second look's one drawing surface.

A scene is laid out in units of 1/224 of the frame's shorter side, origin at the frame's
centre, x right, y down, so the label rules (the nozzle gap in units) read the same at every
resolution. The canvas maps those units through the camera's rotation onto a supersampled
Pillow image; `finish()` shrinks it to the camera's size, which anti-aliases every edge.

Every primitive can also paint a named mask (`layer=`), so tests measure what was really drawn
(where the tip is, how long a standing part looks) instead of trusting the scene's own numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Point = tuple[float, float]
Colour = tuple[int, ...]  # RGB or RGBA, 0-255

UNITS = 224.0  # units across the frame's shorter side


def supersample_of(size: tuple[int, int]) -> float:
    """Work-image scale: 2x for small cameras (thin lines need it), less for big ones."""
    short = min(size)
    return 2.0 if short <= 600 else 1.5 if short <= 800 else 1.25


def rotate(p: Point, degrees: float) -> Point:
    """`p` turned by `degrees` (clockwise on screen: y points down)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return (p[0] * c - p[1] * s, p[0] * s + p[1] * c)


def place(points: Sequence[Point], centre: Point, degrees: float) -> list[Point]:
    """Part-local points turned by `degrees` and moved to `centre` (scene units)."""
    return [(centre[0] + q[0], centre[1] + q[1]) for q in (rotate(p, degrees) for p in points)]


def rect_points(w: float, h: float) -> list[Point]:
    return [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]


def rounded_rect_points(w: float, h: float, r: float, steps: int = 5) -> list[Point]:
    """A w x h rectangle centred on the origin with corners of radius r."""
    r = max(0.0, min(r, w / 2, h / 2))
    if r == 0:
        return rect_points(w, h)
    pts: list[Point] = []
    corners = [(w / 2 - r, h / 2 - r, 0), (-w / 2 + r, h / 2 - r, 90)]
    corners += [(-w / 2 + r, -h / 2 + r, 180), (w / 2 - r, -h / 2 + r, 270)]
    for cx, cy, start in corners:
        for i in range(steps + 1):
            a = math.radians(start + 90 * i / steps)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def mix(a: Colour, b: Colour, t: float) -> Colour:
    """Colour a..b at t in 0..1 (alpha kept when both carry it)."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=False))


def shade(colour: Colour, factor: float) -> Colour:
    """`colour` brightened (factor > 1) or darkened, clipped; alpha untouched."""
    rgb = tuple(max(0, min(255, round(c * factor))) for c in colour[:3])
    return rgb + tuple(colour[3:])


def with_alpha(colour: Colour, alpha: float) -> Colour:
    return (*colour[:3], max(0, min(255, round(255 * alpha))))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Value noise in about -1..1: random values every `cell` pixels, bicubically smoothed."""
    h, w = shape
    cell = max(1.0, cell)
    small = rng.uniform(-1.0, 1.0, (int(h / cell) + 3, int(w / cell) + 3)).astype(np.float32)
    img = Image.fromarray(small, mode="F")
    big = img.resize((int(small.shape[1] * cell), int(small.shape[0] * cell)), Image.BICUBIC)
    return np.asarray(big, dtype=np.float32)[:h, :w]


class Canvas:
    """A frame being drawn: scene units in, pixels out (see the module docstring)."""

    def __init__(
        self,
        size: tuple[int, int],
        *,
        rotation: float = 0.0,
        background: Colour = (0, 0, 0),
        supersample: float | None = None,
        track: bool = False,
    ) -> None:
        self.size = size
        self.rotation = rotation
        self.unit_px = min(size) / UNITS  # output pixels per unit
        ss = supersample_of(size) if supersample is None else supersample
        self.work_size = (round(size[0] * ss), round(size[1] * ss))
        self.ss = self.work_size[0] / size[0]
        self.k = self.unit_px * self.ss  # work pixels per unit
        self.image = Image.new("RGB", self.work_size, tuple(background[:3]))
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        a = math.radians(rotation)
        self._cos, self._sin = math.cos(a), math.sin(a)
        self.masks: dict[str, Image.Image] | None = {} if track else None

    @classmethod
    def over(cls, image: Image.Image, rotation: float = 0.0) -> Canvas:
        """Draw straight onto a finished frame (no supersampling: a software overlay)."""
        cv = cls(image.size, rotation=rotation, supersample=1.0)
        cv.image = image
        cv.draw = ImageDraw.Draw(image, "RGBA")
        return cv

    # -- geometry -------------------------------------------------------------------------
    @property
    def half_extent(self) -> Point:
        """Half the frame's width and height in units (the frame spans +-these)."""
        return (self.size[0] / self.unit_px / 2, self.size[1] / self.unit_px / 2)

    def px(self, p: Point) -> Point:
        """Scene units -> work-image pixels, through the camera's rotation."""
        x = p[0] * self._cos - p[1] * self._sin
        y = p[0] * self._sin + p[1] * self._cos
        return (self.work_size[0] / 2 + x * self.k, self.work_size[1] / 2 + y * self.k)

    def unpx(self, q: Point) -> Point:
        """Work-image pixels -> scene units (the inverse of `px`)."""
        x = (q[0] - self.work_size[0] / 2) / self.k
        y = (q[1] - self.work_size[1] / 2) / self.k
        return (x * self._cos + y * self._sin, -x * self._sin + y * self._cos)

    def _w(self, units: float) -> int:
        return max(1, round(units * self.k))

    def _mask(self, layer: str) -> ImageDraw.ImageDraw | None:
        if self.masks is None:
            return None
        if layer not in self.masks:
            self.masks[layer] = Image.new("L", self.work_size, 0)
        return ImageDraw.Draw(self.masks[layer])

    # -- primitives -----------------------------------------------------------------------
    def polygon(
        self,
        points: Sequence[Point],
        fill: Colour | None = None,
        outline: Colour | None = None,
        width: float = 0.0,
        layer: str | None = None,
    ) -> None:
        pts = [self.px(p) for p in points]
        if fill is not None:
            self.draw.polygon(pts, fill=fill)
        if layer and (m := self._mask(layer)) is not None:
            m.polygon(pts, fill=255)
        if outline is not None and width > 0:
            self.line([*points, points[0], points[1]], outline, width)

    def circle(
        self,
        centre: Point,
        r: float,
        fill: Colour | None = None,
        outline: Colour | None = None,
        width: float = 0.0,
        layer: str | None = None,
    ) -> None:
        x, y = self.px(centre)
        rp = max(0.5, r * self.k)
        box = (x - rp, y - rp, x + rp, y + rp)
        w = self._w(width) if outline is not None and width > 0 else 0
        self.draw.ellipse(box, fill=fill, outline=outline if w else None, width=w)
        if layer and (m := self._mask(layer)) is not None:
            m.ellipse(box, fill=255)

    def ring(self, centre: Point, r: float, width: float, colour: Colour) -> None:
        """An annulus of `width` units centred on radius r."""
        self.circle(centre, r + width / 2, outline=colour, width=width)

    def ellipse(
        self,
        centre: Point,
        rx: float,
        ry: float,
        angle: float = 0.0,
        fill: Colour | None = None,
        layer: str | None = None,
    ) -> None:
        n = max(24, int((rx + ry) * self.k))
        pts = [
            (rx * math.cos(2 * math.pi * i / n), ry * math.sin(2 * math.pi * i / n))
            for i in range(n)
        ]
        self.polygon(place(pts, centre, angle), fill=fill, layer=layer)

    def line(
        self,
        points: Sequence[Point],
        colour: Colour,
        width: float,
        layer: str | None = None,
        min_px: int = 1,
    ) -> None:
        """A polyline `width` units wide, each segment an exact quad (Pillow's own wide lines
        come out a pixel thinner in one direction than the other), with round joints."""
        pts = [self.px(p) for p in points]
        w = max(float(min_px), width * self.k)
        masks = [self.draw]
        if layer and (m := self._mask(layer)) is not None:
            masks.append(m)
        for d in masks:
            fill = colour if d is self.draw else 255
            if w <= 1.5:
                d.line(pts, fill=fill, width=1)
                continue
            h = w / 2
            for (x0, y0), (x1, y1) in itertools.pairwise(pts):
                n = math.hypot(x1 - x0, y1 - y0)
                if n == 0:
                    continue
                ox, oy = -(y1 - y0) / n * h, (x1 - x0) / n * h
                d.polygon(
                    [
                        (x0 + ox, y0 + oy),
                        (x1 + ox, y1 + oy),
                        (x1 - ox, y1 - oy),
                        (x0 - ox, y0 - oy),
                    ],
                    fill=fill,
                )
            for x, y in pts[1:-1]:
                d.ellipse((x - h, y - h, x + h, y + h), fill=fill)

    def radial(
        self,
        centre: Point,
        r: float,
        stops: Sequence[tuple[float, Colour]],
        layer: str | None = None,
    ) -> None:
        """A disc shaded by radius: `stops` are (fraction of r, colour) from the rim (1.0)
        inwards; circles painted outside in, so the last stop is the centre's colour."""
        steps = max(8, min(90, int(r * self.k / 1.5)))
        for i in range(steps + 1):
            f = 1.0 - i / steps
            if f < stops[-1][0]:
                break
            self.circle(centre, r * f, fill=_at(stops, f))
        if layer:
            self.circle(centre, r, layer=layer)

    def strips(
        self,
        a: Point,
        b: Point,
        c: Point,
        d: Point,
        colours: Sequence[Colour],
        layer: str | None = None,
    ) -> None:
        """Quad a-b-c-d shaded across: from edge a-d (colours[0]) to edge b-c (colours[-1])."""
        n = len(colours)
        for i, colour in enumerate(colours):
            t0, t1 = i / n, (i + 1) / n
            p0 = (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0)
            p1 = (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)
            q1 = (d[0] + (c[0] - d[0]) * t1, d[1] + (c[1] - d[1]) * t1)
            q0 = (d[0] + (c[0] - d[0]) * t0, d[1] + (c[1] - d[1]) * t0)
            self.polygon([p0, p1, q1, q0], fill=colour)
        if layer:
            self.polygon([a, b, c, d], layer=layer, fill=None)

    def text(
        self,
        centre: Point,
        lines: Sequence[str],
        cap_height: float,
        angle: float,
        colour: Colour,
        *,
        squeeze: float = 1.0,
        spacing: float = 0.45,
        bold: bool = False,
        dots: bool = False,
        blur: float = 0.0,
        layer: str | None = None,
    ) -> None:
        """Lines of text centred on `centre`, upright along `angle` (scene degrees), with
        capitals `cap_height` units tall. `squeeze` narrows the letters, `dots` redraws them
        as an ink-jet dot matrix, `blur` (units) softens laser-etched marks."""
        mask = text_mask(lines, cap_height * self.k, squeeze=squeeze, spacing=spacing, bold=bold)
        if dots:
            mask = _dot_matrix(mask, max(2, int(cap_height * self.k / 7)))
        if blur > 0:
            mask = mask.filter(ImageFilter.GaussianBlur(blur * self.k))
        mask = mask.rotate(-(angle + self.rotation), resample=Image.BICUBIC, expand=True)
        x, y = self.px(centre)
        at = (round(x - mask.width / 2), round(y - mask.height / 2))
        alpha = colour[3] / 255 if len(colour) > 3 else 1.0
        if alpha < 1.0:
            mask = mask.point(lambda v: int(v * alpha))
        self.image.paste(Image.new("RGB", mask.size, tuple(colour[:3])), at, mask)
        if layer and self._mask(layer) is not None and self.masks is not None:
            self.masks[layer].paste(255, at, mask)

    # -- whole-image operations -----------------------------------------------------------
    def shadow(
        self, polygons: Sequence[Sequence[Point]], blur: float, opacity: float, colour=(0, 0, 0)
    ) -> None:
        """Darken under `polygons` (already offset by the caller), softened by `blur` units."""
        pts = [[self.px(p) for p in poly] for poly in polygons]
        xs = [q[0] for poly in pts for q in poly]
        ys = [q[1] for poly in pts for q in poly]
        pad = int(3 * blur * self.k) + 4
        x0, y0 = max(0, int(min(xs)) - pad), max(0, int(min(ys)) - pad)
        x1 = min(self.work_size[0], int(max(xs)) + pad)
        y1 = min(self.work_size[1], int(max(ys)) + pad)
        if x1 <= x0 or y1 <= y0:
            return
        m = Image.new("L", (x1 - x0, y1 - y0), 0)
        d = ImageDraw.Draw(m)
        for poly in pts:
            d.polygon([(q[0] - x0, q[1] - y0) for q in poly], fill=int(255 * opacity))
        if blur > 0:
            m = m.filter(ImageFilter.GaussianBlur(blur * self.k))
        self.image.paste(Image.new("RGB", m.size, tuple(colour)), (x0, y0), m)

    def texture(self, amount: np.ndarray, tint: Colour = (255, 255, 255)) -> None:
        """Add a signed texture (work-image shaped, in grey levels) to the whole image."""
        arr = np.asarray(self.image, dtype=np.int16)
        add = np.rint(amount).astype(np.int16)
        if tuple(tint[:3]) == (255, 255, 255):
            arr += add[:, :, None]
        else:
            t = np.asarray(tint[:3], dtype=np.float32) / 255.0
            arr += np.rint(amount[:, :, None] * t[None, None, :]).astype(np.int16)
        self.image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        self.draw = ImageDraw.Draw(self.image, "RGBA")

    def scene_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Scene coordinates (units) of every work pixel: textures that turn with the camera."""
        w, h = self.work_size
        xs = (np.arange(w, dtype=np.float32) - w / 2) / self.k
        ys = (np.arange(h, dtype=np.float32) - h / 2) / self.k
        gx, gy = np.meshgrid(xs, ys)
        return gx * self._cos + gy * self._sin, -gx * self._sin + gy * self._cos

    def blur(self, units: float) -> None:
        """Soften what is drawn so far (a backdrop out of the depth of field)."""
        if units > 0:
            self.image = self.image.filter(ImageFilter.GaussianBlur(units * self.k))
            self.draw = ImageDraw.Draw(self.image, "RGBA")

    def finish(self) -> Image.Image:
        """The frame at the camera's size (area-averaged from the work image)."""
        if self.work_size == self.size:
            return self.image.copy()
        return self.image.resize(self.size, Image.BOX if self.ss >= 1.5 else Image.LANCZOS)

    def mask_units(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """Scene coordinates (units) of every pixel painted on mask `layer` (tests)."""
        if self.masks is None or layer not in self.masks:
            return np.zeros(0), np.zeros(0)
        ys, xs = np.nonzero(np.asarray(self.masks[layer]) > 127)
        w, h = self.work_size
        gx, gy = (xs + 0.5 - w / 2) / self.k, (ys + 0.5 - h / 2) / self.k
        return gx * self._cos + gy * self._sin, -gx * self._sin + gy * self._cos


def _at(stops: Sequence[tuple[float, Colour]], f: float) -> Colour:
    """The colour of radial `stops` (fractions falling from 1.0) at fraction f."""
    for (fa, ca), (fb, cb) in itertools.pairwise(stops):
        if fb <= f <= fa:
            return mix(ca, cb, 0.0 if fa == fb else (fa - f) / (fa - fb))
    return stops[0][1] if f > stops[0][0] else stops[-1][1]


_FONTS: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own scalable font (not the generator's glyphs), cached by pixel size."""
    px = max(6, px)
    if px not in _FONTS:
        _FONTS[px] = ImageFont.load_default(size=px)
    return _FONTS[px]


def text_mask(
    lines: Sequence[str], cap_px: float, *, squeeze: float, spacing: float, bold: bool
) -> Image.Image:
    """An L image of the lines, centred, capitals `cap_px` pixels tall."""
    probe = font(100)
    cap = probe.getbbox("H")[3] - probe.getbbox("H")[1]
    f = font(round(100 * cap_px / cap))
    gap = cap_px * (1 + spacing)
    widths = [max(1, int(f.getlength(t))) for t in lines]
    pad = int(cap_px) + 4
    w = max(widths) + 2 * pad
    h = int(gap * len(lines) + cap_px) + 2 * pad
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    top = pad + cap_px * 0.5
    stroke = max(1, round(cap_px / 14)) if bold else 0
    for i, t in enumerate(lines):
        d.text(
            (w / 2, top + i * gap),
            t,
            font=f,
            fill=255,
            anchor="mm",
            stroke_width=stroke,
            stroke_fill=255,
        )
    box = img.getbbox()
    if box:
        img = img.crop((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2))
    if squeeze != 1.0:
        img = img.resize((max(1, int(img.width * squeeze)), img.height), Image.LANCZOS)
    return img


def _dot_matrix(mask: Image.Image, pitch: int) -> Image.Image:
    """The text re-inked as dots on a grid (an ink-jet marker's look)."""
    small = mask.resize((max(1, mask.width // pitch), max(1, mask.height // pitch)), Image.BOX)
    out = Image.new("L", mask.size, 0)
    d = ImageDraw.Draw(out)
    arr = np.asarray(small)
    r = pitch * 0.42
    for y, x in zip(*np.nonzero(arr > 90), strict=True):
        cx, cy = (x + 0.5) * pitch, (y + 0.5) * pitch
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    return out
