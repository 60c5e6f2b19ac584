"""`eval` splits answers by familiarity, and its bar tables count only answers the service may
call confident (an untrained template or an unfamiliar view never is, at any bar).

A scripted inspector (passed in, as `evaluate` takes any) answers what each frame's first pixel
says: (answer YES?, familiar 0/1/2 = False/True/None, trained?), sure of itself (p 0.97).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pnp_vision.evaluation.evaluate import EvalReport, evaluate
from pnp_vision.evaluation.report import render_text


@dataclass
class _Timings:
    total_ms: float = 1.0


@dataclass
class _Result:
    answer: str
    probabilities: dict[str, float]
    confident: bool
    trained: bool | None
    familiar: bool | None
    timings: _Timings = field(default_factory=_Timings)


class _Scripted:
    def inspect(self, image: np.ndarray, questions: list[Any]) -> list[_Result]:
        yes, fam, trained = (int(v) for v in image[0, 0])
        familiar = {0: False, 1: True, 2: None}[fam]
        answer = "YES" if yes else "NO"
        probs = {"YES": 0.97, "NO": 0.03} if yes else {"YES": 0.03, "NO": 0.97}
        confident = familiar is not False and bool(trained)
        return [_Result(answer, probs, confident, bool(trained), familiar) for _ in questions]


def _evaluate(folder: Path, script: list[tuple[int, int, int]]) -> EvalReport:
    """Every frame labelled YES; frame i answers as `script[i]` says."""
    labels = []
    for seq, pixel in enumerate(script):
        name = f"{seq:04d}.png"
        cv2.imwrite(str(folder / name), np.full((4, 4, 3), pixel, np.uint8))
        q = {"template": "t", "params": {}, "answer": "YES"}
        labels.append(json.dumps({"seq": seq, "file": name, "questions": [q]}))
    (folder / "labels.jsonl").write_text("\n".join(labels) + "\n")
    return evaluate(_Scripted(), folder, lambda _: ["YES", "NO"])


def test_familiar_and_unfamiliar_answers_are_counted_apart(tmp_path: Path) -> None:
    # familiar: 5 right + 1 wrong (confident); unfamiliar: 1 right + 3 wrong (never confident)
    script = [(1, 1, 1)] * 5 + [(0, 1, 1)] + [(1, 0, 1)] + [(0, 0, 1)] * 3
    report = _evaluate(tmp_path, script)
    d = report.as_dict()["templates"]["t"]
    fam = d["familiarity"]
    assert (fam["familiar"], fam["unfamiliar"], fam["familiar_share"]) == (6, 4, 0.6)
    assert abs(fam["accuracy_familiar"] - 5 / 6) < 1e-9 and fam["accuracy_unfamiliar"] == 0.25
    assert abs(fam["confident_wrong_familiar_share"] - 1 / 6) < 1e-9
    assert fam["confident_wrong_unfamiliar"] == 0
    assert d["confident_wrong_share"] == 0.1  # 1 of 10
    # at the bar 0.9 only the 6 familiar answers may be confident; 1 of them is wrong
    bar = next(row for row in d["coverage"] if row["bar"] == 0.9)
    assert bar["coverage"] == 0.6 and abs(bar["confident_wrong_share"] - 0.1) < 1e-9
    text = render_text(report)
    assert "acc. unfamiliar" in text and "6/10" in text and "25.0%" in text


def test_an_untrained_template_covers_nothing_at_any_bar(tmp_path: Path) -> None:
    report = _evaluate(tmp_path, [(0, 2, 0)] * 4)  # wrong, sure of itself, untrained
    d = report.as_dict()["templates"]["t"]
    assert d["confident_wrong_share"] == 0.0 and d["familiarity"] is None
    assert d["trained"] is False
    for row in d["coverage"]:
        assert row["coverage"] == 0.0 and row["confident_wrong_share"] == 0.0, row
    assert "familiar" not in render_text(report).split("trained NO")[1]
