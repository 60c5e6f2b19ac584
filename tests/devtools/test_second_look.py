"""The second look: labels follow the geometry actually drawn (measured on the drawing's masks),
frames are deterministic, every family and rig is a recording the project reads, and the
renderer shares no code with the generator (and nothing that trains imports it)."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.second_look.canvas import rotate
from pnp_vision.devtools.second_look.families import FAMILIES, RIGS
from pnp_vision.devtools.second_look.marking import LOOKALIKES, MARKING, marking_lines, negative
from pnp_vision.devtools.second_look.parts import PACKAGES
from pnp_vision.devtools.second_look.render import render_frame
from pnp_vision.devtools.second_look.shots import roi_half

PACKAGE_DIR = PROJECT_ROOT / "pnp_vision" / "devtools" / "second_look"
SMALL = ((320, 240), (400, 300), (480, 270))  # cheap sizes for the geometry checks


def frames(family: str, scene: str, n: int, seed: int = 7, **changes):
    """`n` frames of one scene of a family at small sizes, with their masks."""
    style = replace(FAMILIES[family], sizes=SMALL, **changes)
    return [render_frame(style, seed, family, i, track=True, scene=scene) for i in range(n)]


def centroid(frame, layer: str, near=None, radius: float = math.inf) -> tuple[float, float, int]:
    xs, ys = frame.canvas.mask_units(layer)
    if near is not None:
        keep = np.hypot(xs - near[0], ys - near[1]) <= radius
        xs, ys = xs[keep], ys[keep]
    if not len(xs):
        return math.nan, math.nan, 0
    return float(xs.mean()), float(ys.mean()), len(xs)


def answer(frame, template: str) -> str:
    return next(a for t, _, a in frame.questions if t == template)


@pytest.mark.parametrize("family", ["base", "rotated", "reticles"])
def test_nozzle_alignment_follows_the_gap_measured_on_the_drawing(family: str) -> None:
    """Tip centre (the tip mask's centroid) to reticle centre (where the drawn reticle is
    point-symmetric): <= 2.5 units for YES, >= 12 for NO, and the tip inside the ROI."""
    shots = frames(family, "nozzle_empty", 16)
    assert {answer(f, "nozzle_alignment") for f in shots} == {"YES", "NO"}
    for f in shots:
        tx, ty, n = centroid(f, "tip")
        assert n > 20
        rc = f.truth["reticle"]
        rx, ry, m = centroid(f, "reticle", near=rc, radius=10.0)
        pixel = 1 / f.canvas.k  # the reticle's thin lines land on whole pixels
        assert m > 0 and math.dist((rx, ry), rc) < max(0.5, 2 * pixel)  # symmetric about rc
        assert math.dist((tx, ty), f.truth["tip"]) < 0.3
        gap = math.dist((tx, ty), rc)
        if answer(f, "nozzle_alignment") == "YES":
            assert gap <= 2.5 + 0.3
        else:
            assert gap >= 12 - 0.3
        assert answer(f, "part_on_nozzle") == "NO"
        hx, hy = roi_half(f.truth["size"])
        xs, ys = f.canvas.mask_units("tip")
        image_x, image_y = rotate((xs, ys), f.truth["rotation"])  # the ROI is in image axes
        assert np.abs(image_x).max() <= hx + 0.5 and np.abs(image_y).max() <= hy + 0.5


def test_a_held_part_covers_the_tip_and_an_empty_nozzle_holds_none() -> None:
    held = frames("packages", "nozzle_held", 10)
    for f in held:
        assert answer(f, "part_on_nozzle") == "YES"
        xs, ys = f.canvas.mask_units("part")
        assert len(xs) > 20
        tip = f.truth["tip"]
        assert np.hypot(xs - tip[0], ys - tip[1]).min() < 1.0  # the part is on the nozzle
    for f in frames("base", "nozzle_empty", 4):
        assert centroid(f, "part")[2] == 0


def test_tombstone_label_follows_how_long_the_part_looks_from_above() -> None:
    """Measured along its axis, a lying part shows >= 97% of its length; a standing one at
    most half of it plus its thickness (tilt >= 60 degrees)."""
    shots = frames("packages", "placed_chip", 16)
    assert {answer(f, "tombstone") for f in shots} == {"YES", "NO"}
    for f in shots:
        t = f.truth
        xs, ys = f.canvas.mask_units("part")
        ux, uy = math.cos(math.radians(t["axis"])), math.sin(math.radians(t["axis"]))
        along = xs * ux + ys * uy
        seen = float(along.max() - along.min())
        px = 1.0 / f.canvas.k  # a work pixel, in units
        if answer(f, "tombstone") == "YES":
            assert t["tilt"] >= 60
            assert seen <= 0.5 * t["length"] + t["thickness"] + 2 * px
        else:
            assert t["tilt"] <= 10
            assert seen >= 0.97 * t["length"] - 2 * px


def test_the_pick_pocket_is_unambiguous_and_its_state_is_the_label() -> None:
    shots = frames("tapes", "tape_pocket", 12)
    assert {answer(f, "feeder_pocket_empty") for f in shots} == {"YES", "NO"}
    for f in shots:
        t = f.truth
        pitch = t["pitch_units"]
        d = sorted(math.hypot(*p) for p in t["pockets"])
        assert d[0] <= 0.25 * pitch and d[1] >= 0.75 * pitch
        pick = min(t["pockets"], key=lambda p: math.hypot(*p))
        radius = 0.4 * min(t["pocket_units"])
        in_pocket = centroid(f, "part", near=pick, radius=radius)[2]
        if answer(f, "feeder_pocket_empty") == "YES":
            assert in_pocket == 0
        else:
            assert in_pocket > 0


def test_polarity_corner_is_where_the_marker_is_drawn_in_image_axes() -> None:
    shots = [f for f in frames("rotated", "part_top", 24) if "corner" in f.truth]
    assert len({f.truth["corner"] for f in shots}) >= 3
    for f in shots:
        mx, my, n = centroid(f, "polarity")
        assert n > 0
        cx, cy = f.truth["centre"]
        dx, dy = rotate((mx - cx, my - cy), f.truth["rotation"])
        yes = [p["corner"] for t, p, a in f.questions if t == "polarity_mark" and a == "YES"]
        no = [p["corner"] for t, p, a in f.questions if t == "polarity_mark" and a == "NO"]
        assert yes == [("top" if dy < 0 else "bottom") + "_" + ("left" if dx < 0 else "right")]
        assert no and no[0] != yes[0]
        assert min(abs(dx), abs(dy)) >= 0.2 * math.hypot(dx, dy)  # clear of the centre lines


def test_marking_asks_the_first_line_and_negatives_differ_as_claimed() -> None:
    rng = np.random.default_rng(3)
    kinds = set()
    for i in range(400):
        pkg = PACKAGES[["SOIC8", "QFP64", "R0805", "SOT23", "ELEC5", "TANT-B"][i % 6]]
        lines = marking_lines(rng, pkg)
        wrong, kind = negative(rng, lines)
        kinds.add(kind)
        pos = lines[0]
        assert MARKING.match(pos) and MARKING.match(wrong) and wrong != pos
        diff = [j for j in range(min(len(pos), len(wrong))) if pos[j] != wrong[j]]
        if kind == "lookalike":
            assert len(wrong) == len(pos) and len(diff) == 1
            assert wrong[diff[0]] in LOOKALIKES[pos[diff[0]]]
        elif kind == "changed":
            assert len(wrong) == len(pos) and len(diff) == 1
        elif kind == "swapped":
            assert sorted(wrong) == sorted(pos) and len(diff) == 2 and diff[1] == diff[0] + 1
        elif kind == "missing":
            assert len(wrong) == len(pos) - 1
            assert any(pos[:j] + pos[j + 1 :] == wrong for j in range(len(pos)))
        elif kind == "extra":
            assert len(wrong) == len(pos) + 1
            assert any(wrong[:j] + wrong[j + 1 :] == pos for j in range(len(wrong)))
        elif kind == "other_line":
            assert wrong in lines[1:]
    assert kinds >= {"lookalike", "swapped", "missing", "extra", "other_line", "unrelated"}
    for f in frames("base", "part_top", 6):
        asked = {p["marking"]: a for t, p, a in f.questions if t == "part_marking"}
        assert asked[f.truth["lines"][0]] == "YES" and asked[f.truth["negative"]] == "NO"
        assert centroid(f, "marking")[2] > 0  # the text was drawn


def test_frames_are_deterministic_per_seed_and_index() -> None:
    style = FAMILIES["mixed"]
    a = render_frame(style, 5, "mixed", 3)
    b = render_frame(style, 5, "mixed", 3)
    assert a.questions == b.questions and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    c = render_frame(style, 6, "mixed", 3)
    assert (
        not np.array_equal(np.asarray(a.image), np.asarray(c.image)) or a.image.size != c.image.size
    )


@pytest.mark.parametrize("rig", list(RIGS))
def test_a_rig_keeps_its_look_and_varies_only_the_content(rig: str) -> None:
    style = replace(RIGS[rig], sizes=RIGS[rig].sizes)
    shots = [render_frame(style, s, rig, i) for s in (0, 1) for i in range(4)]
    assert len({f.image.size for f in shots}) == 1
    for key in ("camera", "look", "rotation"):
        assert len({repr(f.truth[key]) for f in shots}) == 1, key
    labels = [f.questions[0][2] for f in shots[:4]]
    assert labels == ["YES", "NO", "YES", "NO"]
    assert len({f.image.tobytes() for f in shots}) == len(shots)
    if rig == "hexrig":  # issue 32's rig: what it says it is
        assert shots[0].image.size == (1024, 768)
        look = shots[0].truth["look"]
        assert (look["tip"].make, look["reticle"].kind) == ("hex", "dashed_ticks")
        assert shots[0].truth["camera"].field == "ring"
        assert len({repr(f.truth["reticle"]) for f in shots}) == 1  # the crosshair stays put


def test_a_family_varies_its_look() -> None:
    shots = [render_frame(FAMILIES["base"], 0, "base", i) for i in (0, 5)]
    assert repr(shots[0].truth["look"]) != repr(shots[1].truth["look"])
    assert shots[0].truth["camera"] != shots[1].truth["camera"]


@pytest.mark.parametrize("name", [*FAMILIES, *RIGS])
def test_every_family_and_rig_is_a_recording_the_project_reads(tmp_path: Path, name) -> None:
    from pnp_vision.capture.sources import read_index
    from pnp_vision.devtools.second_look.__main__ import main
    from pnp_vision.evaluation.labels import load_labels
    from pnp_vision.inspect import TemplateSet

    out = tmp_path / name
    which = ["--rig", name] if name in RIGS else ["--family", name]
    assert main(["--out", str(out), *which, "--seed", "11", "--frames", "2"]) == 0
    entries, labels = read_index(out), load_labels(out)
    truth = [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]
    assert [t["seq"] for t in truth] == [0, 1]
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    assert [e.seq for e in entries] == [f.seq for f in labels] == [0, 1]
    for row, entry, frame in zip(index, entries, labels, strict=True):
        image = cv2.imread(str(entry.file), cv2.IMREAD_COLOR)
        assert image.shape == (row["height"], row["width"], 3) and row["encoding"] == "png"
        assert frame.file == row["file"] and frame.questions
        for q in frame.questions:
            template = templates.get(q.template)
            template.render(q.params)  # raises on a parameter the template refuses
            assert q.answer in template.answers


def test_cli_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    from pnp_vision.devtools.second_look.__main__ import main

    args = ["--out", str(tmp_path / "r"), "--rig", "tombrig", "--seed", "1", "--frames", "1"]
    assert main(args) == 0
    assert main(args) == 2
    assert main([*args, "--force"]) == 0


def test_a_family_replays_and_evaluates_with_the_shipped_model(tmp_path: Path) -> None:
    """Through the real `replay` camera source and the project's evaluation, real model."""
    from pnp_vision.capture.cameras import CameraConfig
    from pnp_vision.capture.daemon import CaptureDaemon
    from pnp_vision.devtools.second_look.evaluate import run
    from pnp_vision.devtools.second_look.record import write_recording
    from pnp_vision.protocol.frames import CameraState

    folder = write_recording(
        tmp_path / "base", replace(FAMILIES["base"], sizes=SMALL), stream="base", seed=2, frames=5
    )
    cam = CameraConfig(name="second", source=str(folder), pacing="drain")
    with CaptureDaemon([cam], "inproc://second-look") as daemon:
        status = daemon.wait_for("second", lambda s: s.state is CameraState.ENDED, 20)
    assert status.frames == 5
    report = run(PROJECT_ROOT / "models" / "pnp-inspector", {"base": folder}, 0.9)["base"]
    assert report["frames"] == 5 and not report["skipped_frames"]
    assert set(report["templates"]) == {
        "nozzle_alignment",
        "part_on_nozzle",
        "tombstone",
        "feeder_pocket_empty",
        "part_marking",
        "polarity_mark",
    }


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


GENERATOR = (
    "pnp_vision.devtools.synthetic",
    "pnp_vision.devtools.glyphs",
    "pnp_vision.devtools.train",
    "pnp_vision.devtools.make_recording",
    "pnp_vision.devtools.families",  # the generator's families (it imports the generator)
)


def test_the_second_look_shares_no_code_with_the_generator() -> None:
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in _imports(path):
            assert not name.startswith(GENERATOR), f"{path.name} imports {name}"
            assert name.split(".")[0] != "cv2", f"{path.name} draws with OpenCV"
    # and at run time: writing and scoring a family never loads a generator module
    code = (
        "import sys; from pnp_vision.devtools.second_look import __main__, evaluate, render;"
        " print(sorted(m for m in sys.modules if m.startswith(" + repr(GENERATOR) + ")))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nothing_that_trains_imports_the_second_look() -> None:
    root = PROJECT_ROOT / "pnp_vision"
    trainers = [*root.glob("devtools/train*.py"), *(root / "teach").rglob("*.py")]
    assert trainers
    for path in trainers:
        assert "second_look" not in path.read_text(), path


def test_runner_table_pools_families_and_make_reuses_only_a_matching_folder(
    tmp_path: Path,
) -> None:
    from pnp_vision.devtools.second_look.evaluate import make, table

    def stats(n: int, correct: int, wrong: int, below: int, trained: bool | None = True) -> dict:
        return {
            "questions": n, "correct": correct, "confident_wrong": wrong, "below_bar": below,
            "accuracy": correct / n, "confident_wrong_share": wrong / n,
            "below_bar_share": below / n, "trained": trained,
        }  # fmt: skip

    reports = {
        "base": {"templates": {"tombstone": stats(10, 5, 4, 1)}},
        "dim": {"templates": {"tombstone": stats(30, 30, 0, 3), "part_marking": stats(4, 2, 0, 4,
                                                                                      False)}},
    }  # fmt: skip
    lines = table(reports).splitlines()
    assert lines[0] == "| template | base | dim | all (n) |"
    assert lines[2] == "| part_marking (untrained) | - | 50 / 0 / 0 | 50.0 / 0.0 / 0.0 (4) |"
    assert lines[3] == "| tombstone | 50 / 40 / 90 | 100 / 0 / 90 | 87.5 / 10.0 / 90.0 (40) |"

    first = make(tmp_path, ["jpeg"], seed=4, frames=1)["jpeg"] / "000000-nozzle_empty.png"
    stamp = first.stat().st_mtime_ns
    make(tmp_path, ["jpeg"], seed=4, frames=1)
    assert first.stat().st_mtime_ns == stamp  # same seed and size: kept
    make(tmp_path, ["jpeg"], seed=5, frames=1)
    assert json.loads((tmp_path / "jpeg" / "second_look.json").read_text())["seed"] == 5
