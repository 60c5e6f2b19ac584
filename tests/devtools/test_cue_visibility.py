"""The corner cues' visibility rule (`marking_view`): polarity_mark is asked of a world chip
frame only where its cue shows in the final frame's view, as the marking text is asked only
where it is legible."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pnp_vision.devtools import marking_view as mv
from pnp_vision.devtools.marking_parts import Cue, Shape, draw_shapes, pose_matrix, to_frame
from pnp_vision.devtools.synthetic import render
from pnp_vision.devtools.synthetic_variation import WORLD
from pnp_vision.inspect.views import render_view, view_box

CHIP = ["chip"]


def _dot_in_view(image: np.ndarray, at: tuple[float, float], radius: float) -> tuple[float, float]:
    """(width, contrast) of a dot of `radius` frame px at `at` in the polarity_mark view, read
    plainly: its core against a ring just outside it (not `marking_view`'s own reading)."""
    h, w = image.shape[:2]
    left, top, right, _ = view_box((w, h), mv.ROI, mv.VIEW)
    s = mv.VIEW[0] / (right - left)
    grey = render_view(image, mv.ROI, mv.VIEW).astype(np.float64).mean(axis=2)
    cx, cy = (at[0] - left + 0.5) * s - 0.5, (at[1] - top + 0.5) * s - 0.5
    r = radius * s
    ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]]
    d = np.hypot(xs - cx, ys - cy)
    core, ring = grey[d <= 0.7 * r], grey[(d > r + 0.5) & (d <= 1.5 * r + 1)]
    return 2 * r, abs(core.mean() - ring.mean())


def _asked_dots(calls: list, frames: int, seed: int) -> list[tuple[float, float]]:
    """(width, contrast) of every dot a polarity question is asked about, in WORLD's chip
    frames (`calls`: the `drawn_shapes` fixture's record; each frame's last drawing)."""
    dots = []
    for i in range(frames):
        image, label = render(i, seed, (320, 240), scenes=CHIP, variation=WORLD)
        points = label["points"].get("polarity_mark")
        if points is None:
            continue
        shapes, m = calls[-1]
        at = tuple(points[:2])
        radii = [s.r for s in shapes if s.r > 0 and np.allclose(to_frame(m, s.pts)[0], at)]
        if radii:  # a dot (a chamfer is read by marking_view alone)
            scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
            dots.append(_dot_in_view(image, at, max(radii) * scale))
    return dots


def test_every_asked_dot_stands_out_in_the_final_view(monkeypatch, drawn_shapes) -> None:
    """Each dot asked about is at least MIN_CUE_SIZE view px wide and its core at least
    MIN_CUE_CONTRAST grey levels off the body around it, in the view of the frame as it
    reaches the model (the world camera's light, exposure, blur, noise, JPEG); the same
    frames without the rule ask about dots that are not (dimples in dim frames)."""
    shown = _asked_dots(drawn_shapes, 150, seed=11)
    assert len(shown) >= 25
    bar = mv.MIN_CUE_CONTRAST
    for width, contrast in shown:
        assert width >= mv.MIN_CUE_SIZE and contrast >= bar, (width, contrast)
    monkeypatch.setattr(mv, "MIN_CUE_CONTRAST", -np.inf)  # the rule off: every cue asked
    every = _asked_dots(drawn_shapes, 150, seed=11)
    hidden = [c for _, c in every if c < bar]
    assert len(every) > len(shown) and len(hidden) >= 10, (len(every), len(shown), hidden)


def test_asked_questions_record_their_cue_and_frames_keep_asking() -> None:
    """A kept polarity question records what the view showed of its cue; about a quarter of
    the training stream's chip frames ask polarity_mark, and none asks nothing (a frame drawn
    for a cue it then hides is drawn again)."""
    frames = [render(i, 12, (320, 240), scenes=CHIP, variation=WORLD)[1] for i in range(120)]
    asked = 0
    for label in frames:
        assert label["questions"], label
        cues = [q["cue"] for q in label["questions"] if q["template"] == "polarity_mark"]
        asked += bool(cues)
        for cue in cues:
            assert cue["look"] in ("dot", "dimple", "chamfer")
            assert cue["width"] >= mv.MIN_CUE_SIZE
            assert cue["contrast"] - cue["elsewhere"] >= mv.MIN_CUE_CONTRAST - 0.1  # rounded
        assert all("sight" not in q for q in label["questions"])
    assert asked >= 0.2 * len(frames), asked


def _scene(board: int, dot: int | None, chamfer: bool) -> tuple[np.ndarray, mv.Sight]:
    """A 448x336 frame (its view: the middle 224x168, 1:1) of a 6x4 mm body (grey 40) at 10 px
    per mm on a board, with a dot of grey `dot` (radius 0.5 mm) or a chamfered top left."""
    img = np.full((336, 448, 3), board, np.uint8)
    m = pose_matrix((224.0, 168.0), 10.0, 0.0)
    cut = 1.0
    if chamfer:
        outline = [(-3 + cut, -2), (3, -2), (3, 2), (-3, 2), (-3, -2 + cut)]
        corner = Shape(np.array([(-3, -2), (-3 + cut, -2), (-3, -2 + cut)]), (40, 40, 40))
        cue = Cue("chamfer", (-3 + cut / 3, -2 + cut / 3), cut / 2, True, (corner,))
    else:
        outline = [(-3, -2), (3, -2), (3, 2), (-3, 2)]
        disc = Shape(np.array([(-2.0, -1.0)]), (dot,) * 3, 0.5)
        cue = Cue("dot", (-2.0, -1.0), 0.5, True, (disc,))
    body = Shape(np.array(outline, dtype=np.float64), (40, 40, 40))
    draw_shapes(img, [body, *(() if chamfer else cue.shapes)], m)
    return img, mv.Sight(cue, m, (3.0, 2.0))


def _shot(img: np.ndarray, gain: float = 1.0, sigma: float = 0.0) -> np.ndarray:
    out = img.astype(np.float32) * gain
    if sigma:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def test_measure_reads_contrast_after_exposure_and_blur() -> None:
    """A dot 30 grey levels off the body reads about 30 in a plain frame and shows; a dim
    exposure (x0.4) or a defocus wider than the dot takes it under the rule; so does a
    chamfer cut over a board as dark as the body, and one over a light board shows."""
    img, sight = _scene(board=90, dot=70, chamfer=False)
    plain = mv.measure(_shot(img), sight)
    assert plain.width == pytest.approx(10.0)
    assert plain.contrast == pytest.approx(30, abs=3) and plain.elsewhere < 1.5 and plain.shows
    dim = mv.measure(_shot(img, gain=0.4), sight)
    assert dim.contrast == pytest.approx(0.4 * plain.contrast, abs=1.5) and not dim.shows
    soft = mv.measure(_shot(img, sigma=8.0), sight)
    assert soft.contrast < mv.MIN_CUE_CONTRAST and not soft.shows
    dark, sight = _scene(board=45, dot=None, chamfer=True)
    assert not mv.measure(_shot(dark), sight).shows
    light, sight = _scene(board=150, dot=None, chamfer=True)
    reading = mv.measure(_shot(light), sight)
    assert reading.shows and reading.contrast > 50 and reading.elsewhere < 5, reading
