"""Which familiarity statistic tells the views a model is wrong on from the ones it knows?

    python bench/familiarity_study.py --model models/pnp-inspector \
        --in-look eval/base eval/harsh ... --off-look look2/base look2/packages ... \
        --out bench/results/familiarity_study.json

Fits, per learned template, candidate statistics on the model's own vision features of training
views (the recipe's frames, `devtools.train_data.training_frame`) with thresholds at a quantile
of held-out in-look views, then answers every labelled question of each recording through the
Inspector and reports, per recording and template: accuracy, the confident share and the
confident-and-wrong share without familiarity, and with each candidate (an unfamiliar answer is
never confident), plus the share flagged. In-look recordings say what familiarity costs the
rig's automation (goal: >= 95% still confident), off-look ones what it saves (goal: <= 1%
confident and wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _views(inspector: Any, seed: int, frames: int, templates: list[str]) -> dict[str, list]:
    from pnp_vision.devtools.train import TrainConfig
    from pnp_vision.devtools.train_data import training_frame

    cfg = TrainConfig()
    recipe, pattern = cfg.recipe(), list(cfg.mix)
    out: dict[str, list] = defaultdict(list)
    for index in range(frames):
        image, label = training_frame(index, seed, pattern, recipe)
        for name in sorted({q["template"] for q in label["questions"]} & set(templates)):
            out[name].append(inspector.view_tokens(image, name))
    return out


def _pooled(tokens: np.ndarray) -> np.ndarray:
    return np.concatenate([tokens.mean(0), tokens.std(0)])


class Mahalanobis:
    """Pooled features (token mean and spread) against one Gaussian, covariance shrunk."""

    def __init__(self, train: list[np.ndarray], shrink: float = 0.1) -> None:
        x = np.stack([_pooled(t) for t in train])
        self.mean = x.mean(0)
        cov = np.cov(x - self.mean, rowvar=False)
        cov = (1 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / len(cov)
        self.precision = np.linalg.inv(cov)

    def __call__(self, tokens: np.ndarray) -> float:
        d = _pooled(tokens) - self.mean
        return float(np.sqrt(d @ self.precision @ d))


def _candidates(train: list[np.ndarray], heldout: list[np.ndarray]) -> dict[str, Any]:
    """name -> (score function, threshold) for each candidate statistic."""
    from pnp_vision.inspect.familiarity import coreset, nearest_distances, tokens_of

    out: dict[str, Any] = {}
    all_tokens = np.concatenate([tokens_of(t) for t in train])
    for size in (512, 2048):
        bank = coreset(all_tokens, size).astype(np.float16).astype(np.float32)

        def knn_max(t: np.ndarray, bank: np.ndarray = bank) -> float:
            return float(nearest_distances(t, bank).max())

        def knn_top3(t: np.ndarray, bank: np.ndarray = bank) -> float:
            return float(np.sort(nearest_distances(t, bank))[-3:].mean())

        out[f"knn{size}-max"] = knn_max
        out[f"knn{size}-top3"] = knn_top3
    out["mahalanobis"] = Mahalanobis(train)
    fitted = {}
    for name, fn in out.items():
        scores = np.array([fn(v) for v in heldout])
        for q in (0.99, 0.995):
            fitted[f"{name}@{q}"] = (fn, float(np.quantile(scores, q)))
    return fitted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--in-look", type=Path, nargs="*", default=[])
    p.add_argument("--off-look", type=Path, nargs="*", default=[])
    p.add_argument("--train-frames", type=int, default=1200)
    p.add_argument("--heldout-frames", type=int, default=600)
    p.add_argument("--out", type=Path, default=Path("bench/results/familiarity_study.json"))
    args = p.parse_args(argv)

    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.evaluation.labels import load_labels
    from pnp_vision.inspect import Inspector, Question, TemplateSet
    from pnp_vision.inspect.calibration import Calibration

    inspector = Inspector(args.model, TemplateSet.load(PROJECT_ROOT / "prompts"))
    learned = sorted(inspector.calibration.learned or [])
    t0 = time.monotonic()
    train = _views(inspector, 77_000_001, args.train_frames, learned)
    heldout = _views(inspector, 77_000_002, args.heldout_frames, learned)
    fits = {name: _candidates(train[name], heldout[name]) for name in learned}
    print(f"fitted in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    bar = inspector.min_confidence
    assert isinstance(inspector.calibration, Calibration)

    rows: list[dict[str, Any]] = []
    for kind, folders in (("in", args.in_look), ("off", args.off_look)):
        for folder in folders:
            stats: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
            import cv2

            for frame in load_labels(folder):
                image = cv2.imread(str(folder / frame.file), cv2.IMREAD_COLOR)
                qs = [q for q in frame.questions if q.template in learned]
                if image is None or not qs:
                    continue
                results = inspector.inspect(
                    image, [Question(template=q.template, params=q.params) for q in qs]
                )
                tokens = {q.template: inspector.view_tokens(image, q.template) for q in qs}
                for q, r in zip(qs, results, strict=True):
                    s = stats[q.template]
                    s["right"].append(r.answer == q.answer)
                    s["confident"].append(r.confident)
                    for cand, (fn, threshold) in fits[q.template].items():
                        s[cand].append(fn(tokens[q.template]) <= threshold)
            for template, s in sorted(stats.items()):
                right, conf = np.array(s["right"]), np.array(s["confident"])
                row = {
                    "look": kind,
                    "recording": str(folder),
                    "template": template,
                    "n": len(right),
                    "accuracy": float(right.mean()),
                    "confident": float(conf.mean()),
                    "confident_wrong": float((conf & ~right).mean()),
                    "candidates": {},
                }
                for cand in fits[template]:
                    fam = np.array(s[cand])
                    row["candidates"][cand] = {
                        "familiar": float(fam.mean()),
                        "confident": float((conf & fam).mean()),
                        "confident_wrong": float((conf & fam & ~right).mean()),
                    }
                rows.append(row)
    cands = list(next(iter(fits.values())))
    print(f"bar {bar}; each cell: confident share / confident-and-wrong share (%)")
    print(
        f"{'look':<4} {'recording':<22} {'template':<20} {'n':>4} {'acc':>5} {'none':>11}", end=""
    )
    print("".join(f" {c[:16]:>16}" for c in cands))
    for r in rows:
        print(
            f"{r['look']:<4} {Path(r['recording']).name[:22]:<22} {r['template'][:20]:<20}"
            f" {r['n']:>4} {100 * r['accuracy']:>5.1f}"
            f" {100 * r['confident']:>5.1f}/{100 * r['confident_wrong']:<4.1f}",
            end="",
        )
        for c in cands:
            v = r["candidates"][c]
            print(f" {100 * v['confident']:>9.1f}/{100 * v['confident_wrong']:<5.1f}", end="")
        print()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bar": bar, "model": str(args.model), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
