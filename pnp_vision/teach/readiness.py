"""Can these labels teach a template? Counted and refused before any training starts.

A template taught from one answer only learns to say it always (issue 32: part_on_nozzle taught
from NO-only labels reached "100% held out" and then answered NO to every held part,
confidently); with a handful of one answer, the held-out split holds a few of it and says
nothing. So every answer of a taught template needs `MIN_PER_ANSWER` labels, and the refusal
says how many more to label, or how to leave the template out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pnp_vision.errors import ConfigError

MIN_PER_ANSWER = 20
SMALL_HELDOUT = 50  # held-out questions of a template below which `train` warns


def label_counts(examples: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Per template, labelled questions per answer."""
    counts: dict[str, Counter[str]] = {}
    for e in examples:
        counts.setdefault(e.template, Counter())[e.answer] += 1
    return {t: dict(sorted(c.items())) for t, c in sorted(counts.items())}


def check_teachable(examples: Sequence[Any], templates: Any) -> dict[str, dict[str, int]]:
    """`label_counts`, once every template can be taught; else a one-line ConfigError naming
    the first that cannot, what its labels hold and what to do."""
    counts = label_counts(examples)
    for name, have in counts.items():
        template = templates.get(name)
        unknown = sorted(set(have) - set(template.answers))
        if unknown:
            raise ConfigError(
                f"{name}: label {unknown[0]!r} is not one of its answers"
                f" ({', '.join(template.answers)})"
            )
        held = ", ".join(f"{n} {a}" for a, n in have.items())
        others = [t for t in counts if t != name]
        leave = f", or leave it out (--template {' --template '.join(others)})" if others else ""
        if len(have) == 1:
            (only,) = have
            missing = [a for a in template.answers if a != only]
            raise ConfigError(
                f"cannot teach {name}: its labels hold one answer only ({held}); a check taught"
                f" so learns to always say {only}: label at least {MIN_PER_ANSWER}"
                f" {' and '.join(missing)} frames{leave}"
            )
        short = {a: MIN_PER_ANSWER - have.get(a, 0) for a in template.answers}
        short = {a: n for a, n in short.items() if n > 0}
        if short:
            more = " and ".join(f"{n} more {a}" for a, n in short.items())
            raise ConfigError(
                f"cannot teach {name}: {held} labelled, at least {MIN_PER_ANSWER} of each answer"
                f" needed: label {more}{leave}"
            )
    return counts


__all__ = ["MIN_PER_ANSWER", "SMALL_HELDOUT", "check_teachable", "label_counts"]
