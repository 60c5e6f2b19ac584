"""Familiarity: does this view look, to the model, like the views its template was trained on?

A model is right and honestly calibrated on the look it was trained on, and can be confidently
wrong off it (calibration fitted in-look cannot see dataset shift). So a trained folder also
records, per template, what its training views look like *to the model*: a memory bank of the
vision tower's output tokens for those views (a greedy k-centre coreset, as PatchCore does for
industrial anomalies), and a threshold fitted on held-out in-look views. A view's score is the
largest distance from any of its tokens to the nearest bank token: one unlike patch anywhere
(another package, a reticle never seen) is enough. Scores are reported as a multiple of the
threshold, so 1.0 is the bar for every template; above it the answer is `familiar: false` and
never confident.

Files in the model folder: `familiarity.json` (per template: threshold, bank size, how it was
fitted) and `familiarity.npz` (one float16 bank per template). A folder without them answers
`familiar: null`: it does not say.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pnp_vision.errors import ConfigError

FAMILIARITY_FILE = "familiarity.json"
BANKS_FILE = "familiarity.npz"
BANK_SIZE = 2048  # tokens kept per template: 0.5 MB in float16 at the small model's width
QUANTILE = 0.99  # of held-out in-look scores: about 1 in-look view in 100 is flagged
_CHUNK = 4096  # tokens scored against the bank at a time (bounds the distance matrix)


def tokens_of(features: Any) -> np.ndarray:
    """A view's vision features as a (tokens, width) float32 array (any leading axes)."""
    array = np.asarray(features, dtype=np.float32)
    return array.reshape(-1, array.shape[-1])


def nearest_distances(tokens: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Each token's Euclidean distance to its nearest bank token."""
    bank_sq = np.einsum("ij,ij->i", bank, bank)
    out = np.empty(len(tokens), np.float32)
    for start in range(0, len(tokens), _CHUNK):
        part = tokens[start : start + _CHUNK]
        d2 = np.einsum("ij,ij->i", part, part)[:, None] - 2.0 * part @ bank.T + bank_sq[None]
        out[start : start + _CHUNK] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def view_score(tokens: np.ndarray, bank: np.ndarray) -> float:
    """The view's distance from the bank: its least familiar token's."""
    return float(nearest_distances(tokens, bank).max())


def coreset(tokens: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """`size` tokens that cover `tokens` (greedy k-centre: each pick is the token farthest from
    those picked so far), so rare looks keep a representative that random sampling would drop."""
    if len(tokens) <= size:
        return tokens.copy()
    rng = np.random.default_rng(seed)
    picked = [int(rng.integers(len(tokens)))]
    nearest = np.full(len(tokens), np.inf, np.float32)
    sq = np.einsum("ij,ij->i", tokens, tokens)
    for _ in range(size - 1):
        last = tokens[picked[-1]]
        d2 = sq - 2.0 * tokens @ last + float(last @ last)
        np.minimum(nearest, d2, out=nearest)
        picked.append(int(nearest.argmax()))
    return tokens[picked]


@dataclass(frozen=True)
class Familiarity:
    """Per template: the bank of training-view tokens and the threshold on a view's score."""

    banks: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: Path) -> Familiarity:
        """The folder's statistic; a folder without one gives the empty one (says nothing)."""
        meta_path = Path(model_dir) / FAMILIARITY_FILE
        if not meta_path.is_file():
            return cls()
        try:
            meta = json.loads(meta_path.read_text())
            thresholds = {str(k): float(v["threshold"]) for k, v in meta["templates"].items()}
            with np.load(Path(model_dir) / BANKS_FILE, allow_pickle=False) as data:
                banks = {name: data[name].astype(np.float32) for name in thresholds}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{meta_path}: invalid familiarity statistic: {exc!r}") from exc
        for name, bank in banks.items():
            t = thresholds[name]
            if bank.ndim != 2 or not len(bank) or not (math.isfinite(t) and t > 0):
                raise ConfigError(f"{meta_path}: template {name!r}: empty bank or bad threshold")
        return cls(banks, thresholds)

    def knows(self, template: str) -> bool:
        return template in self.banks

    def relative_score(self, template: str, tokens: np.ndarray) -> float | None:
        """The view's score as a multiple of the template's threshold (None: no statistic)."""
        bank = self.banks.get(template)
        if bank is None:
            return None
        if tokens.shape[-1] != bank.shape[1]:
            raise ConfigError(
                f"familiarity bank of {template!r} is {bank.shape[1]} wide, the model's"
                f" features {tokens.shape[-1]}: the statistic belongs to another model"
            )
        return view_score(tokens, bank) / self.thresholds[template]


def fit_template(
    train: Sequence[np.ndarray],
    heldout: Sequence[np.ndarray],
    *,
    bank_size: int = BANK_SIZE,
    quantile: float = QUANTILE,
    seed: int = 0,
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """A template's bank (from the training views' tokens) and threshold (the `quantile` of the
    held-out views' scores): views never in the bank, so the bar is what new in-look views
    score. Returns (bank, threshold, record for familiarity.json)."""
    if not train or not heldout:
        raise ValueError("familiarity needs training views and held-out views")
    bank = coreset(np.concatenate([tokens_of(t) for t in train]), bank_size, seed)
    bank = bank.astype(np.float16).astype(np.float32)  # as stored: the bar fits the stored bank
    scores = np.array([view_score(tokens_of(v), bank) for v in heldout])
    threshold = float(np.quantile(scores, quantile))
    if not threshold > 0:
        threshold = float(scores.max()) or 1e-6
    record = {
        "threshold": round(threshold, 6),
        "bank_tokens": len(bank),
        "train_views": len(train),
        "heldout_views": len(heldout),
        "quantile": quantile,
        "heldout_score_median": round(float(np.median(scores)), 6),
    }
    return bank, threshold, record


def write_familiarity(
    model_dir: Path,
    fitted: Mapping[str, tuple[np.ndarray, float, dict[str, Any]]],
    about: Mapping[str, Any] | None = None,
    keep: bool = True,
) -> Path:
    """Write the folder's statistic for the `fitted` templates; with `keep`, templates it
    already had and that were not refitted stay as they were. Checked by reading it back."""
    model_dir = Path(model_dir)
    old = Familiarity.load(model_dir) if keep else Familiarity()
    old_meta: dict[str, Any] = {}
    if keep and (model_dir / FAMILIARITY_FILE).is_file():
        old_meta = json.loads((model_dir / FAMILIARITY_FILE).read_text()).get("templates", {})
    banks = {n: b.astype(np.float16) for n, b in old.banks.items()}
    templates = {n: old_meta.get(n, {"threshold": t}) for n, t in old.thresholds.items()}
    for name, (bank, _threshold, record) in fitted.items():
        banks[name] = bank.astype(np.float16)
        templates[name] = record
    meta = {"method": "max token distance to a k-centre coreset", **(about or {})}
    meta["templates"] = dict(sorted(templates.items()))
    np.savez(model_dir / BANKS_FILE, **banks)
    path = model_dir / FAMILIARITY_FILE
    path.write_text(json.dumps(meta, indent=2) + "\n")
    Familiarity.load(model_dir)
    return path
