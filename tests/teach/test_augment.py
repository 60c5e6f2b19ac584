"""Label-preserving changes of a labelled frame (`teach/augment.py`): only the template's view
box changes, geometry only as its `symmetries` allow, light within a camera's range."""

from __future__ import annotations

import random

import numpy as np

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.inspect import TemplateSet


def test_augmented_mirrors_exactly_the_templates_view() -> None:
    """A symmetric template's view is mirrored in place; the rest of the frame is untouched."""
    from pnp_vision.inspect.views import render_view
    from pnp_vision.teach.augment import augmented

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    tombstone = templates.get("tombstone")
    assert {"flip_x", "flip_y"} <= set(tombstone.symmetries)
    tombstone = tombstone.model_copy(update={"symmetries": ["flip_x", "flip_y"]})
    frame = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    view = render_view(frame, tombstone.roi, tombstone.view)
    seen = set()
    rng = random.Random(3)
    for _ in range(40):
        out = augmented(frame, tombstone, rng)
        got = render_view(out, tombstone.roi, tombstone.view)
        flips = {
            name
            for name, want in (
                ("", view), ("x", view[:, ::-1]), ("y", view[::-1]), ("xy", view[::-1, ::-1])
            )
            if np.array_equal(got, want)
        }  # fmt: skip
        assert len(flips) == 1
        seen |= flips
        assert np.array_equal(out[:, :40], frame[:, :40])  # outside the view's box
    assert seen == {"", "x", "y", "xy"}
    marking = templates.get("part_marking")  # text: no symmetry, the frame comes back as is
    assert not marking.symmetries and augmented(frame, marking, rng) is frame


def test_augmented_shifts_the_view_within_its_bound_and_the_frame() -> None:
    """With `shift` the view is cut from a box moved by at most SHIFT of its size, never from
    outside the frame, then mirrored: every pixel of the frame names where it came from."""
    from pnp_vision.inspect.views import view_box
    from pnp_vision.teach.augment import SHIFT, augmented

    nozzle = TemplateSet.load(PROJECT_ROOT / "prompts").get("nozzle_alignment")
    assert "shift" in nozzle.symmetries
    ys, xs = np.mgrid[0:360, 0:480]
    frame = np.stack([xs % 256, ys % 256, xs // 256 * 16 + ys // 256], axis=-1).astype(np.uint8)

    def source(pixel: np.ndarray) -> tuple[int, int]:
        return int(pixel[0]) + 256 * (int(pixel[2]) // 16), int(pixel[1]) + 256 * (
            int(pixel[2]) % 16
        )

    rng = random.Random(5)
    for template in (nozzle, nozzle.model_copy(update={"roi": (0.0, 0.0, 0.5, 0.5)})):
        left, top, right, bottom = view_box((480, 360), template.roi, template.view)
        width, height = right - left, bottom - top
        moves = set()
        for _ in range(40):
            out = augmented(frame, template, rng)
            box = out[top:bottom, left:right]
            corners = [source(box[y, x]) for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1))]
            x0, y0 = min(c[0] for c in corners), min(c[1] for c in corners)
            dx, dy = x0 - left, y0 - top
            assert abs(dx) <= SHIFT * width + 1 and abs(dy) <= SHIFT * height + 1
            assert 0 <= x0 <= 480 - width and 0 <= y0 <= 360 - height
            cut = frame[y0 : y0 + height, x0 : x0 + width]
            assert any(
                np.array_equal(box, flip)
                for flip in (cut, cut[:, ::-1], cut[::-1], cut[::-1, ::-1])
            )  # the moved box, whole, maybe mirrored: never stretched or mixed
            outside = np.ones(frame.shape[:2], bool)
            outside[top:bottom, left:right] = False
            assert np.array_equal(out[outside], frame[outside])
            moves.add((np.sign(dx), np.sign(dy)))
        if template.roi[0] > 0:  # room on every side: it moves every way
            assert {(-1, -1), (1, 1), (-1, 1), (1, -1)} <= moves
        else:  # at the frame's corner: it can only move inwards
            assert all(sx >= 0 and sy >= 0 for sx, sy in moves) and (1, 1) in moves


def test_relit_changes_only_the_view_box_and_keeps_the_order_of_levels() -> None:
    """Exposure, contrast, gamma and tint are one increasing map per channel: what is darker
    stays darker (the geometry the answer reads is kept), and the frame outside is untouched."""
    from pnp_vision.inspect.views import view_box
    from pnp_vision.teach.augment import relit

    tombstone = TemplateSet.load(PROJECT_ROOT / "prompts").get("tombstone")
    frame = np.random.default_rng(1).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    left, top, right, bottom = view_box((480, 360), tombstone.roi, tombstone.view)
    outside = np.ones(frame.shape[:2], bool)
    outside[top:bottom, left:right] = False
    means = []
    for seed in range(12):
        out = relit(frame, tombstone, random.Random(seed))
        assert out is not frame and np.array_equal(out[outside], frame[outside])
        box, lit = frame[top:bottom, left:right], out[top:bottom, left:right]
        for c in range(3):
            order = np.argsort(box[..., c], axis=None, kind="stable")
            assert np.all(np.diff(lit[..., c].ravel()[order].astype(int)) >= 0)
        means.append(float(lit.mean()))
    assert max(means) - min(means) > 20  # it does relight: a range, not a constant
    again = relit(frame, tombstone, random.Random(3))
    assert np.array_equal(again, relit(frame, tombstone, random.Random(3)))  # seeded


def test_turn_is_a_quarter_turn_about_the_views_centre() -> None:
    """With `turn`, half the views are the box of swapped sides about the same centre, turned
    a quarter turn either way (then maybe mirrored): the part in the middle stays in the middle,
    lying the other way. A frame too small for the turned box is not turned."""
    from pnp_vision.inspect.views import view_box
    from pnp_vision.teach.augment import augmented

    tombstone = TemplateSet.load(PROJECT_ROOT / "prompts").get("tombstone")
    assert "turn" in tombstone.symmetries
    tombstone = tombstone.model_copy(update={"symmetries": ["flip_x", "flip_y", "turn"]})
    frame = np.random.default_rng(2).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    left, top, right, bottom = view_box((1280, 720), tombstone.roi, tombstone.view)
    w, h = right - left, bottom - top
    cx, cy = (left + right) // 2, (top + bottom) // 2
    plain = frame[top:bottom, left:right]
    turned = frame[cy - w // 2 : cy + w // 2, cx - h // 2 : cx + h // 2]  # h wide, w tall

    def mirrors(box: np.ndarray) -> list[np.ndarray]:
        return [box, box[:, ::-1], box[::-1], box[::-1, ::-1]]

    rng = random.Random(4)
    seen = set()
    for _ in range(40):
        out = augmented(frame, tombstone, rng)
        box = out[top:bottom, left:right]
        if any(np.array_equal(box, m) for m in mirrors(plain)):
            seen.add("plain")
        else:
            assert any(
                np.array_equal(box, m) for k in (1, 3) for m in mirrors(np.rot90(turned, k))
            ), "neither the view nor its quarter turn"
            seen.add("turned")
        outside = np.ones(frame.shape[:2], bool)
        outside[top:bottom, left:right] = False
        assert np.array_equal(out[outside], frame[outside])
    assert seen == {"plain", "turned"}
    whole = tombstone.model_copy(update={"roi": None})  # the turned box would be 960 tall
    left, top, right, bottom = view_box((1280, 720), None, whole.view)
    for _ in range(10):
        box = augmented(frame, whole, rng)[top:bottom, left:right]
        assert any(np.array_equal(box, m) for m in mirrors(frame[top:bottom, left:right]))


def test_turns_and_shifts_together_cut_one_whole_box_from_inside_the_frame() -> None:
    """tombstone's own symmetries (flips, shift, turn) on a frame whose pixels name their
    source: every view is one box of the frame, moved by at most SHIFT of its size, maybe
    turned and mirrored; never stretched, mixed or cut from outside the frame."""
    from pnp_vision.inspect.views import view_box
    from pnp_vision.teach.augment import SHIFT, augmented

    tombstone = TemplateSet.load(PROJECT_ROOT / "prompts").get("tombstone")
    assert {"shift", "turn"} <= set(tombstone.symmetries)
    ys, xs = np.mgrid[0:720, 0:1280]
    frame = np.stack([xs % 256, ys % 256, xs // 256 * 16 + ys // 256], axis=-1).astype(np.uint8)
    left, top, right, bottom = view_box((1280, 720), tombstone.roi, tombstone.view)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    rng = random.Random(6)
    turns = set()
    for _ in range(30):
        box = augmented(frame, tombstone, rng)[top:bottom, left:right]
        code = box.astype(int)
        xs_ = code[..., 0] + 256 * (code[..., 2] // 16)
        ys_ = code[..., 1] + 256 * (code[..., 2] % 16)
        x0, y0, x1, y1 = int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1
        cut = frame[y0:y1, x0:x1]
        k = 0 if cut.shape == box.shape else 1
        turns.add(k)
        assert any(
            np.array_equal(box, m)
            for r in ((0,) if k == 0 else (1, 3))
            for t in [np.rot90(cut, r)]
            for m in (t, t[:, ::-1], t[::-1], t[::-1, ::-1])
        )
        assert abs((x0 + x1) / 2 - cx) <= SHIFT * (x1 - x0) + 1
        assert abs((y0 + y1) / 2 - cy) <= SHIFT * (y1 - y0) + 1
    assert turns == {0, 1}
