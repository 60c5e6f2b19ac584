"""Which familiarity statistic tells the views a model is wrong on from the ones it knows?

    python bench/familiarity_study.py --model models/pnp-inspector \
        --in-look eval/base eval/harsh ... --off-look look2/base look2/packages ... \
        --out bench/results/familiarity_study.json

Fits, per learned template, candidate statistics on the model's own vision features of training
views (the recipe's frames, `devtools.train_data.training_frame`) with thresholds at a quantile
of held-out in-look views, then answers every labelled question of each recording through the
Inspector and reports, per recording and template: accuracy, the confident share and the
confident-and-wrong share with the folder's own statistic, and with each candidate on top of
it (an unfamiliar answer is never confident). In-look recordings say what familiarity costs
the rig's automation (goal: >= 95% still confident), off-look ones what it saves (goal: <= 1%
confident and wrong).

Candidates: the tower's output tokens against a k-centre bank (512 or 2,048 tokens; the view's
worst token, or its worst 3), their pooled mean and spread against one Gaussian, and the view's
*style*: the per-channel mean and spread of the patch embedding (the tower's first, linear
layer) against one Gaussian, the feature statistics that tell one renderer or camera from
another (as Gram-matrix detectors do).
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
    from pnp_vision.inspect import Question

    cfg = TrainConfig()
    recipe, pattern = cfg.recipe(), list(cfg.mix)
    out: dict[str, list] = defaultdict(list)
    for index in range(frames):
        image, label = training_frame(index, seed, pattern, recipe)
        asked = {q["template"]: q for q in label["questions"] if q["template"] in templates}
        for name, q in sorted(asked.items()):
            question = Question(template=name, params=q.get("params", {}))
            out[name].append(_features(inspector, image, question))
    return out


def _features(inspector: Any, image: Any, question: Any) -> dict[str, np.ndarray]:
    """What the candidates look at: the view's tower tokens and its style (the per-channel
    mean and spread of the patch embedding of the view the engine builds for `question`)."""
    from pnp_vision.inspect import imageprep
    from pnp_vision.inspect.models.qwen2_5_vl.vision import _patch_embed

    ((tokens, _),) = inspector.answer_features(image, [question])
    t = inspector.templates.get(question.template)
    inputs = inspector._view_inputs(  # the engine's own view prep, not a copy of it
        imageprep.decode(image), None, t.roi, t.max_pixels, t.view, t.mirroring(question.params)
    )
    pixels = inputs.arrays["pixel_values"]
    embed = np.array(_patch_embed(inspector.model.vision_tower.patch_embed, pixels), np.float32)
    return {"tokens": tokens, "style": np.concatenate([embed.mean(0), embed.std(0)])}


def _pooled(tokens: np.ndarray) -> np.ndarray:
    return np.concatenate([tokens.mean(0), tokens.std(0)])


class Mahalanobis:
    """A vector per view against one Gaussian, covariance shrunk."""

    def __init__(self, train: list[np.ndarray], shrink: float = 0.1) -> None:
        x = np.stack(train).astype(np.float64)
        self.mean = x.mean(0)
        cov = np.cov(x - self.mean, rowvar=False)
        cov = (1 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / len(cov)
        self.precision = np.linalg.inv(cov)

    def __call__(self, vector: np.ndarray) -> float:
        d = vector - self.mean
        return float(np.sqrt(max(0.0, d @ self.precision @ d)))


def _candidates(train: list[dict], heldout: list[dict]) -> dict[str, Any]:
    """name -> (score function of a view's `_features`, threshold) for each candidate."""
    from pnp_vision.inspect.familiarity import Bank, coreset, tokens_of

    out: dict[str, Any] = {}
    all_tokens = np.concatenate([tokens_of(v["tokens"]) for v in train])
    for size in (512, 2048):
        bank = Bank(coreset(all_tokens, size).astype(np.float16))

        def knn_max(v: dict, bank: Bank = bank) -> float:
            return float(bank.nearest(v["tokens"]).max())

        def knn_top3(v: dict, bank: Bank = bank) -> float:
            return float(np.sort(bank.nearest(v["tokens"]))[-3:].mean())

        out[f"knn{size}-max"] = knn_max
        out[f"knn{size}-top3"] = knn_top3
    pooled = Mahalanobis([_pooled(tokens_of(v["tokens"])) for v in train])
    style = Mahalanobis([v["style"] for v in train], shrink=0.01)
    out["pooled-tokens"] = lambda v: pooled(_pooled(tokens_of(v["tokens"])))
    out["style"] = lambda v: style(v["style"])
    fitted = {}
    for name, fn in out.items():
        scores = np.array([fn(v) for v in heldout])
        for q in (0.99, 0.995):
            fitted[f"{name}@{q}"] = (fn, float(np.quantile(scores, q)))
    return fitted


def _pooled_rows(rows: list[dict], cands: list[str]) -> dict[tuple[str, str], dict]:
    """Per look and template, each candidate's (confident, confident and wrong) share over all
    its recordings' answers."""
    out: dict[tuple[str, str], dict] = {}
    for key in sorted({(r["look"], r["template"]) for r in rows}):
        mine = [r for r in rows if (r["look"], r["template"]) == key]
        n = sum(r["n"] for r in mine)
        cells = {}
        for c in cands:
            got = [(r, r if c == "none" else r["candidates"][c]) for r in mine]
            cells[c] = [
                sum(v["confident"] * r["n"] for r, v in got) / n,
                sum(v["confident_wrong"] * r["n"] for r, v in got) / n,
            ]
        out[key] = cells
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--in-look", type=Path, nargs="*", default=[])
    p.add_argument("--off-look", type=Path, nargs="*", default=[])
    p.add_argument("--train-frames", type=int, default=1200)
    p.add_argument("--heldout-frames", type=int, default=600)
    p.add_argument("--frames", type=int, default=0, help="at most this many per recording")
    p.add_argument("--out", type=Path, default=Path("bench/results/familiarity_study.json"))
    args = p.parse_args(argv)

    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.evaluation.labels import load_labels
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.inspect.adapters import open_inspector
    from pnp_vision.inspect.calibration import Calibration

    # as the worker answers: a template with the folder's own weights adapter through it
    inspector = open_inspector(args.model, TemplateSet.load(PROJECT_ROOT / "prompts"))
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

            for frame in load_labels(folder)[: args.frames or None]:
                image = cv2.imread(str(folder / frame.file), cv2.IMREAD_COLOR)
                qs = [q for q in frame.questions if q.template in learned]
                if image is None or not qs:
                    continue
                for q in qs:
                    question = Question(template=q.template, params=q.params)
                    (r,) = inspector.inspect(image, [question])
                    seen = _features(inspector, image, question)
                    s = stats[q.template]
                    s["right"].append(r.answer == q.answer)
                    s["confident"].append(r.confident)
                    for cand, (fn, threshold) in fits[q.template].items():
                        s[cand].append(fn(seen) <= threshold)
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
    pooled = _pooled_rows(rows, ["none", *cands])
    print("\npooled over recordings: confident share / confident-and-wrong share (%)")
    for (look, template), cells in sorted(pooled.items()):
        print(f"{look:<4} {template:<20}", end="")
        print("".join(f" {c}={100 * v[0]:.1f}/{100 * v[1]:.2f}" for c, v in cells.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {f"{look}/{template}": cells for (look, template), cells in pooled.items()}
    result = {"bar": bar, "model": str(args.model), "pooled": summary, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
