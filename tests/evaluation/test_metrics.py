"""Calibration error, reliability and coverage on hand-made answers (values worked by hand)."""

from __future__ import annotations

import pytest

from pnp_vision.evaluation import metrics
from pnp_vision.evaluation.evaluate import TemplateStats

# Four answers at 0.95 (three right), two at 0.65 (one right).
CONF = [0.95, 0.95, 0.95, 0.95, 0.65, 0.65]
HITS = [True, True, True, False, True, False]


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy() -> None:
    # bin 0.9-1.0: 4 answers, confidence 0.95, accuracy 0.75 -> gap 0.20
    # bin 0.6-0.7: 2 answers, confidence 0.65, accuracy 0.50 -> gap 0.15
    assert metrics.expected_calibration_error(CONF, HITS) == pytest.approx(
        4 / 6 * 0.20 + 2 / 6 * 0.15
    )
    assert metrics.expected_calibration_error([], []) is None
    # right as often as it says: calibrated
    assert metrics.expected_calibration_error([0.75] * 4, [True, True, True, False]) == 0.0


def test_reliability_bins_hold_every_answer_once() -> None:
    rows = metrics.reliability([*CONF, 1.0, 0.0], [*HITS, True, False])
    assert len(rows) == 10 and sum(r["answers"] for r in rows) == 8
    top, sixth, first = rows[9], rows[6], rows[0]
    assert top["answers"] == 5  # 1.0 falls in the last bin
    assert top["accuracy"] == pytest.approx(4 / 5) and top["confidence"] == pytest.approx(0.96)
    assert sixth["answers"] == 2 and sixth["accuracy"] == 0.5
    assert first["answers"] == 1 and first["accuracy"] == 0.0
    assert rows[3] == {"lo": 0.3, "hi": 0.4, "answers": 0, "confidence": None, "accuracy": None}


def test_coverage_vs_accuracy_at_each_bar() -> None:
    by_bar = {row["bar"]: row for row in metrics.coverage(CONF, HITS, bars=(0.5, 0.8, 0.99))}
    assert by_bar[0.5] == {
        "bar": 0.5, "coverage": 1.0, "accuracy": pytest.approx(4 / 6),
        "confident_wrong_share": pytest.approx(2 / 6),
    }  # fmt: skip
    assert by_bar[0.8]["coverage"] == pytest.approx(4 / 6)
    assert by_bar[0.8]["accuracy"] == 0.75
    assert by_bar[0.8]["confident_wrong_share"] == pytest.approx(1 / 6)
    assert by_bar[0.99] == {
        "bar": 0.99, "coverage": 0.0, "accuracy": None, "confident_wrong_share": 0.0
    }  # fmt: skip


def test_template_stats_count_confident_wrong_and_untrained() -> None:
    stats = TemplateStats("tombstone", ["YES", "NO"])
    stats.add("YES", "YES", True, 1.0, confidence=0.9, trained=True)
    stats.add("YES", "NO", True, 1.0, confidence=0.85, trained=True)  # acted on, wrong
    stats.add("NO", "YES", False, 1.0, confidence=0.6, trained=True)  # wrong, below the bar
    stats.add("NO", "NO", False, 1.0, confidence=0.55, trained=True)
    d = stats.as_dict()
    assert d["confident_wrong"] == 1 and d["confident_wrong_share"] == 0.25
    assert d["accuracy"] == 0.5 and d["confident_accuracy"] == 0.5 and d["trained"] is True
    # bins: 0.9 (right), 0.8 (0.85 wrong), 0.6 (0.6 wrong), 0.5 (0.55 right)
    assert d["ece"] == pytest.approx((0.1 + 0.85 + 0.6 + 0.45) / 4)
    assert sum(r["answers"] for r in d["reliability"]) == 4
    other = TemplateStats("part_marking", ["YES", "NO"])
    other.add("YES", "NO", False, 1.0, confidence=0.99, trained=False)
    assert other.as_dict()["trained"] is False and other.confident_wrong == 0
