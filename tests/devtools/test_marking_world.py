"""The chip scene's marking world (Variation(markings="world")): labels against what is drawn,
near-miss negatives, polarity quadrants under rotation, legible sizes, determinism, and the
default frames left byte for byte as they were."""

from __future__ import annotations

import collections
import json
import re
import tomllib

import cv2
import numpy as np
import pytest

from pnp_vision.capture.sources import read_index
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools import synthetic_marking as sm
from pnp_vision.devtools.marking_codes import (
    LOOKALIKES,
    NEGATIVE_KINDS,
    PRIMARY_PAIRS,
    classify,
    negative,
)
from pnp_vision.devtools.synthetic import CORNERS, Variation, generate, render
from pnp_vision.errors import BadRequest
from pnp_vision.inspect.views import view_box

WORLD = Variation(markings="world")
PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")
CHIP = ["chip"]


def _frames(n: int, seed: int, size=(320, 240), **kw):
    return list(generate(n, seed, size, scenes=CHIP, variation=WORLD, **kw))


def _spied(n: int, seed: int, size, calls: list, variation=WORLD, **kw) -> list:
    """Frames 0..n-1 of `seed`, each with the last of the spied `calls` its drawing made (a
    frame that hides the only cue it asks about is drawn again: its label is the last one's)."""
    out = []
    for i in range(n):
        before = len(calls)
        image, label = render(i, seed, size, scenes=CHIP, variation=variation, **kw)
        assert len(calls) > before, i
        out.append((image, label, calls[-1]))
    return out


@pytest.fixture(scope="module")
def frames() -> list:
    return _frames(300, seed=36)


def _by(label: dict, template: str, answer: str) -> dict | None:
    return next(
        (q for q in label["questions"] if q["template"] == template and q["answer"] == answer),
        None,
    )


def _illegible(label: dict) -> bool:
    """A part whose marking cannot be legible in its frame: asked about its corner cue only."""
    asked = {q["template"] for q in label["questions"]}
    if "part_marking" in asked:
        return False
    assert asked == {"polarity_mark"}, asked
    return True


def test_default_chip_frames_are_the_bundled_recording_byte_for_byte() -> None:
    """Every chip frame of recordings/demo (seed 0, 320x240) is what the default and the
    explicit "classic" world draw today."""
    demo = PROJECT_ROOT / "recordings" / "demo"
    entries = read_index(demo)
    labels = [json.loads(line) for line in (demo / "labels.jsonl").read_text().splitlines()]
    chips = [seq for seq, row in enumerate(labels) if row["scene"] == "chip"]
    assert len(chips) >= 9
    for seq in chips:
        recorded = cv2.imread(str(entries[seq].file))
        for var in (Variation(), Variation(markings="classic")):
            image, label = render(seq, seed=0, size=(320, 240), noise=0.6, variation=var)
            assert np.array_equal(image, recorded), seq
            assert label["questions"] == labels[seq]["questions"]


def test_an_unknown_marking_world_is_named() -> None:
    with pytest.raises(BadRequest, match="markings"):
        next(generate(1, variation=Variation(markings="fancy")))


def test_world_frames_are_deterministic() -> None:
    a = render(7, seed=3, size=(320, 240), scenes=CHIP, variation=WORLD)
    b = render(7, seed=3, size=(320, 240), scenes=CHIP, variation=WORLD)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    other = render(7, seed=4, size=(320, 240), scenes=CHIP, variation=WORLD)
    assert not np.array_equal(a[0], other[0])
    classic = render(7, seed=3, size=(320, 240), scenes=CHIP)
    assert not np.array_equal(a[0], classic[0])


def test_yes_is_line_one_and_every_label_carries_the_drawn_lines(monkeypatch) -> None:
    """What reaches the rasteriser is what the label records; YES asks line 1."""
    drawn: list[list[str]] = []
    real = sm.draw_block

    def spy(img, lines, *args, **kwargs):
        drawn.append(list(lines))
        return real(img, lines, *args, **kwargs)

    monkeypatch.setattr(sm, "draw_block", spy)
    asked = 0
    for _, label, lines in _spied(40, 5, (320, 240), drawn):
        if _illegible(label):
            continue
        asked += 1
        yes, no = _by(label, "part_marking", "YES"), _by(label, "part_marking", "NO")
        assert yes["lines"] == no["lines"] == lines
        assert yes["params"]["marking"] == lines[0]
        assert no["params"]["marking"] != lines[0]
        for q in (yes, no):
            assert PATTERN.fullmatch(q["params"]["marking"])
    assert asked >= 20


def test_line_one_is_on_top_when_upright_and_at_the_bottom_turned_half() -> None:
    from pnp_vision.devtools.marking_text import REGULAR, draw_block

    for angle, first_on_top in ((0.0, True), (180.0, False), (7.0, True)):
        img = np.zeros((120, 200, 3), np.uint8)
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        m = np.array([[c, -s, 100.0], [s, c, 60.0]])
        draw_block(img, ["HHHH", "HHHH"], REGULAR, 20.0, m, [(255, 0, 0), (0, 0, 255)])
        rows = np.arange(img.shape[0])
        top0 = (img[..., 0].sum(1) * rows).sum() / img[..., 0].sum()  # line 0's ink, centroid
        top1 = (img[..., 2].sum(1) * rows).sum() / img[..., 2].sum()
        assert (top0 < top1 - 15) == first_on_top and abs(top0 - top1) > 15, angle


def test_negatives_differ_as_claimed_and_a_third_are_one_lookalike_away(frames) -> None:
    kinds = collections.Counter()
    primary = 0
    marked = [label for _, label in frames if not _illegible(label)]
    assert len(marked) >= 0.5 * len(frames)
    for label in marked:
        no = _by(label, "part_marking", "NO")
        asked, lines = no["params"]["marking"], no["lines"]
        assert asked != lines[0] and PATTERN.fullmatch(asked)
        assert classify(asked, lines) == no["negative"], (asked, lines, no["negative"])
        kinds[no["negative"]] += 1
        if no["negative"] == "lookalike":
            pair = next(a + b for a, b in zip(lines[0], asked, strict=True) if a != b)
            primary += pair in PRIMARY_PAIRS or pair[::-1] in PRIMARY_PAIRS
        if no["negative"] == "other_line":
            assert asked in lines[1:]
    assert set(kinds) == set(NEGATIVE_KINDS), kinds
    assert kinds["lookalike"] / len(marked) >= 1 / 3, kinds
    assert primary / kinds["lookalike"] > 0.5  # O/0, I/1, B/8, S/5, Z/2, D/0, G/6 first


def test_classify_names_each_kind_of_near_miss() -> None:
    lines = ["STM32F103C8T6", "GH227", "CHN 814"]
    assert classify("STM32F103CBT6", lines) == "lookalike"  # 8 -> B
    assert classify("STM32F107C8T6", lines) == "changed"
    assert classify("STM32F013C8T6", lines) == "swapped"
    assert classify("STM32F10C8T6", lines) == "missing"
    assert classify("STM32F1033C8T6", lines) == "extra"
    assert classify("GH227", lines) == "other_line"
    assert classify("NE555", lines) == "unrelated"
    assert classify("STM32F103C8T6", lines) is None
    assert ("O", "0") in {(a, b) for a, b in LOOKALIKES}


def test_negative_always_finds_a_real_near_miss() -> None:
    rng = np.random.default_rng(0)
    for lines in (["2A"], ["103"], ["4R7"], ["01C"], ["NE555", "1834"], ["ATMEGA328P"]):
        for _ in range(30):
            text, kind = negative(rng, lines)
            assert text != lines[0] and PATTERN.fullmatch(text) and classify(text, lines) == kind


def test_polarity_corner_is_the_quadrant_of_the_drawn_cue(frames) -> None:
    corners = collections.Counter()
    for _, label in frames[:120]:
        yes, no = _by(label, "polarity_mark", "YES"), _by(label, "polarity_mark", "NO")
        if yes is None:
            assert no is None
            continue
        mx, my, cx, cy = label["points"]["polarity_mark"]
        want = f"{'top' if my < cy else 'bottom'}_{'left' if mx < cx else 'right'}"
        assert yes["params"]["corner"] == want
        assert no["params"]["corner"] in CORNERS and no["params"]["corner"] != want
        assert min(abs(mx - cx), abs(my - cy)) > 4  # frame px: never on a centre line
        corners[want] += 1
    assert set(corners) == set(CORNERS) and sum(corners.values()) >= 30, corners


def test_the_labelled_cue_is_drawn_there(drawn_shapes) -> None:
    """The label's cue point is the centre of a drawn dot, whose pixels (clean frames) differ
    from the body just beside it, or the corner a chamfer cut off the body's outline."""
    from pnp_vision.devtools.marking_parts import to_frame

    calls = drawn_shapes
    dots = chamfers = 0
    clean = {"lighting": "even", "blur": False, "noise": 0}
    for image, label, (shapes, m) in _spied(80, 8, (640, 480), calls, **clean):
        points = label["points"].get("polarity_mark")
        if points is None:
            continue
        mx, my, cx, cy = points
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        discs = [s.r for s in shapes if s.r > 0 and np.allclose(to_frame(m, s.pts)[0], (mx, my))]
        if discs:  # a dot: beside it, toward its corner, lies plain body
            away = np.array([mx - cx, my - cy]) / np.hypot(mx - cx, my - cy)
            bx, by = np.round((mx, my) + away * 1.35 * max(discs) * scale).astype(int)
            at = image[round(my), round(mx)].astype(int)
            assert np.abs(at - image[by, bx].astype(int)).max() >= 8
            dots += 1
        else:  # a chamfer: the point lies off the body's (cut) outline, inside its corner
            body = to_frame(m, max((s.pts for s in shapes if len(s.pts) == 5), key=len))
            inside = cv2.pointPolygonTest(body.astype(np.float32), (mx, my), False)
            assert inside < 0
            chamfers += 1
    assert dots >= 15, (dots, chamfers)


def test_corner_cues_clear_both_centre_lines_at_any_turn() -> None:
    from pnp_vision.devtools.marking_parts import sample_part

    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(400):
        part = sample_part(rng)
        cue = part.corner_cue
        if cue is None:
            continue
        for quarter in range(4):
            angle = sm._clear_cue(part, 90.0 * quarter + rng.uniform(-sm.SMALL_TURN, sm.SMALL_TURN))
            corner, clearance = sm.quadrant(cue.at, cue.reach, angle)
            assert clearance >= sm.CLEARANCE * min(part.body) - 1e-9, (part.package, angle)
            assert corner in CORNERS
            checked += 1
    assert checked > 300


def test_quadrant_follows_the_turn() -> None:
    at = (-2.0, -1.0)  # top left of the upright part
    assert [sm.quadrant(at, 0.1, a)[0] for a in (0, 90, 180, 270)] == [
        "top_left", "top_right", "bottom_right", "bottom_left"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "size", [(160, 120), (320, 240), (640, 480), (1280, 720), (224, 224), (240, 320)]
)
def test_markings_are_legible_in_the_view_and_parts_fit_it(size, monkeypatch) -> None:
    """Every marking's capitals are at least the face's legibility limit in the part_marking
    view (a camera under the view gets no more credit than 320x240's 1.4x upscale), and the
    part's points lie inside the view's box of the frame."""
    caps = []
    real = sm.draw_block

    def spy(img, lines, face, cap, m, colors):
        caps.append((sm.face_name(face), cap * float(np.sqrt(abs(np.linalg.det(m[:, :2]))))))
        return real(img, lines, face, cap, m, colors)

    monkeypatch.setattr(sm, "draw_block", spy)
    left, top, right, bottom = view_box(size, sm.ROI, sm.VIEW)
    per_view = sm.VIEW[0] / (right - left)
    for _, label, (name, cap_px) in _spied(15, 9, size, caps):
        for x, y in np.reshape(next(iter(label["points"].values())), (2, 2)):
            assert left <= x <= right and top <= y <= bottom
        if _illegible(label):
            continue
        seen = cap_px * min(per_view, sm.UPSCALE_CREDIT)  # what the view resolves, view px
        assert sm.MIN_CAP[name] - 1e-6 <= seen <= sm.MIN_CAP[name] * sm.SIZE_SPREAD + 1e-6


def test_the_world_is_sized_for_the_part_marking_view() -> None:
    template = tomllib.loads((PROJECT_ROOT / "prompts" / "part_marking.toml").read_text())
    assert tuple(template["view"]) == sm.VIEW and tuple(template["roi"]) == sm.ROI


def test_every_face_draws_every_marking_character_and_lookalikes_differ() -> None:
    from pnp_vision.devtools.marking_text import CONDENSED, DOT_MATRIX, REGULAR, draw_block

    for face in (REGULAR, CONDENSED, DOT_MATRIX):
        looks = {}
        for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-. ":
            img = np.zeros((40, 40, 3), np.uint8)
            draw_block(img, [ch], face, 24.0, np.array([[1.0, 0, 20], [0, 1.0, 20]]),
                       [(255, 255, 255)])  # fmt: skip
            looks[ch] = img[..., 0].astype(float) / 255
            assert (looks[ch].sum() > 5) == (ch != " "), (face, ch)
        for a, b in LOOKALIKES:
            assert np.abs(looks[a] - looks[b]).sum() > 8, (face, a, b)


def test_a_blurrier_camera_gets_larger_markings(monkeypatch) -> None:
    """The world camera's defocus and motion streak (drawn after the scene) raise the
    smallest cap by `blur_factor`, so legibility holds through them too."""
    var = Variation(markings="world", defocus=(0.0, 1.6), motion_blur=(0.0, 5.0))
    factor = sm.blur_factor(var)
    assert sm.blur_factor(WORLD) == 1.0 and 1.9 < factor < 2.2
    caps = []
    real = sm.draw_block

    def spy(img, lines, face, cap, m, colors):
        caps.append((sm.face_name(face), cap * float(np.sqrt(abs(np.linalg.det(m[:, :2]))))))
        return real(img, lines, face, cap, m, colors)

    monkeypatch.setattr(sm, "draw_block", spy)
    left, _, right, _ = view_box((640, 480), sm.ROI, sm.VIEW)
    per_view = sm.VIEW[0] / (right - left)
    marked = 0
    for _, label, (name, cap_px) in _spied(12, 4, (640, 480), caps, variation=var):
        if _illegible(label):
            continue
        marked += 1
        assert cap_px * per_view >= sm.MIN_CAP[name] * factor - 1e-6
        assert _by(label, "part_marking", "YES")
    assert marked >= 6


def test_marked_parts_fit_every_camera_the_trainer_draws_them_at() -> None:
    """The trainer draws chip frames only at sizes whose shorter side is at least
    MIN_MARKING_SIDE, and at every such size of the world's cameras a marked part fits the
    part_marking view legibly (the smallest, 160x120, would have failed the run)."""
    from pnp_vision.devtools.synthetic_variation import WORLD as FULL
    from pnp_vision.devtools.synthetic_variation import WORLD_SIZE_WEIGHTS, WORLD_SIZES
    from pnp_vision.devtools.train_data import Recipe, training_frame

    for size in (s for s in WORLD_SIZES if min(s) >= sm.MIN_MARKING_SIDE):
        assert len(list(generate(6, 11, size, scenes=CHIP, variation=FULL))) == 6, size
    recipe = Recipe(
        sizes=((160, 120), (320, 240)), size_weights=(9.0, 1.0), world=FULL, world_share=0.5,
        world_sizes=WORLD_SIZES, world_size_weights=WORLD_SIZE_WEIGHTS,
    )  # fmt: skip
    shapes = {training_frame(i, 5, ["chip"], recipe)[0].shape[:2] for i in range(12)}
    assert shapes and all(min(shape) >= sm.MIN_MARKING_SIDE for shape in shapes), shapes
    small = {training_frame(i, 5, ["nozzle_tip"], recipe)[0].shape[:2] for i in range(12)}
    assert (120, 160) in small  # other scenes keep every size


def test_the_trainers_markings_setting_draws_real_parts_in_the_non_world_share() -> None:
    """`--set markings=world`: the frames outside `world_share` carry real packages (their
    questions record the drawn `lines` or `cue`), so the classic camera sees them too; the
    default keeps the generator's own chip."""
    from pnp_vision.devtools.train import TrainConfig, _setting
    from pnp_vision.devtools.train_data import training_frame

    def asked(markings: str) -> list[dict]:
        recipe = TrainConfig(mix={"chip": 4}, markings=markings, easy_batches=0).recipe()
        assert recipe.world is None  # world_share 0: every frame is the classic camera's
        return [q for i in range(6) for q in training_frame(i, 5, ["chip"], recipe)[1]["questions"]]

    world = asked(_setting("markings", "world"))
    assert world and all("lines" in q or "cue" in q for q in world)
    assert not any("lines" in q or "cue" in q for q in asked("classic"))
