"""Resolution-independent views: the same ROI is the same image, and token grid, on any camera."""

from __future__ import annotations

import numpy as np
import pytest

from pnp_vision.inspect import Inspector, Question, TemplateSet, imageprep
from pnp_vision.inspect.templates import Template
from pnp_vision.inspect.views import view_box

HALF = (0.25, 0.25, 0.5, 0.5)
SIZES = [(160, 120), (320, 240), (640, 480), (1280, 720), (1920, 1080), (224, 224)]


@pytest.mark.parametrize(
    ("frame", "roi", "box"),
    [
        ((320, 240), HALF, (80, 60, 240, 180)),  # 4:3 ROI on a 4:3 frame: the ROI itself
        ((1280, 720), HALF, (400, 180, 880, 540)),  # 16:9: the ROI's height, 4:3 of it wide
        ((224, 224), HALF, (38, 56, 187, 168)),  # square: wider than the ROI, same height
        ((100, 200), None, (0, 62, 100, 137)),  # too narrow: the frame's width sets the box
        ((320, 240), (0.0, 0.0, 0.25, 0.5), (0, 0, 160, 120)),  # past the edge: moved inside
    ],
)
def test_the_box_keeps_the_roi_centre_and_height(frame, roi, box) -> None:
    assert view_box(frame, roi, (112, 84)) == box


def test_every_camera_size_gives_the_same_view_size() -> None:
    for width, height in SIZES:
        frame = np.zeros((height, width, 3), np.uint8)
        view = imageprep.prepare(frame, template_roi=HALF, view_size=(112, 84), keep_array=True)
        assert view.shape == (84, 112, 3), (width, height)
        pil = imageprep.prepare(frame, template_roi=HALF, view_size=(112, 84))
        assert pil.size == (112, 84) and np.array_equal(np.asarray(pil)[:, :, ::-1], view)


def test_a_scene_looks_the_same_through_its_view_at_any_resolution() -> None:
    """The generator draws a scene in units of the shorter side: through a view, 320x240,
    640x480 and 1280x720 frames of one scene are the same picture (up to antialiasing)."""
    import cv2

    from pnp_vision.devtools.synthetic import render

    def view(size: tuple[int, int], seed: int = 5) -> np.ndarray:
        frame, _ = render(0, seed=seed, size=size, lighting="even", blur=False, noise=0)
        out = imageprep.prepare(frame, template_roi=HALF, view_size=(112, 84), keep_array=True)
        return cv2.GaussianBlur(out, (0, 0), 1.0).astype(np.int16)  # lines 1 px either way

    base = view((320, 240))
    other_scene = np.abs(view((320, 240), seed=6) - base).mean()
    for size in [(160, 120), (640, 480), (1280, 720), (1920, 1080)]:
        assert np.abs(view(size) - base).mean() < min(8, other_scene / 3), size
    # without a view the frames differ in size: nothing to compare, which was the problem
    plain = imageprep.prepare(render(0, 5, (1280, 720))[0], template_roi=HALF, max_pixels=12544)
    assert plain.size != (112, 84)


def test_the_inspector_sees_one_token_grid_at_every_resolution(tiny_model_dir, templates) -> None:
    """The issue's finding was 4 image tokens at 160x120 and 15 at 1280x720 for one ROI."""
    t = templates.get("nozzle_alignment").model_copy(update={"roi": HALF, "view": (112, 84)})
    qwen = Inspector(tiny_model_dir("qwen2_5_vl"), TemplateSet({t.name: t}))
    adapter = qwen._adapter
    counts = set()
    for width, height in SIZES:
        frame = np.full((height, width, 3), 90, np.uint8)
        view = imageprep.prepare(frame, template_roi=t.roi, view_size=t.view, keep_array=True)
        counts.add(adapter.preprocess(view, t.max_pixels).n_image_tokens)
        result = qwen.inspect(frame, [Question(template=t.name)])[0]
        assert result.answer in ("YES", "NO")
    assert counts == {12}


def test_view_sizes_are_checked() -> None:
    base = {"name": "x", "description": "d", "question": "q?"}
    assert Template.model_validate({**base, "view": [112, 84]}).view == (112, 84)
    with pytest.raises(ValueError, match="view"):
        Template.model_validate({**base, "view": [10, 84]})
