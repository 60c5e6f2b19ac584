"""The synthetic frame generator and the bundled recording made with it."""

from __future__ import annotations

import collections
import json
import re

import cv2
import numpy as np
import pytest

from pnp_vision.capture.sources import read_index
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.synthetic import CORNERS, SCENES, TIP_STYLES, Variation, generate, render
from pnp_vision.errors import BadRequest

TEMPLATES = {
    "nozzle_alignment",
    "part_on_nozzle",
    "part_marking",
    "polarity_mark",
    "tombstone",
    "feeder_pocket_empty",
}
DEMO = PROJECT_ROOT / "recordings" / "demo"


def _check_question(q: dict) -> None:
    assert q["template"] in TEMPLATES
    assert q["answer"] in ("YES", "NO")
    if q["template"] == "part_marking":
        assert re.fullmatch(r"[A-Z0-9][A-Z0-9-]{0,15}", q["params"]["marking"])
    elif q["template"] == "polarity_mark":
        assert q["params"]["corner"] in CORNERS
    else:
        assert q["params"] == {}


def test_frames_are_deterministic_and_labelled() -> None:
    frames = list(generate(10, seed=3, size=(160, 120)))
    again = render(7, seed=3, size=(160, 120))
    assert np.array_equal(frames[7][0], again[0]) and frames[7][1] == again[1]
    assert not np.array_equal(frames[7][0], render(7, seed=4, size=(160, 120))[0])
    assert {label["scene"] for _, label in frames} == set(SCENES)
    for image, label in frames:
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8
        for q in label["questions"]:
            _check_question(q)
    assert {q["template"] for _, label in frames for q in label["questions"]} == TEMPLATES


def test_answers_are_balanced_per_template() -> None:
    counts = collections.Counter(
        (q["template"], q["answer"])
        for _, label in generate(100, seed=11, size=(112, 112))
        for q in label["questions"]
    )
    for template in TEMPLATES:
        yes, no = counts[(template, "YES")], counts[(template, "NO")]
        assert yes > 0 and no > 0
        assert abs(yes - no) <= 1, (template, yes, no)


def test_crosshair_moves_between_frames() -> None:
    """A crosshair always at the image centre teaches "ring in the middle of the frame" instead
    of "ring on the crosshair": its lines must land somewhere else in every frame."""
    nozzles = [
        (img, label)
        for img, label in generate(20, seed=5, size=(224, 224), lighting="even", noise=0)
        if label["scene"] == "nozzle_tip"
    ]
    centres = set()
    for img, _ in nozzles:
        edges = cv2.Canny(img, 50, 150)
        centres.add((int(np.argmax(edges.sum(0))), int(np.argmax(edges.sum(1)))))
    assert len(centres) == len(nozzles)  # the crosshair moves


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"size": (10, 10)}, "size"),
        ({"lighting": "dim"}, "'dim'"),
        ({"scenes": ["beach"]}, "'beach'"),
        ({"noise": -1}, "noise"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        next(generate(1, **kwargs))


def test_bundled_recording_matches_the_generator() -> None:
    entries = read_index(DEMO)
    labels = [json.loads(line) for line in (DEMO / "labels.jsonl").read_text().splitlines()]
    assert len(entries) == len(labels) == 48
    assert [e.file.name for e in entries] == [row["file"] for row in labels]
    assert [row["seq"] for row in labels] == list(range(48))
    assert sum(p.stat().st_size for p in DEMO.iterdir()) < 4_000_000
    assert {q["template"] for row in labels for q in row["questions"]} == TEMPLATES
    for seq in (0, 13, 47):  # the files are what the generator draws for seed 0
        image, label = render(seq, seed=0, size=(320, 240), noise=0.6)
        recorded = {k: v for k, v in labels[seq].items() if k not in ("seq", "file")}
        assert {k: label[k] for k in ("scene", "questions")} == recorded  # geometry: training's
        assert np.array_equal(cv2.imread(str(entries[seq].file)), image)


# -- families of frames (make_recording's options) ---------------------------------------------


def _crosshair(img: np.ndarray) -> tuple[int, int]:
    edges = cv2.Canny(img, 50, 150)
    return int(np.argmax(edges.sum(0))), int(np.argmax(edges.sum(1)))


def test_shift_puts_the_crosshair_at_the_asked_distance() -> None:
    size = (448, 448)  # 2 px a unit
    var = Variation(shift=(26.0, 32.0), tip_styles=("outline",))
    frames = generate(12, seed=8, size=size, lighting="even", blur=False, noise=0, variation=var)
    dists = []
    for img, label in frames:
        if label["scene"] in ("nozzle_tip", "part_held"):
            x, y = _crosshair(img)
            dists.append(np.hypot(x - size[0] / 2, y - size[1] / 2) / 2)
    assert len(dists) >= 4
    assert all(25 <= d <= 33 for d in dists), dists
    default = [
        np.hypot(*(np.subtract(_crosshair(img), (224, 224)))) / 2
        for img, label in generate(12, seed=8, size=size, lighting="even", blur=False, noise=0)
        if label["scene"] in ("nozzle_tip", "part_held")
    ]
    assert min(default) < 25  # the default draws nearer the centre: the option did move it


def test_default_variation_is_the_original_stream_and_others_differ() -> None:
    plain = render(3, seed=2, size=(160, 120))[0]
    assert np.array_equal(render(3, seed=2, size=(160, 120), variation=Variation())[0], plain)
    for var in (
        Variation(tip_radius=(10, 12)),
        Variation(harshness=(2.0, 2.0)),
        Variation(jpeg_quality=(30, 30)),
    ):
        other = render(0, seed=2, size=(160, 120), variation=var)[0]
        assert not np.array_equal(other, render(0, seed=2, size=(160, 120))[0]), var


def test_jpeg_family_stays_close_to_the_frame_it_compresses() -> None:
    var = Variation(jpeg_quality=(50, 50))
    raw = render(1, seed=4, size=(320, 240), blur=False, noise=0)[0]
    # the JPEG frame draws one more number (its quality) after the pixels: same scene
    jpeg = render(1, seed=4, size=(320, 240), blur=False, noise=0, variation=var)[0]
    diff = np.abs(raw.astype(int) - jpeg.astype(int))
    assert 0 < diff.mean() < 4


@pytest.mark.parametrize(
    ("var", "needle"),
    [
        (Variation(centred=(0.0, 5.0)), "label gap"),
        (Variation(off=(8.0, 20.0)), "label gap"),
        (Variation(tip_styles=("cartoon",)), "cartoon"),
        (Variation(tip_radius=(30.0, 20.0)), "tip_radius"),
        (Variation(jpeg_quality=(0, 50)), "jpeg_quality"),
    ],
)
def test_bad_families_are_named(var: Variation, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        next(generate(1, variation=var))


def test_every_tip_style_draws_and_labels_keep_the_gap(tmp_path) -> None:
    from pnp_vision.devtools.make_recording import main

    out = tmp_path / "rec"
    code = main(
        ["--out", str(out), "--frames", "10", "--scenes", "nozzle_tip", "--size", "160x120",
         "--tip-style", ",".join(TIP_STYLES), "--tip-radius", "10:50", "--shift", "0:30",
         "--harshness", "1.5:2", "--jpeg-quality", "40:90", "--centred", "2:3", "--off", "12:15"]
    )  # fmt: skip
    assert code == 0
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 10 and {row["scene"] for row in labels} == {"nozzle_tip"}
    answers = collections.Counter(
        q["answer"]
        for row in labels
        for q in row["questions"]
        if q["template"] == "nozzle_alignment"
    )
    assert answers == {"YES": 5, "NO": 5}
    assert all(cv2.imread(str(out / row["file"])).shape == (120, 160, 3) for row in labels)
