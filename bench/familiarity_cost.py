"""What the familiarity check adds to an inspection's time (issue 30's goal: <= 5%).

Two Inspectors on the same weights and calibration, one with the folder's familiarity
statistic and one on a copy without it, answer the same generator frames (each scene's
questions in one call, as a worker does) call by call, in turn; the table gives the median
time per call of each and their ratio.

    .venv/bin/python bench/familiarity_cost.py --model models/pnp-inspector --rounds 6

Writes its figures to bench/results/familiarity_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAMILIARITY_FILES = ("familiarity.json", "familiarity.npz")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, default=ROOT / "models" / "pnp-inspector")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "familiarity_cost.json")
    args = p.parse_args()

    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect import Inspector, Question, TemplateSet
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    if not all((args.model / f).exists() for f in FAMILIARITY_FILES):
        raise SystemExit(f"{args.model} has no familiarity statistic")
    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    bare = Path(tempfile.mkdtemp(prefix="nofam-")) / "model"
    shutil.copytree(args.model, bare, ignore=shutil.ignore_patterns(*FAMILIARITY_FILES))
    try:
        with_f = Inspector(args.model, templates)
        without = Inspector(bare, templates)
        calls = []
        for i in range(args.frames):
            image, label = render(i, 77_001, (640, 480))
            qs = [Question(template=q["template"], params=q["params"]) for q in label["questions"]]
            calls.append((image, qs))
        times: dict[str, list[float]] = {"familiarity": [], "without": []}
        for inspector in (with_f, without):  # warm both
            for image, qs in calls[:5]:
                inspector.inspect(image, qs)
        pair = [("familiarity", with_f), ("without", without)]
        for r in range(args.rounds):  # call by call, in turn (the machine's drift hits both)
            for i, (image, qs) in enumerate(calls):
                for name, inspector in pair if (r + i) % 2 == 0 else pair[::-1]:
                    t0 = time.perf_counter()
                    inspector.inspect(image, qs)
                    times[name].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(bare.parent, ignore_errors=True)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    ratio = med["familiarity"] / med["without"]
    print("| inspector | median ms per call | calls |")
    print("|---|---|---|")
    for k in ("without", "familiarity"):
        print(f"| {k} | {med[k]:.2f} | {len(times[k])} |")
    print(f"ratio familiarity / without: {ratio:.3f}")
    record = {
        "model": str(args.model),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "frames": args.frames,
        "rounds": args.rounds,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "ratio": round(ratio, 4),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
