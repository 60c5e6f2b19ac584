"""Where a folder errs on the generator's WORLD frames: accuracy and confident-and-wrong answers
by scene, drawn package and drawn size (units), for one template.

    python bench/world_breakdown.py --model runs/pon30 --template part_on_nozzle \
        --scenes part_held,nozzle_tip --frames 400 --out bench/results/world_breakdown.json

A held-out figure says how much of a run's mix it gets right; this says which parts of the
world it has not learned (small chips, one package family), which decides whether the next run
needs more steps, a larger view or a different mix. Frames come from their own seed (777),
never a training seed; the folder is opened as the worker opens it (adapters included).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

SIZES = ((320, 240), (640, 480), (160, 120), (1280, 720))
SEED = 777


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--template", default="part_on_nozzle")
    p.add_argument("--scenes", default="part_held,nozzle_tip", help="comma-separated, in turn")
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--min-confidence", type=float, default=0.9)
    p.add_argument("--out", type=Path, help="JSON file for the figures")
    args = p.parse_args(argv)

    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.devtools.synthetic_variation import WORLD
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.inspect.adapters import open_inspector

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    inspector = open_inspector(args.model, templates, min_confidence=args.min_confidence)
    scenes = args.scenes.split(",")
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # asked, wrong, confident wrong
    for i in range(args.frames):
        scene = scenes[i % len(scenes)]
        image, label = render(i, SEED, SIZES[i % len(SIZES)], scenes=[scene], variation=WORLD)
        asked = [q for q in label["questions"] if q["template"] == args.template]
        drawn = label.get("drawn", {})
        units = drawn.get("part_units", drawn.get("length_units"))
        for q in asked:
            question = Question(template=q["template"], params=q["params"])
            result = inspector.inspect(image, [question])[0]
            wrong = result.answer != q["answer"]
            package = drawn.get("package", "-")
            keys = [f"scene {scene}", f"answer {q['answer']}", f"package {package}"]
            if units is not None:
                keys.append(f"size {int(units // 20) * 20}-{int(units // 20) * 20 + 20} units")
            for key in ("all", *keys):
                row = rows[key]
                row[0] += 1
                row[1] += wrong
                row[2] += wrong and result.confident
    table = {
        key: {"asked": a, "accuracy": round(1 - w / a, 4), "confident_wrong": cw}
        for key, (a, w, cw) in sorted(rows.items())
    }
    print(f"| {args.template} on WORLD frames | asked | accuracy | confident and wrong |")
    print("|---|---|---|---|")
    for key, row in table.items():
        print(f"| {key} | {row['asked']} | {row['accuracy']:.1%} | {row['confident_wrong']} |")
    if args.out:
        record = {"model": str(args.model), "template": args.template, "seed": SEED, "rows": table}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
