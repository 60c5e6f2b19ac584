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
    assert done.returncode == 2 and "is not empty (add --force" in done.stderr
    assert (out / "keep.txt").read_text() == "mine"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "labels.jsonl").write_text("")
    cmd[5] = str(bare)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert done.returncode == 2 and "label" in done.stderr


def test_mirrored_flips_exactly_the_templates_view() -> None:
    """A symmetric template's view is mirrored in place; the rest of the frame is untouched."""
    import random

    from pnp_vision.inspect.views import render_view
    from pnp_vision.teach.train import mirrored

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    nozzle = templates.get("nozzle_alignment")
    assert set(nozzle.symmetries) == {"flip_x", "flip_y"}
    frame = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    view = render_view(frame, nozzle.roi, nozzle.view)
    seen = set()
    rng = random.Random(3)
    for _ in range(40):
        out = mirrored(frame, nozzle, rng)
        got = render_view(out, nozzle.roi, nozzle.view)
        flips = {
            name
            for name, want in (
                ("", view), ("x", view[:, ::-1]), ("y", view[::-1]), ("xy", view[::-1, ::-1])
            )
            if np.array_equal(got, want)
        }  # fmt: skip
        assert len(flips) == 1
        seen |= flips
        assert np.array_equal(out[:, :100], frame[:, :100])  # outside the view's box
    assert seen == {"", "x", "y", "xy"}
    marking = templates.get("part_marking")  # text: no symmetry, the frame comes back as is
    assert not marking.symmetries and mirrored(frame, marking, rng) is frame
