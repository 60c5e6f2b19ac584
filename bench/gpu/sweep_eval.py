"""Families of docs/evaluation.md rendered in memory (no PNGs), asked of a model folder.

    python bench/gpu/sweep_eval.py MODEL OUT.json [frames]

A quick screen for recipe sweeps (answers drawn at the uncalibrated bar 0.8); the figures a
model is judged by come from `python -m pnp_vision.devtools.families` (`pnp-vision eval`).
"""

import json
import sys
from pathlib import Path


def main():
    model, out = Path(sys.argv[1]), Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.devtools.families import COMMON, FAMILIES
    from pnp_vision.devtools.make_recording import build_parser, variation_of
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect import Inspector, Question, TemplateSet

    inspector = Inspector(model, TemplateSet.load(PROJECT_ROOT / "prompts"))
    learned = {"nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty"}
    report = {}
    for name, extra in FAMILIES.items():
        args = build_parser().parse_args([*COMMON, *extra, "--out", "/tmp/x"])
        var = variation_of(args)
        stats = {}
        frames = n if name != "fullhd" else n // 3
        for i in range(frames):
            img, label = render(
                i,
                args.seed,
                args.size,
                lighting=args.lighting,
                noise=args.noise,
                scenes=args.scenes,
                variation=var,
            )
            qs = [q for q in label["questions"] if q["template"] in learned]
            if not qs:
                continue
            res = inspector.inspect(
                img, [Question(template=q["template"], params=q["params"]) for q in qs]
            )
            for q, r in zip(qs, res, strict=True):
                s = stats.setdefault(q["template"], [0, 0, 0])
                s[0] += 1
                ok = r.answer == q["answer"]
                s[1] += ok
                s[2] += (not ok) and r.probabilities[r.answer] >= 0.8
        report[name] = {
            t: {"n": a, "acc": round(b / a, 4), "conf_wrong": round(c / a, 4)}
            for t, (a, b, c) in sorted(stats.items())
        }
        print(name, json.dumps(report[name]), flush=True)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
