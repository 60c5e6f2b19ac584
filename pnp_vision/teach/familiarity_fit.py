"""Fit a model folder's familiarity statistic from views of its templates (any source).

The from-scratch trainer fits it on generated frames, `pnp-vision train` on the rig's own
labelled frames: the bank from training views, the threshold from held-out views the bank
never saw (`inspect.familiarity`). Views go through the folder's own Inspector, so the
statistic describes exactly the features the worker will score.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pnp_vision.inspect.familiarity import BANK_SIZE, QUANTILE, fit_template, write_familiarity
from pnp_vision.logs import kv

log = logging.getLogger(__name__)

View = tuple[str, Any]  # (template, image: BGR array or encoded bytes)


def collect_tokens(inspector: Any, views: Iterable[View]) -> dict[str, list[np.ndarray]]:
    """Per template, the vision tokens of each view."""
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for template, image in views:
        out[template].append(inspector.view_tokens(image, template))
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
    """Fit and write the statistic of every template with both training and held-out views;
    with `keep`, the folder's other templates keep theirs. Returns the per-template records."""
    from pnp_vision.inspect.adapters import open_inspector

    started = time.monotonic()
    # each template's views through its own adapter where the folder has one (as it answers)
    inspector = open_inspector(model_dir, templates, calibrated=False)
    train_tokens = collect_tokens(inspector, train)
    heldout_tokens = collect_tokens(inspector, heldout)
    fitted = {
        name: fit_template(
            train_tokens[name], heldout_tokens[name], bank_size=bank_size, quantile=quantile
        )
        for name in sorted(set(train_tokens) & set(heldout_tokens))
    }
    write_familiarity(model_dir, fitted, about, keep=keep)
    records = {name: record for name, (_, _, record) in fitted.items()}
    log.info(
        "familiarity fitted %s",
        kv(folder=model_dir, templates=",".join(records), s=time.monotonic() - started),
    )
    return records
