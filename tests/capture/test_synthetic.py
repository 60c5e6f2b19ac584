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
from pnp_vision.devtools.synthetic import CORNERS, SCENES, generate, render
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
        assert label == {k: v for k, v in labels[seq].items() if k not in ("seq", "file")}
        assert np.array_equal(cv2.imread(str(entries[seq].file)), image)
