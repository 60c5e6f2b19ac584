"""What `pnp-vision train` refuses before training, and the figures its report prints."""

from __future__ import annotations

import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import ConfigError
from pnp_vision.inspect import TemplateSet
from pnp_vision.teach.lora import Example
from pnp_vision.teach.readiness import MIN_PER_ANSWER, check_teachable
from pnp_vision.teach.report import Taught, wilson

TEMPLATES = TemplateSet.load(PROJECT_ROOT / "prompts")


def _labels(template: str, **answers: int) -> list[Example]:
    return [
        Example(f"f{template}{answer}{i}.png", template, {}, answer)
        for answer, n in answers.items()
        for i in range(n)
    ]


def test_enough_of_every_answer_is_counted() -> None:
    examples = _labels("nozzle_alignment", YES=20, NO=31) + _labels("tombstone", YES=25, NO=20)
    assert check_teachable(examples, TEMPLATES) == {
        "nozzle_alignment": {"NO": 31, "YES": 20},
        "tombstone": {"NO": 20, "YES": 25},
    }


def test_one_answer_only_is_refused_in_one_line_with_what_to_do() -> None:
    examples = _labels("nozzle_alignment", YES=100, NO=100) + _labels("part_on_nozzle", NO=200)
    with pytest.raises(ConfigError) as refused:
        check_teachable(examples, TEMPLATES)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("cannot teach part_on_nozzle: its labels hold one answer only")
    assert "200 NO" in message and f"label at least {MIN_PER_ANSWER} YES" in message
    assert "--template nozzle_alignment" in message  # how to leave it out


def test_too_few_of_an_answer_says_how_many_more() -> None:
    with pytest.raises(ConfigError) as refused:
        check_teachable(_labels("tombstone", YES=12, NO=80), TEMPLATES)
    message = str(refused.value)
    assert "\n" not in message and "--template" not in message  # nothing else to keep
    assert "12 YES" in message and "80 NO" in message and "label 8 more YES" in message


def test_a_label_outside_the_answer_set_is_refused() -> None:
    with pytest.raises(ConfigError, match="'MAYBE' is not one of its answers"):
        check_teachable(_labels("tombstone", YES=30, NO=30, MAYBE=1), TEMPLATES)


def test_wilson_interval() -> None:
    lo, hi = wilson(40, 40)  # all right is not "100%": 91.2-100%
    assert lo == pytest.approx(0.9124, abs=1e-4) and hi == 1.0
    lo, hi = wilson(39, 40)
    assert lo == pytest.approx(0.8712, abs=1e-4) and hi == pytest.approx(0.9956, abs=1e-4)
    lo, hi = wilson(150, 300)
    assert lo == pytest.approx(0.4438, abs=1e-4) and hi == pytest.approx(0.5562, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_a_template_is_marked_learned_at_the_bar_and_says_why() -> None:
    kept = Taught("tombstone", {"NO": 30, "YES": 30}, 40, right_before=20, right_after=38)
    kept.judge()
    assert kept.learned and kept.why == "95.0% of 40 held-out questions >= 95.0%"
    dropped = Taught("tombstone", {"NO": 30, "YES": 30}, 40, right_before=20, right_after=37)
    dropped.judge()
    assert not dropped.learned and dropped.why.startswith("92.5% of 40 held-out questions <")
    assert "never confident" in dropped.why
