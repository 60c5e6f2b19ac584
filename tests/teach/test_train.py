"""`pnp-vision train` (no --lora): the shipped inspector fine-tuned on a rig's labelled frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.teach.lora import examples_from_recording
from pnp_vision.teach.train import fine_tune

SHIPPED = PROJECT_ROOT / "models" / "pnp-inspector"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rig past the shipped model's ranges: 480x360, the crosshair 34-40 units off centre,
    big tips drawn as outlines."""
    out = tmp_path_factory.mktemp("rig") / "rec"
    subprocess.run(
        [sys.executable, "-m", "pnp_vision.devtools.make_recording", "--out", str(out),
         "--frames", "24", "--seed", "11", "--size", "480x360", "--scenes", "nozzle_tip",
         "--shift", "34:40", "--tip-radius", "50:56", "--tip-style", "outline"],
        check=True, capture_output=True, timeout=600, cwd=PROJECT_ROOT,
    )  # fmt: skip
    return out


@pytest.mark.slow
def test_fine_tune_writes_a_calibrated_model_folder_and_the_loss_falls(
    rig: Path, tmp_path: Path
) -> None:
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    examples = examples_from_recording(rig, templates=["nozzle_alignment"])
    said: list[str] = []
    report = fine_tune(
        SHIPPED, examples, tmp_path / "tuned", templates, steps=25, batch=4, lr=3e-4,
        progress=said.append,
    )  # fmt: skip
    assert report.train_examples + report.heldout_examples == len(examples) == 24
    assert np.mean(report.losses[:5]) > np.mean(report.losses[-5:])
    assert any(line.startswith("step 25/25 loss") for line in said)
    assert set(report.accuracy_before) == set(report.accuracy_after) == {"nozzle_alignment"}

    calibration = json.loads((tmp_path / "tuned" / "calibration.json").read_text())
    assert calibration["fine_tuned_on"] == ["nozzle_alignment"]
    assert calibration["templates"]["nozzle_alignment"]["questions"] == report.heldout_examples
    shipped = json.loads((SHIPPED / "calibration.json").read_text())
    assert calibration["templates"]["tombstone"] == shipped["templates"]["tombstone"]  # kept
    assert (tmp_path / "tuned" / "training.json").is_file()
    # The folder is an ordinary model folder: the Inspector loads it, and its weights moved.
    tuned = Inspector(tmp_path / "tuned", templates)
    base = Inspector(SHIPPED, templates)
    question = [Question(template="nozzle_alignment")]
    frame = Path(examples[0].image).read_bytes()
    assert (
        tuned.inspect(frame, question)[0].probabilities
        != base.inspect(frame, question)[0].probabilities
    )


def test_train_refuses_a_non_empty_out_and_unlabelled_recordings(rig: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cmd = [
        sys.executable,
        "-m",
        "pnp_vision.cli",
        "train",
        "--recording",
        str(rig),
        "--out",
        str(out),
        "--steps",
        "1",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert done.returncode == 3 and "is not empty (add --force" in done.stderr
    assert (out / "keep.txt").read_text() == "mine"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "labels.jsonl").write_text("")
    cmd[5] = str(bare)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert done.returncode == 3 and "label" in done.stderr


def test_augmented_mirrors_exactly_the_templates_view() -> None:
    """A symmetric template's view is mirrored in place; the rest of the frame is untouched."""
    import random

    from pnp_vision.inspect.views import render_view
    from pnp_vision.teach.train import augmented

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    tombstone = templates.get("tombstone")
    assert set(tombstone.symmetries) == {"flip_x", "flip_y"}
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
    import random

    from pnp_vision.inspect.views import view_box
    from pnp_vision.teach.train import SHIFT, augmented

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
