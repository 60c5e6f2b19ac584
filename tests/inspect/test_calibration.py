"""Calibrated, honest answers: temperatures, the learned-templates list and refusing the rest."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from pnp_vision.errors import ConfigError, UnknownTemplate
from pnp_vision.inspect import Inspector, Question
from pnp_vision.inspect.calibration import (
    CALIBRATION_FILE,
    Calibration,
    fit_temperature,
    nll,
    tempered,
)


def test_fitted_temperature_makes_an_overconfident_model_honest() -> None:
    # says 0.99 every time, right 7 times in 10: the fitted temperature turns 0.99 into
    # Laplace's (7 + 1) / (10 + 2), i.e. ln(99) / T = ln(8 / 4)
    rows = [[0.99, 0.01]] * 10
    targets = [0] * 7 + [1] * 3
    t = fit_temperature(rows, targets)
    assert t == pytest.approx(math.log(99) / math.log(2), rel=1e-3)
    assert tempered([0.99, 0.01], t)[0] == pytest.approx(8 / 12, abs=1e-3)
    assert nll(rows, targets, t) < nll(rows, targets, 1.0)
    # an under-confident but always right model is sharpened (T < 1) to (2 + 1) / (2 + 2)
    t = fit_temperature([[0.6, 0.4], [0.4, 0.6]], [0, 1])
    assert tempered([0.6, 0.4], t)[0] == pytest.approx(3 / 4, abs=1e-3)


def test_no_misses_held_out_never_make_every_answer_certain() -> None:
    """200 right answers at 0.9 to 0.999: the fit stops near 1 - 1/202 on average, where the
    unsmoothed NLL would sharpen to the bound and call a 0.9 answer 1.0."""
    rows = [[p, 1 - p] for p in np.linspace(0.9, 0.999, 200)]
    t = fit_temperature(rows, [0] * 200)
    assert t > 0.3
    assert tempered([0.9, 0.1], t)[0] < 0.999
    mean = sum(tempered(r, t)[0] for r in rows) / len(rows)
    assert mean == pytest.approx(1 - 1 / 202, abs=0.003)


def test_tempering_keeps_the_ranking_and_sums_to_one() -> None:
    for t in (0.3, 1.0, 4.0):
        p = tempered([0.2, 0.5, 0.3], t)
        assert sum(p) == pytest.approx(1.0) and p.index(max(p)) == 1
    assert tempered([1.0, 0.0], 2.0) == pytest.approx([1.0, 0.0])  # log(0) is guarded


@pytest.fixture(scope="module")
def calibrated_dir(tiny_model_dir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(tiny_model_dir("qwen2_5_vl"), folder)
    record = {
        "learned_templates": ["tombstone", "nozzle_alignment"],
        "templates": {"tombstone": {"temperature": 0.25}, "nozzle_alignment": {"temperature": 1}},
    }
    (folder / CALIBRATION_FILE).write_text(json.dumps(record))
    return folder


def test_inspector_applies_temperatures_and_marks_untrained_templates(
    calibrated_dir: Path, templates, make_frame
) -> None:
    frame = make_frame(4)
    asked = [Question(template=n) for n in ("tombstone", "nozzle_alignment", "part_on_nozzle")]
    asked.append(Question(template="polarity_mark", params={"corner": "top_left"}))
    raw = Inspector(calibrated_dir, templates, min_confidence=0.0, calibrated=False)
    honest = Inspector(calibrated_dir, templates, min_confidence=0.0)
    before = raw.inspect(frame, asked)
    after = honest.inspect(frame, asked)
    assert [r.trained for r in before] == [None] * 4  # uncalibrated: the folder says nothing
    assert [r.trained for r in after] == [True, True, False, False]
    # tombstone at T = 0.25: sharper, same winner; nozzle_alignment at T = 1: unchanged
    want = tempered(list(before[0].probabilities.values()), 0.25)
    assert list(after[0].probabilities.values()) == pytest.approx(want)
    assert after[0].answer == before[0].answer
    assert max(after[0].probabilities.values()) > max(before[0].probabilities.values())
    assert after[1].probabilities == before[1].probabilities
    # a bar of 0 passes everything the folder learned, and nothing it did not
    assert [r.confident for r in after] == [True, True, False, False]
    assert all(r.confident for r in before)


def test_refuse_untrained_answers_unknown_template(calibrated_dir: Path, templates) -> None:
    strict = Inspector(calibrated_dir, templates, refuse_untrained=True)
    frame = np.full((120, 160, 3), 80, np.uint8)
    assert strict.inspect(frame, [Question(template="tombstone")])[0].trained is True
    with pytest.raises(UnknownTemplate, match=r"part_on_nozzle.*not learned.*refuse_untrained"):
        strict.inspect(frame, [Question(template="tombstone"), Question(template="part_on_nozzle")])


def test_calibration_file_problems_name_the_file(tmp_path: Path) -> None:
    assert Calibration.load(tmp_path) == Calibration()  # none: neutral
    path = tmp_path / CALIBRATION_FILE
    path.write_text('{"templates": {}}')
    with pytest.raises(ConfigError, match=r"calibration\.json: invalid calibration file"):
        Calibration.load(tmp_path)
    path.write_text('{"learned_templates": ["a"], "templates": {"a": {"temperature": -1}}}')
    with pytest.raises(ConfigError, match="finite and > 0"):
        Calibration.load(tmp_path)
