"""The generator's world knobs: every label agrees with what was drawn, scenes stay inside their
templates' views at any camera size and roll, and every knob changes the frames."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.synthetic import WORLD, Variation, render
from pnp_vision.devtools.synthetic_camera import Shot, shoot
from pnp_vision.devtools.synthetic_variation import CENTRED_MAX, FLAT_MAX, OFF_MIN, STANDING_MIN
from pnp_vision.errors import BadRequest

# every aspect ratio the views handle: 4:3, 2:1, portrait, square, 16:9
SIZES = [(160, 120), (320, 240), (400, 200), (240, 320), (480, 480), (640, 360), (1280, 720)]
SCENES = ["nozzle_tip", "part_held", "tombstone", "feeder_pocket"]  # the ones the world redraws


@pytest.fixture(scope="module")
def world() -> list[tuple[tuple[int, int], np.ndarray, dict]]:
    """280 WORLD frames over SIZES (each scene meets each size), one seed."""
    return [
        (SIZES[i % len(SIZES)], *render(i, 4242, SIZES[i % len(SIZES)], variation=WORLD,
                                         scenes=SCENES))
        for i in range(280)
    ]  # fmt: skip


def _of(frames: list, scene: str) -> list:
    return [f for f in frames if f[2]["scene"] == scene]


def _answer(label: dict, template: str) -> str:
    return next(q["answer"] for q in label["questions"] if q["template"] == template)


def test_nozzle_label_is_the_drawn_tip_to_crosshair_distance(world: list) -> None:
    seen = set()
    for _, _, label in _of(world, "nozzle_tip"):
        d = label["drawn"]
        dist = np.hypot(*np.subtract(d["tip"], d["cross"])) / d["units"]
        answer = _answer(label, "nozzle_alignment")
        assert (dist <= CENTRED_MAX + 1e-9) if answer == "YES" else (dist >= OFF_MIN - 1e-9)
        # training's targets are the same geometry, in frame pixels and frame units
        assert label["points"]["nozzle_alignment"] == pytest.approx([*d["tip"], *d["cross"]])
        dx, dy = label["geometry"]["nozzle_alignment"]
        assert np.hypot(dx, dy) == pytest.approx(dist)
        seen.add((answer, "tip_radius" in d, d["rotation"] != 0))
    # both answers, real and classic tips, turned cameras
    assert {a for a, _, _ in seen} == {"YES", "NO"} and {r for _, r, _ in seen} == {True, False}
    assert any(turned for *_, turned in seen)


def test_tombstone_label_is_the_drawn_tilt(world: list) -> None:
    tilts = {"YES": [], "NO": []}
    for _, _, label in _of(world, "tombstone"):
        tilts[_answer(label, "tombstone")].append(label["drawn"]["tilt"])
    assert min(tilts["YES"]) >= STANDING_MIN and max(tilts["NO"]) <= FLAT_MAX
    # partly lifted and slightly lifted parts are both drawn, not only the extremes
    assert any(60 <= t < 85 for t in tilts["YES"]) and any(0 < t <= 10 for t in tilts["NO"])


def test_feeder_label_is_the_pocket_nearest_the_frame_centre(world: list) -> None:
    checked = 0
    for (w, h), _, label in _of(world, "feeder_pocket"):
        d = label["drawn"]
        if d.get("classic"):
            continue
        pockets = np.asarray(d["pockets"]).reshape(-1, 2)
        dist = np.hypot(*(pockets - (w / 2, h / 2)).T)
        assert int(np.argmin(dist)) == d["pick"]
        assert dist[d["pick"]] <= 0.25 * d["pitch_units"] * d["units"]
        assert d["filled"][d["pick"]] == (_answer(label, "feeder_pocket_empty") == "NO")
        checked += 1
    assert checked >= 8


def _boxes() -> dict[str, tuple[tuple[float, float], tuple[float, float], tuple[int, int]]]:
    from pnp_vision.inspect import TemplateSet

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    return {t: (templates.get(t).roi, templates.get(t).view) for t in
            ("nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty")}  # fmt: skip


def test_world_scenes_stay_inside_their_views(world: list) -> None:
    """What each answer is about lies in the box its template's view takes from the frame,
    at every aspect ratio and camera roll."""
    from pnp_vision.inspect.views import view_box

    views = _boxes()
    keys = {  # scene -> (template, marks that must be inside)
        "nozzle_tip": ("nozzle_alignment", ("cross",)),
        "part_held": ("part_on_nozzle", ("part",)),
        "tombstone": ("tombstone", ("part", "pads", "footprint")),
        "feeder_pocket": ("feeder_pocket_empty", ("pocket",)),
    }
    for size, _, label in world:
        if label["scene"] not in keys:
            continue
        template, marks = keys[label["scene"]]
        left, top, right, bottom = view_box(size, *views[template])
        d = label["drawn"]
        names = list(marks)
        if label["scene"] == "nozzle_tip" and _answer(label, template) == "YES":
            names.append("tip")
        for name in names:
            for x, y in np.asarray(d.get(name, [])).reshape(-1, 2):
                assert left <= x <= right and top <= y <= bottom, (label["scene"], name, size)


def test_shoot_maps_what_the_scene_drew_into_the_frame() -> None:
    """Marks go through the very warp the pixels do: a dot drawn on the canvas is found in
    the frame where its mark says, at any roll and canvas scale."""
    for canvas, turn in ((None, 0.0), (100, 0.0), (100, 37.0), (None, 123.0), (150, 90.0)):
        var = Variation(canvas=canvas, rotation=(turn, turn))

        def draw(img: np.ndarray, u: float, shot: Shot) -> list:
            h, w = img.shape[:2]
            at = (w / 2 + 40 * u, h / 2 - 15 * u)
            cv2.circle(img, (round(at[0] * 16), round(at[1] * 16)), round(3 * u * 16),
                       (255, 255, 255), -1, cv2.LINE_AA, 4)  # fmt: skip
            shot.mark("dot", at)
            return []

        rng = np.random.default_rng(1)
        image, _, drawn = shoot(draw, (320, 240), rng, var, lighting=False, blur=False,
                                noise_sigma=0)  # fmt: skip
        grey = image[..., 0].astype(np.float64)
        ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]]
        found = (float((xs * grey).sum() / grey.sum()), float((ys * grey).sum() / grey.sum()))
        assert found == pytest.approx(drawn["dot"], abs=0.6), (canvas, turn)
        assert abs(drawn["rotation"]) == turn


def test_a_reticle_square_to_the_frame_comes_out_square() -> None:
    """A reticle drawn at `Shot.reticle_angle`'s square angle is level in the turned frame;
    at angle 0 it turns with the camera."""
    branches = set()
    for turn in (30.0, -65.0):
        for seed in range(6):
            angles = []

            def draw(
                img: np.ndarray, u: float, shot: Shot, seed: int = seed, angles: list = angles
            ) -> list:
                a = np.deg2rad(shot.reticle_angle(np.random.default_rng(seed)))
                angles.append(a)
                h, w = img.shape[:2]
                d = np.array([np.cos(a), np.sin(a)]) * w
                ends = np.rint([(w / 2 - d[0], h / 2 - d[1]), (w / 2 + d[0], h / 2 + d[1])])
                cv2.line(img, *[tuple(int(v) for v in p) for p in ends], (255, 255, 255), 1)
                return []

            var = Variation(rotation=(abs(turn), abs(turn)))
            image, _, drawn = shoot(draw, (320, 240), np.random.default_rng(seed), var,
                                    lighting=False, blur=False, noise_sigma=0)  # fmt: skip
            ys, xs = np.nonzero(image[20:-20, 20:-20, 0] > 64)
            slope = np.polyfit(xs, ys, 1)[0]
            level = np.rad2deg(np.arctan(slope))
            expected = 0.0 if angles[0] else -drawn["rotation"]
            assert (level - expected + 90) % 180 - 90 == pytest.approx(0, abs=1.5)
            branches.add(bool(angles[0]))
    assert branches == {True, False}  # both square and turned reticles were checked


def test_a_tilted_part_shows_its_real_projection() -> None:
    """A chip lifted by `tilt` on its end shows L cos(tilt) of its top face and T sin(tilt)
    of its end face: the span the tombstone label is drawn from."""
    from pnp_vision.devtools.synthetic_board import _tilted
    from pnp_vision.devtools.synthetic_packages import sample_part
    from pnp_vision.devtools.synthetic_pen import Pen

    part = sample_part("1206", np.random.default_rng(3))
    length, _, thick = part.body
    ppm = 100.0
    for tilt in (0.0, 10.0, 60.0, 75.0, 90.0):
        img = np.zeros((300, 800, 3), np.uint8)
        lo, hi = _tilted(Pen(img, (400, 150), ppm), part, tilt)
        cols = np.flatnonzero(img.max(axis=(0, 2)) > 0)
        rad = np.deg2rad(tilt)
        assert hi - lo == pytest.approx(length * np.cos(rad) + thick * np.sin(rad))
        # drawn: the span, give or take the anti-aliased pixel at each end
        assert (cols[-1] - cols[0]) / ppm == pytest.approx(hi - lo, abs=3 / ppm), tilt


@pytest.mark.parametrize("tape", ["paper", "black", "clear"])
def test_the_feeder_answer_changes_only_the_pick_pocket(tape: str) -> None:
    """The same frame with the other answer differs in the pick pocket and nowhere else."""
    from pnp_vision.devtools.synthetic_feeder import feeder_pocket

    var = Variation(tapes=(tape,), packages=("0402", "sot23", "soic8", "tantalum", "qfn"))
    for seed in range(6):
        images, shots = [], []
        for yes in (True, False):
            img, shot = np.zeros((240, 320, 3), np.uint8), Shot(0.0)
            feeder_pocket(img, np.random.default_rng(seed), 320 / 224 * 0.75, yes, var, shot)
            images.append(img)
            shots.append(shot)
        diff = np.abs(images[0].astype(int) - images[1].astype(int)).max(axis=2) > 0
        assert diff.any()
        ys, xs = np.nonzero(diff)
        pockets = np.asarray(shots[0].marks["pockets"])
        pick = np.asarray(shots[0].marks["pocket"][0])
        near = np.hypot(xs - pick[0], ys - pick[1])
        others = np.delete(pockets, shots[0].facts["pick"], axis=0)
        nearest_other = np.hypot(*(others[:, None, :] - np.stack([xs, ys], 1)[None]).T).min(1)
        assert (near <= nearest_other + 1).all(), (tape, seed)


BASE = Variation(canvas=4096)  # the world camera with nothing else on: a knob's own effect
PARTS = replace(BASE, packages=("0805", "1206", "melf"))


@pytest.mark.parametrize(
    ("var", "base", "scene"),
    [
        (replace(BASE, nozzles=("juki", "cp")), BASE, "nozzle_tip"),
        (replace(BASE, reticles=("dashed", "ticks")), BASE, "nozzle_tip"),
        (replace(BASE, packages=("soic8", "0603")), BASE, "part_held"),
        (replace(BASE, tapes=("paper", "black")), BASE, "feeder_pocket"),
        (replace(PARTS, pads=("oval", "home")), PARTS, "tombstone"),
        (replace(PARTS, boards=("textured",)), PARTS, "tombstone"),
        (replace(PARTS, standing_tilt=(60.0, 70.0)), PARTS, "tombstone"),
        (replace(PARTS, flat_tilt=(6.0, 10.0)), PARTS, "tombstone"),
        (replace(BASE, canvas=100), BASE, "nozzle_tip"),
        (replace(BASE, rotation=(20.0, 160.0)), BASE, "feeder_pocket"),
        (replace(BASE, defocus=(1.5, 2.0)), BASE, "part_held"),
        (replace(BASE, motion_blur=(4.0, 6.0)), BASE, "part_held"),
        (replace(BASE, exposure=(-1.5, -1.0)), BASE, "tombstone"),
        (replace(BASE, vignette=(0.6, 0.8)), BASE, "tombstone"),
        (replace(BASE, jpeg_quality=(40, 40), jpeg_share=0.5), replace(BASE, jpeg_quality=(40, 40)),
         "nozzle_tip"),
    ],
)  # fmt: skip
def test_every_world_knob_changes_the_frames(var: Variation, base: Variation, scene: str) -> None:
    def frames(v: Variation) -> list[np.ndarray]:
        return [render(i, 31, (320, 240), scenes=[scene], variation=v)[0] for i in range(6)]

    assert any(not np.array_equal(a, b) for a, b in zip(frames(var), frames(base), strict=True))


def test_world_knobs_off_draw_the_classic_stream() -> None:
    """No world knob on: the original drawing, byte for byte (the bundled recording and the
    families depend on it); any on: the world camera."""
    assert not Variation().world and not replace(WORLD, **_world_defaults()).world
    assert WORLD.world and Variation(rotation=(0.0, 5.0)).world
    plain = render(4, 9, (160, 120))[0]
    assert np.array_equal(render(4, 9, (160, 120), variation=Variation(jpeg_share=1.0))[0], plain)


def _world_defaults() -> dict:
    from dataclasses import fields

    from pnp_vision.devtools.synthetic_variation import _WORLD_KNOBS

    return {f.name: f.default for f in fields(Variation) if f.name in _WORLD_KNOBS}


@pytest.mark.parametrize(
    ("var", "needle"),
    [
        (Variation(packages=("0999",)), "0999"),
        (Variation(nozzles=("fuji-xl",)), "fuji-xl"),
        (Variation(standing_tilt=(45.0, 90.0)), "standing_tilt"),
        (Variation(flat_tilt=(0.0, 20.0)), "flat_tilt"),
        (Variation(exposure=(-5.0, 0.0)), "exposure"),
        (Variation(canvas=10), "canvas"),
        (Variation(rotation=(0.0, 200.0)), "rotation"),
        (Variation(jpeg_share=1.5), "jpeg_share"),
    ],
)
def test_bad_world_knobs_are_named(var: Variation, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        render(0, variation=var)


def test_make_recording_world_and_every_family_parse(tmp_path) -> None:
    from pnp_vision.devtools.families import FAMILIES
    from pnp_vision.devtools.make_recording import build_parser, main, variation_of

    for name, args in FAMILIES.items():  # every documented family is a valid Variation
        var = variation_of(build_parser().parse_args(["--out", "x", *args]))
        assert not var.check(), name
    world = variation_of(build_parser().parse_args(["--out", "x", "--world", "--canvas", "200"]))
    assert world == replace(WORLD, canvas=200)
    out = tmp_path / "rec"
    args = ["--out", str(out), "--world", "--frames", "10", "--size", "240x320", "--png-level", "1"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == 10
    assert all(cv2.imread(str(out / r["file"])).shape == (320, 240, 3) for r in rows)
