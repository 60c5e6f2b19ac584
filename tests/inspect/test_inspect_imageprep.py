"""Image prep: every accepted input type, channel order, crops, pixel budgets, rejections."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pnp_vision.errors import ImageError
from pnp_vision.inspect import imageprep


def _bgr() -> np.ndarray:
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :, 2] = 200  # red in BGR
    img[5:10, 5:10] = (255, 0, 0)  # a blue square
    return img


def test_bgr_array_becomes_rgb():
    pil = imageprep.to_pil(_bgr())
    assert pil.mode == "RGB" and pil.size == (60, 40)
    assert pil.getpixel((30, 30)) == (200, 0, 0)
    assert pil.getpixel((7, 7)) == (0, 0, 255)


def test_gray_and_bgra_arrays():
    assert imageprep.to_pil(np.full((4, 5), 9, np.uint8)).getpixel((0, 0)) == (9, 9, 9)
    bgra = np.dstack([_bgr(), np.full((40, 60), 255, np.uint8)])
    assert imageprep.to_pil(bgra).getpixel((30, 30)) == (200, 0, 0)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_encoded_bytes(ext):
    ok, buf = cv2.imencode(ext, _bgr())
    assert ok
    pil = imageprep.to_pil(buf.tobytes())
    r, g, b = pil.getpixel((30, 30))
    assert r > 180 and g < 30 and b < 30


def test_pil_input_is_converted():
    pil = imageprep.to_pil(Image.new("L", (8, 6), 77))
    assert pil.mode == "RGB" and pil.getpixel((1, 1)) == (77, 77, 77)


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (b"", "0 bytes"),
        (b"\x89PNG\r\n\x1a\nnot really", "cannot decode image bytes"),
        (b"GIF89a" + b"\x00" * 3, "cannot decode"),
        (np.zeros((0, 10, 3), np.uint8), "empty image"),
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10, 2), np.uint8), "HxWx3"),
        ("frame.png", "unsupported image type str"),
        (Image.new("RGB", (0, 0)), "empty image"),
    ],
)
def test_rejections(image, fragment):
    with pytest.raises(ImageError) as info:
        imageprep.to_pil(image)
    assert fragment in str(info.value)


def test_truncated_png_is_rejected():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, format="PNG"
    )
    with pytest.raises(ImageError, match="cannot decode"):
        imageprep.to_pil(buf.getvalue()[:200])


def test_pixel_roi():
    pil = imageprep.to_pil(_bgr())
    crop = imageprep.crop_pixels(pil, (5, 5, 5, 5))
    assert crop.size == (5, 5) and crop.getpixel((2, 2)) == (0, 0, 255)
    for roi in [(0, 0, 0, 5), (55, 0, 10, 10), (-1, 0, 5, 5), (0, 35, 5, 6)]:
        with pytest.raises(ImageError, match="outside the 60x40 image"):
            imageprep.crop_pixels(pil, roi)
    with pytest.raises(ImageError, match="four integers"):
        imageprep.crop_pixels(pil, ("a", 0, 1, 1))


def test_fraction_roi_and_budget():
    pil = Image.new("RGB", (400, 300))
    assert imageprep.crop_fraction(pil, (0.25, 0.5, 0.5, 0.5)).size == (200, 150)
    fitted = imageprep.fit_pixels(pil, 200 * 150)
    assert fitted.size == (200, 150)
    assert imageprep.fit_pixels(pil, None) is pil
    assert imageprep.fit_pixels(pil, 10**6) is pil
    small = imageprep.prepare(pil, roi=(0, 0, 200, 200), template_roi=(0, 0, 0.5, 1), max_pixels=50)
    assert small.width * small.height <= 50 and small.width * 2 == small.height


def test_kept_array_is_the_same_view():
    """`keep_array`: a BGR frame that needs no resize stays an array with exactly the pixels of
    the PIL path (both ROIs applied); one that needs a resize takes the PIL path."""
    bgr = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    for roi, template_roi, budget in [
        (None, None, None),
        ((10, 5, 80, 60), None, 80 * 60),
        ((10, 5, 80, 60), (0.25, 0.1, 0.5, 0.7), None),
        (None, (0.0, 0.5, 1.0, 0.5), 10**6),
    ]:
        kw = {"roi": roi, "template_roi": template_roi, "max_pixels": budget}
        kept = imageprep.prepare(bgr, keep_array=True, **kw)
        assert isinstance(kept, np.ndarray)
        assert np.array_equal(kept[:, :, ::-1], np.asarray(imageprep.prepare(bgr, **kw)))
        assert imageprep.size_of(kept) == imageprep.prepare(bgr, **kw).size
    resized = imageprep.prepare(bgr, keep_array=True, max_pixels=60 * 45)
    assert isinstance(resized, Image.Image)
    want = imageprep.prepare(bgr, max_pixels=60 * 45)
    assert np.array_equal(np.asarray(resized), np.asarray(want))
    with pytest.raises(ImageError, match="outside the 120x90 image"):
        imageprep.prepare(bgr, roi=(100, 0, 30, 10), keep_array=True)
