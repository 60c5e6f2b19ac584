"""CPU time of one inspection per template, against the nozzle check (issue 36's goal: a
`part_marking` or `polarity_mark` inspection within 3x of a `nozzle_alignment` one).

One Inspector on the bundled folder answers one question per call, each template on frames of
its own scene (640x480), call by call in turn, so the machine's drift hits every template
alike; the table gives each template's median ms per call and its ratio to the nozzle check.

    .venv/bin/python bench/template_cost.py --rounds 5

Writes its figures to bench/results/template_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# template -> the scene its frames come from
SCENES = {"nozzle_alignment": "nozzle_tip", "part_marking": "chip", "polarity_mark": "chip"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, default=ROOT / "models" / "pnp-inspector")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "template_cost.json")
    args = p.parse_args()

    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    from pnp_vision.inspect.adapters import open_inspector

    # as the worker answers: a template with the folder's own weights adapter swaps them in
    inspector = open_inspector(args.model, TemplateSet.load(PROJECT_ROOT / "prompts"))
    calls: dict[str, list] = {t: [] for t in SCENES}
    for template, scene in SCENES.items():
        i = 0
        while len(calls[template]) < args.frames:
            image, label = render(i, 77_003, (640, 480), scenes=[scene])
            i += 1
            for q in label["questions"]:
                if q["template"] == template:
                    calls[template].append(
                        (image, [Question(**{k: q[k] for k in ("template", "params")})])
                    )
                    break
    for items in calls.values():  # warm every path
        for image, qs in items[:3]:
            inspector.inspect(image, qs)
    times: dict[str, list[float]] = {t: [] for t in SCENES}
    order = list(SCENES)
    for r in range(args.rounds):
        turn = order[r % len(order) :] + order[: r % len(order)]  # each round starts elsewhere
        for i in range(args.frames):
            for template in turn:
                image, qs = calls[template][i]
                t0 = time.perf_counter()
                inspector.inspect(image, qs)
                times[template].append(time.perf_counter() - t0)
    med = {t: statistics.median(v) * 1000 for t, v in times.items()}
    base = med["nozzle_alignment"]
    print("| template | median ms per call | x nozzle_alignment | calls |")
    print("|---|---|---|---|")
    for t in SCENES:
        print(f"| {t} | {med[t]:.2f} | {med[t] / base:.2f} | {len(times[t])} |")
    record = {
        "model": str(args.model),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "frames": args.frames,
        "rounds": args.rounds,
        "median_ms": {t: round(v, 3) for t, v in med.items()},
        "ratio_to_nozzle": {t: round(v / base, 3) for t, v in med.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
