"""What a fine-tune says about itself: per taught template, held-out accuracy before and after
with a 95% interval, whether the template was marked learned and why.

The interval is Wilson's score interval: with the few dozen questions a rig's held-out split
holds, one miss moves the accuracy by points, and the interval says how far the figure can be
trusted (40 of 40 right is 91.2-100%, not "100%").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pnp_vision.teach.trainer import LEARNED_BAR


def wilson(right: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval of a share `right` / `total`."""
    if total <= 0:
        return 0.0, 1.0
    p = right / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    scale = 1 + z * z / total
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


@dataclass
class Taught:
    """One taught template: its labels, and its held-out questions right before and after."""

    template: str
    labels: dict[str, int]
    heldout: int
    right_before: int
    right_after: int
    learned: bool = False
    why: str = ""

    @property
    def before(self) -> float:
        return self.right_before / max(1, self.heldout)

    @property
    def after(self) -> float:
        return self.right_after / max(1, self.heldout)

    def judge(self) -> None:
        """Learned when the held-out accuracy after clears the bar; `why` says so in words."""
        self.learned = self.after >= LEARNED_BAR
        verb = ">=" if self.learned else "<"
        self.why = (
            f"{_pct(self.after)} of {self.heldout} held-out questions {verb} {_pct(LEARNED_BAR)}"
        )
        if not self.learned:
            self.why += ": answers carry trained false and are never confident"


@dataclass
class FineTuneReport:
    out: Path
    base: Path
    taught: dict[str, Taught]
    steps: int  # steps run
    best_step: int  # the step whose weights were kept (held-out loss lowest)
    losses: list[float]
    train_examples: int
    heldout_examples: int
    learned_templates: list[str]  # of the new folder, taught and inherited
    seconds: float
    cpu_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(self.taught)

    @property
    def accuracy_before(self) -> dict[str, float]:
        return {name: t.before for name, t in self.taught.items()}

    @property
    def accuracy_after(self) -> dict[str, float]:
        return {name: t.after for name, t in self.taught.items()}

    def summary(self) -> str:
        """The table `pnp-vision train` ends with, then its warnings."""
        rows = [
            f"{'template':<22}{'held out':>9}  {'before (95% interval)':<24}"
            f"{'after (95% interval)':<24}learned"
        ]
        for t in self.taught.values():
            before = f"{_pct(t.before)} ({_interval(t.right_before, t.heldout)})"
            after = f"{_pct(t.after)} ({_interval(t.right_after, t.heldout)})"
            mark = "yes" if t.learned else "NO"
            rows.append(f"{t.template:<22}{t.heldout:>9}  {before:<24}{after:<24}{mark}: {t.why}")
        rows += [f"warning: {w}" for w in self.warnings]
        return "\n".join(rows)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _interval(right: int, total: int) -> str:
    lo, hi = wilson(right, total)
    return f"{100 * lo:.1f}-{100 * hi:.1f}%"


__all__ = ["FineTuneReport", "Taught", "wilson"]
