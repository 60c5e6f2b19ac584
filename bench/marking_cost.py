"""What a chip frame of the marking world costs the trainer's CPU helpers, against the classic
chip frame (`synthetic.render`, everything included: scene, light, blur, noise).

Both worlds render the same frame indices, interleaved run by run, on one OpenCV thread (the
trainer renders in parallel processes), and each keeps its best run in wall time and in CPU
time (the machine is shared: the best run is the least disturbed, and CPU time does not count
the waits). Prints a table and writes bench/results/marking_cost.json.

    python bench/marking_cost.py [--frames 60] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2

from pnp_vision.devtools.synthetic import Variation, render

SIZES = ((320, 240), (640, 480), (1280, 720))
WORLDS = {"classic": Variation(), "world": Variation(markings="world")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results/marking_cost.json"))
    args = p.parse_args()
    cv2.setNumThreads(1)
    rows = []
    print(
        f"{'size':10} {'classic ms':>11} {'world ms':>9} {'ratio':>6} {'CPU ms':>15} {'ratio':>6}"
    )
    for size in SIZES:
        wall = dict.fromkeys(WORLDS, float("inf"))
        cpu = dict.fromkeys(WORLDS, float("inf"))
        for _ in range(args.runs):
            for name, var in WORLDS.items():
                started, used = time.perf_counter(), time.process_time()
                for i in range(args.frames):
                    render(i, seed=1, size=size, scenes=["chip"], variation=var)
                per = 1000 / args.frames
                wall[name] = min(wall[name], (time.perf_counter() - started) * per)
                cpu[name] = min(cpu[name], (time.process_time() - used) * per)
        ratio, cpu_ratio = wall["world"] / wall["classic"], cpu["world"] / cpu["classic"]
        rows.append({"size": list(size), "wall_ms": wall, "cpu_ms": cpu, "ratio": ratio,
                     "cpu_ratio": cpu_ratio})  # fmt: skip
        print(
            f"{size[0]}x{size[1]:<6} {wall['classic']:11.2f} {wall['world']:9.2f} {ratio:6.2f}"
            f" {cpu['classic']:7.2f} {cpu['world']:7.2f} {cpu_ratio:6.2f}"
        )
    args.out.write_text(json.dumps({"frames": args.frames, "runs": args.runs, "rows": rows}))
    print(f"best of {args.runs} runs of {args.frames} chip frames each; {args.out}")


if __name__ == "__main__":
    main()
