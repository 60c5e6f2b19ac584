"""`pnp-vision train` (no --lora): the shipped inspector taught a rig's check as a weights adapter
in a new folder; every template it was not taught answers exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.inspect import Question, TemplateSet
from pnp_vision.inspect.adapters import open_inspector, read_adapter_meta
from pnp_vision.teach.lora import examples_from_recording
from pnp_vision.teach.train import fine_tune
from pnp_vision.teach.weights_loop import LoopConfig

SHIPPED = PROJECT_ROOT / "models" / "pnp-inspector"
TAUGHT = "nozzle_alignment"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rig past the shipped model's ranges: 480x360, the crosshair 34-40 units off centre,
    big tips drawn as outlines; 60 frames, 30 of each nozzle_alignment answer (part_on_nozzle:
    NO on every frame, an empty nozzle)."""
    out = tmp_path_factory.mktemp("rig") / "rec"
    subprocess.run(
        [sys.executable, "-m", "pnp_vision.devtools.make_recording", "--out", str(out),
         "--frames", "60", "--seed", "11", "--size", "480x360", "--scenes", "nozzle_tip",
         "--shift", "34:40", "--tip-radius", "50:56", "--tip-style", "outline",
         "--png-level", "1"],
        check=True, capture_output=True, timeout=600, cwd=PROJECT_ROOT,
    )  # fmt: skip
    return out


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", "train", *args],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
    )  # fmt: skip


@pytest.mark.slow
def test_fine_tune_adds_a_weights_adapter_and_leaves_every_other_template_as_it_was(
    rig: Path, tmp_path: Path
) -> None:
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    examples = examples_from_recording(rig, templates=[TAUGHT])
    said: list[str] = []
    out = tmp_path / "tuned"
    report = fine_tune(
        SHIPPED, examples, out, templates, steps=20, batch=4, lr=3e-4, recordings=[rig],
        loop=LoopConfig(check_every=10), progress=said.append,
    )  # fmt: skip
    assert report.train_examples + report.heldout_examples == len(examples) == 60
    assert any(line.startswith("step 20/20 loss") and "held-out loss" in line for line in said)
    # few held-out questions: said as it starts, and again under the table
    assert any(line.startswith("warning: nozzle_alignment: 12 held-out") for line in said)
    summary = report.summary()
    assert "95% interval" in summary and "warning: nozzle_alignment: 12 held-out" in summary
    taught = report.taught[TAUGHT]
    assert taught.heldout == 12 and taught.labels == {"NO": 30, "YES": 30}
    assert taught.why.startswith(f"{100 * taught.after:.1f}% of 12 held-out questions")

    # the folder: the base's weights untouched, plus a weights adapter for the taught template
    assert (out / "model.safetensors").read_bytes() == (SHIPPED / "model.safetensors").read_bytes()
    meta = read_adapter_meta(out / "adapters" / TAUGHT)
    assert meta["kind"] == "weights" and meta["templates"] == [TAUGHT]
    assert any(name.startswith("vision_tower.blocks.0.") for name in meta["tensors"])

    # what it was taught from
    record = json.loads((out / "training.json").read_text())
    shipped_record = json.loads((SHIPPED / "training.json").read_text())
    assert record["config"] == shipped_record["config"]  # the base's own recipe, kept
    (tune,) = record["fine_tunes"]
    assert tune["recordings"] == [str(rig)] and tune["labels"] == {TAUGHT: {"NO": 30, "YES": 30}}
    assert tune["steps"] == report.steps and tune["seconds"] > 0 and tune["cpu_seconds"] > 0
    assert tune["heldout"][TAUGHT]["learned"] == taught.learned

    # calibration and familiarity: refitted for the taught template, the base's for the others
    calibration = json.loads((out / "calibration.json").read_text())
    shipped = json.loads((SHIPPED / "calibration.json").read_text())
    assert calibration["templates"][TAUGHT]["questions"] == 12
    for name in ("tombstone", "feeder_pocket_empty", "part_on_nozzle"):
        assert calibration["templates"][name] == shipped["templates"][name]
        assert name in calibration["learned_templates"]
    assert (TAUGHT in calibration["learned_templates"]) == taught.learned
    familiarity = json.loads((out / "familiarity.json").read_text())
    assert familiarity["templates"][TAUGHT]["train_views"] == 48

    # answers: the taught template through its new adapter, every other one bit-identical to
    # the shipped folder as the worker answers it (its own adapters included)
    tuned, base = open_inspector(out, templates), open_inspector(SHIPPED, templates)
    asked = [Question(template=t) for t in ("tombstone", TAUGHT, "part_on_nozzle")]
    for example in examples[:4]:
        frame = Path(example.image).read_bytes()
        mine, theirs = tuned.inspect(frame, asked), base.inspect(frame, asked)
        assert mine[1].probabilities != theirs[1].probabilities
        assert mine[1].familiar is not None  # the taught template has a statistic now
        for i in (0, 2):
            assert mine[i].probabilities == theirs[i].probabilities
            assert (mine[i].confident, mine[i].trained) == (theirs[i].confident, theirs[i].trained)


def test_train_refuses_a_template_it_cannot_teach_in_one_line(rig: Path, tmp_path: Path) -> None:
    """The rig's labels also say part_on_nozzle NO on every frame: refused before any model
    loads, saying what to label or how to leave it out; no folder written."""
    out = tmp_path / "never"
    done = _cli("--recording", str(rig), "--out", str(out))
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "[config_error]" in lines[0]
    assert "cannot teach part_on_nozzle: its labels hold one answer only (60 NO)" in lines[0]
    assert "label at least 20 YES" in lines[0] and "--template nozzle_alignment" in lines[0]
    assert not out.exists()


def test_train_refuses_a_non_empty_out_and_unlabelled_recordings(rig: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = _cli("--recording", str(rig), "--template", TAUGHT, "--out", str(out), "--steps", "1")
    assert done.returncode == 3 and "is not empty (add --force" in done.stderr
    assert (out / "keep.txt").read_text() == "mine"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "labels.jsonl").write_text("")
    done = _cli("--recording", str(bare), "--out", str(tmp_path / "o"), "--steps", "1")
    assert done.returncode == 3 and "label" in done.stderr


def test_taught_frames_keep_their_label_balance_in_the_held_out_split(rig: Path) -> None:
    """The split holds frames out with every question asked of them; both answers of the
    taught template are in it (a template without held-out questions is refused)."""
    from pnp_vision.teach.lora import split_heldout

    examples = examples_from_recording(rig, templates=[TAUGHT])
    train, heldout = split_heldout(examples, 0.2, 0)
    assert {e.answer for e in heldout} == {"YES", "NO"}
    assert not {str(e.image) for e in train} & {str(e.image) for e in heldout}
    assert np.isclose(len(heldout) / len(examples), 0.2)


def test_teaching_again_replaces_a_templates_weights_and_keeps_the_others(tmp_path) -> None:
    import mlx.core as mx

    from pnp_vision.inspect.adapters import own_adapters
    from pnp_vision.teach.train import write_weights_adapter

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    patch = {"vision_tower.merger.ln_q.weight": mx.ones((64,))}
    base = {"vision_tower.merger.ln_q.weight": mx.zeros((64,))}
    write_weights_adapter(folder, ["nozzle_alignment", "tombstone"], patch, base, {})
    write_weights_adapter(folder, ["feeder_pocket_empty"], patch, base, {})
    first = folder / "adapters" / "nozzle_alignment+tombstone"
    assert own_adapters(folder) == {
        "feeder_pocket_empty": folder / "adapters" / "feeder_pocket_empty",
        "nozzle_alignment": first,
        "tombstone": first,
    }
    write_weights_adapter(
        folder, ["tombstone"], patch, base, {}
    )  # taught again: its own weights now
    assert read_adapter_meta(first)["templates"] == ["nozzle_alignment"]
    assert own_adapters(folder)["tombstone"] == folder / "adapters" / "tombstone"
    write_weights_adapter(folder, ["nozzle_alignment"], patch, base, {})  # the old adapter is empty
    assert not first.exists()
    assert sorted(own_adapters(folder)) == ["feeder_pocket_empty", "nozzle_alignment", "tombstone"]
    # a LoRA adapter kept in the folder is not routed without the settings
    lora = folder / "adapters" / "lora"
    lora.mkdir()
    (lora / "pnp_adapter.json").write_text(
        json.dumps({"format": 1, "base": {}, "templates": ["part_on_nozzle"]})
    )
    assert "part_on_nozzle" not in own_adapters(folder)
