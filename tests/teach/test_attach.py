"""`devtools.attach`: templates trained in a continued folder become the base's own weights
adapter; the base's templates answer exactly as before, the attached one as the trained folder
(to float16's rounding of the weights' changes: the patch holds them as float16 deltas).

Real training (two steps, continued from the bundled folder) and real Inspectors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.devtools.attach import attach
from pnp_vision.devtools.synthetic import render
from pnp_vision.devtools.train import TrainConfig, train
from pnp_vision.inspect import Inspector, Question, TemplateSet
from pnp_vision.inspect.adapters import open_inspector, own_adapters

TAUGHT = "polarity_mark"


def _probabilities(inspector, image: np.ndarray, questions: list[Question]) -> list[dict]:
    return [r.probabilities for r in inspector.inspect(image, questions)]


SHIPPED = PROJECT_ROOT / "models" / "pnp-inspector"


@pytest.fixture(scope="module")
def attached(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(base with the attached adapter, the trained folder, where the adapter is)."""
    tmp_path = tmp_path_factory.mktemp("attach")
    base = tmp_path / "base"
    shutil.copytree(SHIPPED, base, ignore=shutil.ignore_patterns("adapters"))
    cfg = TrainConfig(
        steps=2, templates=(TAUGHT,), mix={"chip": 2}, heldout_frames=4, familiarity_frames=8,
        helpers=1, compile=False, geometry_weight=0.0, max_pixels=37632, easy_batches=0,
        world_share=0.7, lr=1e-3,
    )  # fmt: skip
    trained = tmp_path / "trained"
    train(trained, cfg, init_from=base)
    return base, trained, attach(base, trained, [TAUGHT])


def test_attached_templates_answer_as_trained_and_the_rest_as_before(attached) -> None:
    base, trained, where = attached
    shipped = SHIPPED
    assert own_adapters(base) == {TAUGHT: base / where}
    calibration = json.loads((base / "calibration.json").read_text())
    assert TAUGHT in calibration["trained_templates"] and TAUGHT in calibration["templates"]
    assert TAUGHT in json.loads((base / "familiarity.json").read_text())["templates"]

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    routed = open_inspector(base, templates)
    image, label = render(3, 4242, (640, 480), scenes=["nozzle_tip"])
    own = [Question(template=q["template"], params=q["params"]) for q in label["questions"]]
    assert _probabilities(routed, image, own) == _probabilities(
        Inspector(shipped, templates), image, own
    )
    chip, label = render(5, 4242, (640, 480), scenes=["chip"])
    taught = [
        Question(template=q["template"], params=q["params"])
        for q in label["questions"]
        if q["template"] == TAUGHT
    ]
    assert taught
    trained_inspector = Inspector(trained, templates)  # its calibration and statistic
    got = _probabilities(routed, chip, taught)
    for mine, theirs in zip(got, _probabilities(trained_inspector, chip, taught), strict=True):
        assert mine == pytest.approx(theirs, abs=1e-5)
    assert _probabilities(routed, chip, taught) != _probabilities(
        Inspector(shipped, templates), chip, taught
    )


def test_the_evaluation_runners_answer_a_taught_template_through_its_adapter(
    attached, tmp_path: Path
) -> None:
    """The families' and the second look's runner (`evaluate_folders`) open a folder as the
    worker does: its taught template scores as the trained folder, not as the base's weights
    under the trained folder's calibration and statistic."""
    from pnp_vision.devtools.make_recording import main as make_recording
    from pnp_vision.evaluation.evaluate import evaluate_folders

    base, trained, _ = attached
    rec = tmp_path / "chips"
    args = ["--out", str(rec), "--frames", "6", "--seed", "9031", "--scenes", "chip"]
    assert make_recording([*args, "--png-level", "1"]) == 0

    def taught(model: Path) -> dict:
        stats = evaluate_folders(model, {"chips": rec}, 0.5)["chips"]["templates"][TAUGHT]
        return {k: stats[k] for k in ("questions", "correct", "below_bar", "familiarity", "ece")}

    mine, theirs = taught(base), taught(trained)
    assert mine["questions"] >= 6
    assert mine.pop("ece") == pytest.approx(theirs.pop("ece"), abs=1e-5)
    assert mine == theirs
