"""Numbers an integrator sets a confidence bar with: calibration error, reliability, coverage.

Each answer is (confidence, correct): the probability of the answer the model gave and whether
it matched the label. Pure functions on plain lists, so they are tested on hand-made answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BINS = 10
BARS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _bin(confidence: float, bins: int) -> int:
    return min(bins - 1, max(0, int(confidence * bins)))


def reliability(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = BINS
) -> list[dict[str, Any]]:
    """Equal-width bins of confidence over [0, 1] (the last one includes 1.0): per bin the
    answers in it, their mean confidence and their accuracy (None where a bin is empty). A
    calibrated model's accuracy follows its confidence bin by bin."""
    counts = [0] * bins
    conf_sum = [0.0] * bins
    right = [0] * bins
    for c, ok in zip(confidences, correct, strict=True):
        b = _bin(c, bins)
        counts[b] += 1
        conf_sum[b] += c
        right[b] += bool(ok)
    return [
        {
            "lo": b / bins,
            "hi": (b + 1) / bins,
            "answers": counts[b],
            "confidence": conf_sum[b] / counts[b] if counts[b] else None,
            "accuracy": right[b] / counts[b] if counts[b] else None,
        }
        for b in range(bins)
    ]


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = BINS
) -> float | None:
    """ECE: the answer-weighted mean gap between confidence and accuracy over the bins of
    `reliability` (0: calibrated; None: no answers)."""
    n = len(confidences)
    if not n:
        return None
    return sum(
        row["answers"] / n * abs(row["accuracy"] - row["confidence"])
        for row in reliability(confidences, correct, bins)
        if row["answers"]
    )


def coverage(
    confidences: Sequence[float],
    correct: Sequence[bool],
    bars: Sequence[float] = BARS,
    eligible: Sequence[bool] | None = None,
) -> list[dict[str, Any]]:
    """For each candidate bar: the share of answers that clear it (acted on), their accuracy
    (None when none clear it), and the share of all answers that clear it and are wrong.
    `eligible`: per answer, whether any bar can make it confident (an untrained template or an
    unfamiliar view never is), as the service judges it."""
    n = len(confidences)
    may = [True] * n if eligible is None else eligible
    rows = []
    for bar in bars:
        kept = [ok for c, ok, m in zip(confidences, correct, may, strict=True) if m and c >= bar]
        rows.append(
            {
                "bar": bar,
                "coverage": len(kept) / n if n else 0.0,
                "accuracy": sum(kept) / len(kept) if kept else None,
                "confident_wrong_share": (len(kept) - sum(kept)) / n if n else 0.0,
            }
        )
    return rows
