"""`pnp-vision label` in a real process, typed answers on stdin, labels on disk after each."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pnp_vision.evaluation.labels import load_labels
from pnp_vision.teach.label import QUIT, SKIP, parse_reply

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "recordings" / "demo"


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Five frames of the demo recording, unlabelled."""
    folder = tmp_path / "rig"
    folder.mkdir()
    lines = (DEMO / "index.jsonl").read_text().splitlines()[:5]
    for line in lines:
        shutil.copy(DEMO / json.loads(line)["file"], folder)
    (folder / "index.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _label(folder: Path, typed: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "pnp_vision.cli",
        "label",
        "--recording",
        str(folder),
        "--template",
        "nozzle_alignment",
        "--crops",
        str(folder.parent / "crops"),
        *extra,
    ]
    return subprocess.run(cmd, input=typed, capture_output=True, text=True, timeout=60, cwd=ROOT)


def _answers(folder: Path) -> dict[int, str]:
    return {f.seq: q.answer for f in load_labels(folder) for q in f.questions}


def test_labels_are_written_per_frame_and_the_session_resumes(recording: Path) -> None:
    first = _label(recording, "y\nmaybe\nNO\nq\n")
    assert first.returncode == 0, first.stderr
    assert "'maybe' is not one of YES, NO" in first.stdout
    assert _answers(recording) == {0: "YES", 1: "NO"}
    crop = Image.open(recording.parent / "crops" / "000000-nozzle_tip-nozzle_alignment.png")
    assert crop.width * crop.height <= 320 * 240  # the template's view, not the frame file

    second = _label(recording, "\nyes\n")  # skip seq 2, label seq 3, then end of input
    assert second.returncode == 0, second.stderr
    assert "2 already labelled" in second.stdout
    assert _answers(recording) == {0: "YES", 1: "NO", 3: "YES"}

    unfinished = _label(recording, "", "--fail-if-unfinished")
    assert unfinished.returncode == 130  # seq 2 and 4 are still open
    assert _answers(recording) == {0: "YES", 1: "NO", 3: "YES"}


def test_relabel_replaces_an_answer_and_keeps_other_templates(recording: Path) -> None:
    (recording / "labels.jsonl").write_text(
        json.dumps(
            {
                "seq": 0,
                "file": "000000-nozzle_tip.png",
                "scene": "nozzle_tip",
                "questions": [
                    {"template": "nozzle_alignment", "params": {}, "answer": "NO"},
                    {"template": "part_on_nozzle", "params": {}, "answer": "NO"},
                ],
            }
        )
        + "\n"
    )
    done = _label(recording, "yes\nq\n", "--relabel")
    assert done.returncode == 0, done.stderr
    (frame,) = load_labels(recording)
    assert frame.scene == "nozzle_tip"
    assert {q.template: q.answer for q in frame.questions} == {
        "nozzle_alignment": "YES",
        "part_on_nozzle": "NO",
    }


def test_a_bad_parameter_is_refused_before_any_frame(recording: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pnp_vision.cli",
        "label",
        "--recording",
        str(recording),
        "--template",
        "part_marking",
        "--param",
        "marking=no spaces allowed",
    ]
    done = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "marking" in done.stderr and "seq 0" not in done.stdout
    assert not (recording / "labels.jsonl").exists()


@pytest.mark.parametrize(
    ("reply", "answers", "meaning"),
    [
        ("y", ["YES", "NO"], "YES"),
        ("no", ["YES", "NO"], "NO"),
        ("", ["YES", "NO"], SKIP),
        ("q", ["YES", "NO"], QUIT),
        ("q", ["QFN", "SOIC"], "QFN"),
        ("s", ["SOT23", "SOIC"], None),
        ("soic", ["SOT23", "SOIC"], "SOIC"),
        ("x", ["YES", "NO"], None),
    ],
)
def test_replies(reply: str, answers: list[str], meaning: str | None) -> None:
    assert parse_reply(reply, answers) == meaning
