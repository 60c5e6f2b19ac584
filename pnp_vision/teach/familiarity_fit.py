"""Fit a model folder's familiarity statistic from labelled views of its templates (any source).

The from-scratch trainer fits it on generated frames, `pnp-vision train` on the rig's own
labelled frames: from training views the bank of view tokens and the answer means and
covariance, from held-out views the bank never saw the thresholds (`inspect.familiarity`).
Views go through the folder's own Inspector (each template with its own adapter where the
folder has one), so the statistic describes exactly what the worker will score.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pnp_vision.inspect.familiarity import (
    BANK_SIZE,
    QUANTILE,
    Statistic,
    fit_bank,
    fit_state,
    write_familiarity,
)
from pnp_vision.inspect.templates import Question
from pnp_vision.logs import kv

log = logging.getLogger(__name__)

View = tuple[Question, Any, str]  # the question, the image (BGR array or bytes), its answer


@dataclass
class Features:
    """One template's views as familiarity sees them."""

    tokens: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)


def collect(inspector: Any, views: Iterable[View]) -> dict[str, Features]:
    """Per template, each view's vision tokens, answer state and labelled answer."""
    out: dict[str, Features] = defaultdict(Features)
    for question, image, answer in views:
        ((tokens, state),) = inspector.answer_features(image, [question])
        got = out[question.template]
        got.tokens.append(tokens)
        got.states.append(state)
        got.answers.append(answer)
    return dict(out)


def fit_familiarity(
    model_dir: Path,
    templates: Any,
    train: Iterable[View],
    heldout: Iterable[View],
    *,
    about: Mapping[str, Any] | None = None,
    keep: bool = True,
    bank_size: int = BANK_SIZE,
    quantile: float = QUANTILE,
) -> dict[str, dict[str, Any]]:
    """Fit and write the statistics of every template with both training and held-out views
    (each threshold at (1 + quantile) / 2, so about `quantile` of in-look views stay familiar);
    with `keep`, the folder's other templates keep theirs. Returns the per-template records."""
    from pnp_vision.inspect.adapters import open_inspector

    started = time.monotonic()
    inspector = open_inspector(model_dir, templates, calibrated=False)
    seen, held = collect(inspector, train), collect(inspector, heldout)
    each = (1.0 + quantile) / 2
    fitted: dict[str, tuple[Statistic, dict[str, Any]]] = {}
    for name in sorted(set(seen) & set(held)):
        bank, bank_bar = fit_bank(seen[name].tokens, held[name].tokens, each, bank_size)
        means, precision, state_bar = fit_state(
            seen[name].states, seen[name].answers, held[name].states, each
        )
        record = {
            "train_views": len(seen[name].answers),
            "heldout_views": len(held[name].answers),
            "quantile": quantile,
            "bank_tokens": len(bank),
            "answers": sorted(set(seen[name].answers)),
        }
        fitted[name] = (Statistic(bank, bank_bar, means, precision, state_bar), record)
    write_familiarity(model_dir, inspector.probes, fitted, about, keep=keep)
    records = {name: record for name, (_, record) in fitted.items()}
    log.info(
        "familiarity fitted %s",
        kv(folder=model_dir, templates=",".join(records), s=time.monotonic() - started),
    )
    return records
