"""Familiarity: does this view look, to the model, like the views its template was trained on?

A model is right and honestly calibrated on the look it was trained on, and can be confidently
wrong off it (calibration fitted in-look cannot see dataset shift). So a trained folder also
records, per template, what its training views look like *to the model*, in two statistics of
its own features, each with a threshold fitted on held-out in-look views:

- the answer state: the language model's state where it answers, seen through the logits of a
  fixed set of probe tokens (a linear view of the hidden state that every scoring pass can
  return at the cost of a few more head rows), against one Gaussian per answer with a shared,
  shrunk covariance; the distance is to the nearest answer's mean (Mahalanobis, as Lee et al.,
  NeurIPS 2018). It sees what the decision is made from: a view read unlike any training view.
- the view tokens: the vision tower's output tokens against a memory bank of training-view
  tokens (a greedy k-centre coreset, as PatchCore does for industrial anomalies); the view's
  distance is its least familiar token's: one unlike patch anywhere is enough.

Each score is reported as a multiple of its threshold and the larger one counts, so 1.0 is the
bar for every template; above it the answer is `familiar: false` and never confident. With both
statistics each threshold is the (1 + q) / 2 quantile of held-out scores, so about 1 - q of
in-look views are flagged in all.

Files in the model folder: `familiarity.json` (the probe tokens; per template the thresholds
and how they were fitted) and `familiarity.npz` (per template its bank, answer means and
precision matrix). A folder without them answers `familiar: null`: it does not say.
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
ARRAYS_FILE = "familiarity.npz"
BANK_SIZE = 2048  # tokens kept per template: 0.5 MB in float16 at the small model's width
QUANTILE = 0.99  # of held-out in-look views, about this share stays familiar
PROBES = 256  # at most this many probe tokens (no more than the hidden width is of use)
SHRINK = 0.1  # covariance shrunk this far toward its mean variance (few views, many dims)
_CHUNK = 4096  # tokens scored against the bank at a time (bounds the distance matrix)


def tokens_of(features: Any) -> np.ndarray:
    """A view's vision features as a (tokens, width) float32 array (any leading axes)."""
    array = np.asarray(features, dtype=np.float32)
    return array.reshape(-1, array.shape[-1])


def probe_tokens(vocab_size: int, hidden_size: int) -> tuple[int, ...]:
    """Token ids spread over the vocabulary whose logits give the answer state: as many as
    the hidden width (the state has no more dimensions), at most `PROBES`."""
    n = min(PROBES, hidden_size, vocab_size)
    return tuple(int(v) for v in np.linspace(0, vocab_size - 1, n).round())


class Bank:
    """Training-view tokens held as an mlx array with their squared norms, so scoring a view
    is one small matmul in the engine's own runtime: numpy's BLAS, called between mlx passes,
    fought mlx for the cores and took 0.4-10 ms a view (bench/familiarity_cost.py)."""

    def __init__(self, tokens: np.ndarray) -> None:
        import mlx.core as mx

        self.tokens = np.asarray(tokens, np.float32)
        self._bank = mx.array(self.tokens)
        self._sq = (self._bank * self._bank).sum(axis=1)
        mx.eval(self._bank, self._sq)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def width(self) -> int:
        return int(self.tokens.shape[1])

    def nearest(self, tokens: Any) -> np.ndarray:
        """Each token's Euclidean distance to its nearest bank token (`tokens`: a numpy or
        mlx array of any leading axes; the engine passes the tower's output as it is)."""
        import mlx.core as mx

        if not isinstance(tokens, mx.array):
            tokens = mx.array(np.asarray(tokens, np.float32))
        tokens = tokens.reshape(-1, tokens.shape[-1]).astype(mx.float32)
        parts = []
        for start in range(0, tokens.shape[0], _CHUNK):
            t = tokens[start : start + _CHUNK]
            d2 = (t * t).sum(axis=1, keepdims=True) - 2.0 * (t @ self._bank.T) + self._sq[None]
            parts.append(mx.sqrt(mx.maximum(d2.min(axis=1), 0.0)))
        return np.array(mx.concatenate(parts), dtype=np.float32)


def nearest_distances(tokens: np.ndarray, bank: np.ndarray | Bank) -> np.ndarray:
    """Each token's Euclidean distance to its nearest bank token."""
    return (bank if isinstance(bank, Bank) else Bank(bank)).nearest(tokens)


def view_score(tokens: np.ndarray, bank: np.ndarray | Bank) -> float:
    """The view's distance from the bank: its least familiar token's."""
    return float(nearest_distances(tokens, bank).max())


def state_score(state: np.ndarray, means: np.ndarray, precision: np.ndarray) -> float:
    """Mahalanobis distance of an answer state to the nearest answer's mean."""
    d = state[None, :] - means
    return float(np.sqrt(max(0.0, np.einsum("ij,jk,ik->i", d, precision, d).min())))


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
class Statistic:
    """One template's statistics (either may be absent) and their thresholds."""

    bank: Bank | None = None  # (a numpy array of tokens is taken as one)
    bank_threshold: float = 0.0
    means: np.ndarray | None = None  # (answers, probes)
    precision: np.ndarray | None = None  # (probes, probes)
    state_threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.bank is not None and not isinstance(self.bank, Bank):
            object.__setattr__(self, "bank", Bank(self.bank))

    def relative(self, tokens: np.ndarray | None, state: np.ndarray | None) -> float | None:
        parts = []
        if self.bank is not None and tokens is not None:
            parts.append(view_score(tokens, self.bank) / self.bank_threshold)
        if self.means is not None and self.precision is not None and state is not None:
            parts.append(state_score(state, self.means, self.precision) / self.state_threshold)
        return max(parts) if parts else None


@dataclass(frozen=True)
class Familiarity:
    """The folder's statistics per template, and the probe tokens of the answer state."""

    templates: dict[str, Statistic] = field(default_factory=dict)
    probes: tuple[int, ...] = ()

    @classmethod
    def load(cls, model_dir: Path) -> Familiarity:
        """The folder's statistic; a folder without one gives the empty one (says nothing)."""
        meta_path = Path(model_dir) / FAMILIARITY_FILE
        if not meta_path.is_file():
            return cls()
        try:
            meta = json.loads(meta_path.read_text())
            probes = tuple(int(t) for t in meta.get("probes", ()))
            templates = {}
            with np.load(Path(model_dir) / ARRAYS_FILE, allow_pickle=False) as data:
                for name, record in meta["templates"].items():
                    templates[str(name)] = _statistic(name, record, data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{meta_path}: invalid familiarity statistic: {exc!r}") from exc
        for name, stat in templates.items():
            if stat.means is not None and stat.means.shape[1] != len(probes):
                raise ConfigError(f"{meta_path}: template {name!r}: answer state != probes")
        return cls(templates, probes)

    def knows(self, template: str) -> bool:
        return template in self.templates

    def wants_state(self, template: str) -> bool:
        stat = self.templates.get(template)
        return stat is not None and stat.means is not None

    def relative_score(
        self, template: str, tokens: np.ndarray | None = None, state: np.ndarray | None = None
    ) -> float | None:
        """The view's score as a multiple of the template's threshold (None: no statistic)."""
        stat = self.templates.get(template)
        if stat is None:
            return None
        if stat.bank is not None and tokens is not None and tokens.shape[-1] != stat.bank.width:
            raise ConfigError(
                f"familiarity bank of {template!r} is {stat.bank.width} wide, the model's"
                f" features {tokens.shape[-1]}: the statistic belongs to another model"
            )
        return stat.relative(tokens, state)


def _statistic(name: str, record: Mapping[str, Any], data: Any) -> Statistic:
    bank = Bank(data[f"{name}/bank"]) if f"{name}/bank" in data else None
    means = data[f"{name}/means"].astype(np.float32) if f"{name}/means" in data else None
    precision = data.get(f"{name}/precision")
    stat = Statistic(
        bank,
        float(record.get("bank_threshold", 0.0)),
        means,
        None if precision is None else precision.astype(np.float32),
        float(record.get("state_threshold", 0.0)),
    )
    for part, threshold in ((bank, stat.bank_threshold), (means, stat.state_threshold)):
        if part is not None and (not len(part) or not (math.isfinite(threshold) and threshold > 0)):
            raise ValueError(f"template {name!r}: empty statistic or bad threshold")
    if bank is None and means is None:
        raise ValueError(f"template {name!r}: no statistic")
    return stat


def fit_bank(
    train: Sequence[np.ndarray], heldout: Sequence[np.ndarray], quantile: float, size: int
) -> tuple[np.ndarray, float]:
    """A bank of the training views' tokens, and the `quantile` of held-out views' scores
    (views never in the bank: the bar is what new in-look views score)."""
    bank = coreset(np.concatenate([tokens_of(t) for t in train]), size)
    bank = Bank(bank.astype(np.float16))  # as stored: the bar fits the stored bank
    scores = np.array([view_score(tokens_of(v), bank) for v in heldout])
    return bank.tokens, _bar(scores, quantile)


def fit_state(
    train: Sequence[np.ndarray],
    train_answers: Sequence[str],
    heldout: Sequence[np.ndarray],
    quantile: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One mean per answer and a shared covariance (shrunk toward its mean variance) of the
    training views' answer states; the bar is the `quantile` of held-out views' distances."""
    x = np.stack(train).astype(np.float64)
    answers = sorted(set(train_answers))
    labels = np.array([answers.index(a) for a in train_answers])
    means = np.stack([x[labels == k].mean(axis=0) for k in range(len(answers))])
    residual = x - means[labels]
    cov = residual.T @ residual / max(1, len(x) - len(answers))
    spread = np.trace(cov) / len(cov) or 1.0  # one view per answer leaves no spread at all
    cov = (1 - SHRINK) * cov + SHRINK * spread * np.eye(len(cov))
    precision = np.linalg.inv(cov).astype(np.float32)
    means32 = means.astype(np.float32)
    scores = np.array([state_score(np.asarray(s, np.float32), means32, precision) for s in heldout])
    return means32, precision, _bar(scores, quantile)


def _bar(scores: np.ndarray, quantile: float) -> float:
    bar = float(np.quantile(scores, quantile))
    return bar if bar > 0 else float(scores.max()) or 1e-6


def write_familiarity(
    model_dir: Path,
    probes: Sequence[int],
    fitted: Mapping[str, tuple[Statistic, dict[str, Any]]],
    about: Mapping[str, Any] | None = None,
    keep: bool = True,
) -> Path:
    """Write the folder's statistic for the `fitted` templates (with their records); with
    `keep`, templates it already had and that were not refitted stay as they were (their probes
    must be the same). Checked by reading it back."""
    model_dir = Path(model_dir)
    old = Familiarity.load(model_dir) if keep else Familiarity()
    old_meta: dict[str, Any] = {}
    if keep and (model_dir / FAMILIARITY_FILE).is_file():
        old_meta = json.loads((model_dir / FAMILIARITY_FILE).read_text()).get("templates", {})
    if old.templates and old.probes and tuple(probes) != old.probes:
        raise ConfigError(f"{model_dir}: refitting with other probe tokens than the folder's")
    stats = dict(old.templates)
    records = {n: old_meta.get(n, {}) for n in stats}
    for name, (stat, record) in fitted.items():
        stats[name] = stat
        records[name] = {
            **record,
            "bank_threshold": round(stat.bank_threshold, 6),
            "state_threshold": round(stat.state_threshold, 6),
        }
    arrays: dict[str, np.ndarray] = {}
    for name, stat in stats.items():
        if stat.bank is not None:
            arrays[f"{name}/bank"] = stat.bank.tokens.astype(np.float16)
        if stat.means is not None and stat.precision is not None:
            arrays[f"{name}/means"] = stat.means
            arrays[f"{name}/precision"] = stat.precision
    meta = {
        "method": "answer state (probe-token logits, Mahalanobis to the nearest answer) and"
        " view tokens (nearest-neighbour distance to a k-centre coreset); the larger relative"
        " score counts",
        **(about or {}),
        "probes": list(probes),
        "templates": dict(sorted(records.items())),
    }
    np.savez(model_dir / ARRAYS_FILE, **arrays)
    path = model_dir / FAMILIARITY_FILE
    path.write_text(json.dumps(meta, indent=2) + "\n")
    Familiarity.load(model_dir)
    return path
