"""The camera between the scene and the frame: optics, light, sensor and encoder.

Every effect is drawn from a `CameraStyle` (what a family allows) into a `CameraLook` (what one
frame, or a whole rig, gets), then `develop` applies it to the drawn scene with numpy: defocus
and motion blur, an illumination field (even, ring light, spot, side light) with vignetting and
a colour cast in linear light, exposure from dim to blown, shot and read noise, and JPEG.
Lengths are in scene units (1/224 of the shorter side), so a look is the same at every size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

Range = tuple[float, float]
FIELDS = ("even", "ring", "spot", "side")


@dataclass(frozen=True)
class CameraStyle:
    """The ranges a family draws each frame's camera from."""

    defocus: Range = (0.0, 0.35)  # Gaussian sigma, units
    motion: Range = (0.0, 0.0)  # streak length, units
    exposure: Range = (0.8, 1.25)  # linear gain (1: as drawn)
    fields: tuple[str, ...] = FIELDS
    field_strength: Range = (0.1, 0.45)
    vignette: Range = (0.0, 0.3)
    cast: float = 0.06  # per-channel gain spread
    noise: Range = (0.4, 2.5)  # read noise, grey levels at full exposure
    jpeg: Range | None = None  # quality range; None: lossless
    gamma: Range = (0.9, 1.1)


@dataclass(frozen=True)
class CameraLook:
    """One camera, fixed: `develop` needs only this and the frame's own noise stream."""

    defocus: float
    motion: float
    motion_angle: float
    exposure: float
    field: str
    field_strength: float
    field_centre: tuple[float, float]
    field_radius: float
    vignette: float
    cast: tuple[float, float, float]
    noise: float
    jpeg: int | None
    gamma: float
    chroma_subsampling: int


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def draw_camera(style: CameraStyle, rng: np.random.Generator) -> CameraLook:
    """A camera from the style's ranges (always the same number of draws, so a rig's look
    stays put whatever else its scenes draw)."""
    cast = tuple(float(v) for v in 1.0 + rng.uniform(-style.cast, style.cast, 3))
    return CameraLook(
        defocus=_u(rng, style.defocus),
        motion=_u(rng, style.motion),
        motion_angle=float(rng.uniform(0, 180)),
        exposure=_u(rng, style.exposure),
        field=str(rng.choice(style.fields)),
        field_strength=_u(rng, style.field_strength),
        field_centre=(float(rng.uniform(-30, 30)), float(rng.uniform(-25, 25))),
        field_radius=float(rng.uniform(45, 95)),
        vignette=_u(rng, style.vignette),
        cast=(cast[0], cast[1], cast[2]),
        noise=_u(rng, style.noise),
        jpeg=None if style.jpeg is None else round(_u(rng, style.jpeg)),
        gamma=_u(rng, style.gamma),
        chroma_subsampling=int(rng.choice([0, 2, 2])),
    )


def _field(
    look: CameraLook, shape: tuple[int, int], unit_px: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Illumination over the frame: a gain (1 = as drawn) and, for a ring light, the faint
    glow its LEDs scatter into a dark field (linear light, added)."""
    h, w = shape
    glow = None
    ys = (np.arange(h, dtype=np.float32) - h / 2) / unit_px
    xs = (np.arange(w, dtype=np.float32) - w / 2) / unit_px
    cx, cy = look.field_centre
    dx, dy = xs[None, :] - cx, ys[:, None] - cy
    r = np.sqrt(dx * dx + dy * dy)
    s = look.field_strength
    if look.field == "ring":
        # a ring light's bright annulus around a dimmer middle
        band = np.exp(-(((r - look.field_radius) / (0.45 * look.field_radius)) ** 2))
        field = (1 - 0.5 * s) + 1.4 * s * band
        glow = (0.012 * s * band).astype(np.float32)
    elif look.field == "spot":
        field = (1 - 0.6 * s) + 1.2 * s * np.exp(-((r / (1.3 * look.field_radius)) ** 2))
    elif look.field == "side":
        a = math.radians(look.motion_angle * 2)
        ramp = (dx * math.cos(a) + dy * math.sin(a)) / 224.0
        field = 1 + 1.6 * s * ramp
    else:
        field = np.ones((h, w), dtype=np.float32)
    if look.vignette > 0:
        rr = np.sqrt(
            (xs[None, :] / (w / unit_px / 2)) ** 2 + (ys[:, None] / (h / unit_px / 2)) ** 2
        )
        field = field * (1 - look.vignette * np.clip(rr / 1.41, 0, 1) ** 2.2)
    return np.clip(field, 0.05, 3.0).astype(np.float32), glow


def _motion(arr: np.ndarray, length_px: float, angle: float) -> np.ndarray:
    """Average of copies shifted along a line: a streak of `length_px` pixels."""
    n = max(2, round(length_px) + 1)
    a = math.radians(angle)
    out = np.zeros_like(arr)
    pad = math.ceil(length_px / 2) + 1
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = arr.shape[:2]
    for i in range(n):
        t = (i / (n - 1) - 0.5) * length_px
        ox, oy = round(t * math.cos(a)), round(t * math.sin(a))
        out += padded[pad + oy : pad + oy + h, pad + ox : pad + ox + w]
    return out / n


def optics(image: Image.Image, look: CameraLook, unit_px: float) -> Image.Image:
    """Defocus and motion blur (before the light reaches the sensor)."""
    if look.defocus * unit_px >= 0.3:
        image = image.filter(ImageFilter.GaussianBlur(look.defocus * unit_px))
    if look.motion * unit_px >= 1.5:
        arr = _motion(np.asarray(image, dtype=np.float32), look.motion * unit_px, look.motion_angle)
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return image


_LEVELS = 8192  # resolution of the tone curve's lookup table over linear 0..1
_TO_LINEAR = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)


def _tone_curve(gamma: float) -> np.ndarray:
    """Linear light (quantised to _LEVELS) -> 8-bit sRGB, with the camera's gamma on top."""
    v = np.linspace(0.0, 1.0, _LEVELS + 1)
    srgb = np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)
    return np.clip(srgb ** (1 / gamma) * 255 + 0.5, 0, 255).astype(np.uint8)


def expose(image: Image.Image, look: CameraLook, rng: np.random.Generator) -> Image.Image:
    """Light field, exposure, colour cast and sensor noise, in linear light (sRGB curve)."""
    unit_px = min(image.size) / 224.0
    lin = _TO_LINEAR[np.asarray(image)]
    gain, glow = _field(look, (image.height, image.width), unit_px)
    lin *= gain[:, :, None]
    if glow is not None:
        lin += glow[:, :, None]
    lin *= look.exposure * np.asarray(look.cast, dtype=np.float32)
    k = look.noise
    if k > 0:  # shot noise grows with the signal, read noise and row banding do not
        sigma = np.maximum(lin, 0)
        sigma *= np.float32(4e-5 * k)
        np.sqrt(sigma, out=sigma)
        sigma += np.float32(6e-4 * k)
        sigma *= rng.standard_normal(lin.shape, dtype=np.float32)
        lin += sigma
        lin += rng.standard_normal((lin.shape[0], 1, 1), dtype=np.float32) * np.float32(2e-4 * k)
    lin *= _LEVELS
    np.clip(lin, 0, _LEVELS, out=lin)
    index = lin.astype(np.int32)
    out = _tone_curve(look.gamma)[index]
    if k > 0:  # the ADC's own noise after the tone curve, in whole grey levels
        jitter = rng.standard_normal(out.shape[:2], dtype=np.float32) * np.float32(0.35 * k)
        out = np.clip(out.astype(np.int16) + np.rint(jitter).astype(np.int16)[:, :, None], 0, 255)
    return Image.fromarray(out.astype(np.uint8), "RGB")


def encode(image: Image.Image, look: CameraLook) -> Image.Image:
    """The camera's JPEG (when it has one), decoded back: its blocks and ringing stay."""
    if look.jpeg is None:
        return image
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=look.jpeg, subsampling=look.chroma_subsampling)
    buf.seek(0)
    return Image.open(buf).convert("RGB")
