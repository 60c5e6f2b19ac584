"""What a chip frame of the marking world costs the trainer's CPU helpers, against the classic
chip frame (`synthetic.render`, everything included: scene, light, blur, noise).

Both worlds render the same frame indices, interleaved run by run, and each keeps its best
run (the machine is shared: the best run is the least disturbed). Prints a table and writes
bench/results/marking_cost.json.

    python bench/marking_cost.py [--frames 60] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pnp_vision.devtools.synthetic import Variation, render

SIZES = ((320, 240), (640, 480), (1280, 720))
WORLDS = {"classic": Variation(), "world": Variation(markings="world")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results/marking_cost.json"))
    args = p.parse_args()
    rows = []
    print(f"{'size':10} {'classic ms':>11} {'world ms':>9} {'ratio':>6}")
    for size in SIZES:
        best = dict.fromkeys(WORLDS, float("inf"))
        for _ in range(args.runs):
            for name, var in WORLDS.items():
                started = time.perf_counter()
                for i in range(args.frames):
                    render(i, seed=1, size=size, scenes=["chip"], variation=var)
                ms = (time.perf_counter() - started) / args.frames * 1000
                best[name] = min(best[name], ms)
        ratio = best["world"] / best["classic"]
        rows.append({"size": list(size), **{f"{k}_ms": v for k, v in best.items()}, "ratio": ratio})
        print(f"{size[0]}x{size[1]:<6} {best['classic']:11.2f} {best['world']:9.2f} {ratio:6.2f}")
    args.out.write_text(json.dumps({"frames": args.frames, "runs": args.runs, "rows": rows}))
    print(f"best of {args.runs} runs of {args.frames} chip frames each; {args.out}")


if __name__ == "__main__":
    main()
