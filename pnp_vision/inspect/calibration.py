"""Calibrated, honest answers: what a model folder says about its own templates.

A small model trained on synthetic frames is right only on the templates it learned, and its raw
softmax is over-sure. A folder may hold `calibration.json` (written by the trainer):

    {"learned_templates": ["nozzle_alignment", ...],
     "templates": {"nozzle_alignment": {"temperature": 1.7, ...}, ...}, ...}

With it, each answer's probabilities are the raw ones at that template's temperature
(softmax(log p / T), T fitted on held-out frames), `confident` means the calibrated probability
clears the bar, and a template the folder did not learn answers with `trained: false` and is
never confident (or is refused, with `refuse_untrained`). Without it (a general-purpose model
folder) nothing changes and `trained` is None: the folder does not say.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pnp_vision.errors import ConfigError, UnknownTemplate

CALIBRATION_FILE = "calibration.json"
_TINY = 1e-300  # log(0) guard: a probability that underflowed is "as small as can be"


@dataclass(frozen=True)
class Calibration:
    """The learned templates (None: not recorded) and per-template temperatures."""

    learned: frozenset[str] | None = None
    temperatures: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: Path) -> Calibration:
        """The folder's calibration; an uncalibrated folder gives the neutral one."""
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            learned = frozenset(str(n) for n in data["learned_templates"])
            temps = {str(k): float(v["temperature"]) for k, v in data.get("templates", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: invalid calibration file: {exc!r}") from exc
        bad = {k: t for k, t in temps.items() if not (math.isfinite(t) and t > 0)}
        if bad:
            raise ConfigError(f"{path}: temperatures must be finite and > 0, got {bad}")
        return cls(learned, temps)

    def trained(self, template: str) -> bool | None:
        """Whether the folder learned `template` (None: the folder does not say)."""
        return None if self.learned is None else template in self.learned

    def require(self, template: str, model_dir: Path | str) -> None:
        """`refuse_untrained`: an UnknownTemplate for a template the folder did not learn."""
        if self.trained(template) is False:
            raise UnknownTemplate(
                f"template {template!r} was not learned by the model {model_dir}"
                f" (it learned {', '.join(sorted(self.learned or ())) or 'none'});"
                " refused because refuse_untrained is set"
            )

    def apply(self, template: str, probabilities: dict[str, float]) -> dict[str, float]:
        """The calibrated probabilities (unchanged without a temperature for `template`)."""
        t = self.temperatures.get(template)
        if t is None or t == 1.0:
            return probabilities
        scaled = tempered(list(probabilities.values()), t)
        return dict(zip(probabilities, scaled, strict=True))

    def judge(
        self, template: str, probabilities: dict[str, float], min_confidence: float
    ) -> tuple[dict[str, float], str, bool, bool | None]:
        """(calibrated probabilities, answer, confident, trained) for one raw answer."""
        probs = self.apply(template, probabilities)
        answer = max(probs, key=probs.__getitem__)
        trained = self.trained(template)
        confident = trained is not False and probs[answer] >= min_confidence
        return probs, answer, confident, trained


def tempered(probabilities: Sequence[float], temperature: float) -> list[float]:
    """softmax(log p / T): the same ranking, sharper (T < 1) or softer (T > 1)."""
    logs = [math.log(max(p, _TINY)) / temperature for p in probabilities]
    top = max(logs)
    exps = [math.exp(v - top) for v in logs]
    total = sum(exps)
    return [e / total for e in exps]


def nll(
    rows: Sequence[Sequence[float]],
    targets: Sequence[int],
    temperature: float,
    smoothing: float = 0.0,
) -> float:
    """Mean negative log-likelihood of the labelled answers at `temperature`; with
    `smoothing` e, the cross-entropy to targets that put 1 - e on the label, e on the rest."""
    total = 0.0
    for row, target in zip(rows, targets, strict=True):
        logs = [math.log(max(p, _TINY)) for p in tempered(row, temperature)]
        rest = (sum(logs) - logs[target]) / max(1, len(logs) - 1)
        total -= (1 - smoothing) * logs[target] + smoothing * rest
    return total / max(1, len(rows))


def accuracy(rows: Sequence[Sequence[float]], targets: Sequence[int]) -> float:
    """Share of rows whose most probable answer is the labelled one (`targets`: its index)."""
    right = sum(
        max(range(len(r)), key=r.__getitem__) == t for r, t in zip(rows, targets, strict=True)
    )
    return right / max(1, len(rows))


def fit_temperature(
    rows: Sequence[Sequence[float]], targets: Sequence[int], lo: float = 0.05, hi: float = 50.0
) -> float:
    """The temperature in [lo, hi] that minimises the held-out NLL (a log-spaced scan, then a
    golden-section refinement: NLL is unimodal in log T for one template's answers).

    The labels are smoothed by Laplace's rule, 1 / (n + 2) of each on the other answers: n
    right answers in a row say the next is wrong with odds of about 1 in n + 2, not 0. Without
    it a held-out set with no misses drives T to `lo`, and every answer, the wrong ones on
    frames unlike the held-out set included, to probability 1.0."""
    if not rows:
        return 1.0
    eps = 1.0 / (len(rows) + 2)
    steps = 120
    grid = [lo * (hi / lo) ** (i / steps) for i in range(steps + 1)]
    best = min(range(len(grid)), key=lambda i: nll(rows, targets, grid[i], eps))
    a = math.log(grid[max(0, best - 1)])
    b = math.log(grid[min(steps, best + 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(rows, targets, math.exp(c), eps) <= nll(rows, targets, math.exp(d), eps):
            b = d
        else:
            a = c
    return math.exp((a + b) / 2)


def write_calibration(model_dir: Path, record: dict[str, Any]) -> Path:
    """Write `record` (learned_templates, templates: {name: {temperature, ...}}) as the
    folder's calibration file, checked by reading it back."""
    path = Path(model_dir) / CALIBRATION_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    Calibration.load(model_dir)
    return path
