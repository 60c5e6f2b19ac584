"""What a synthetic frame costs to render: the default look, the trainer's classic mix and the
WORLD preset, at the trainer's camera sizes (mean weighted by how often it draws each).

The trainer renders about 30 frames a step on CPU helpers, so the WORLD preset must stay
within about twice the default's cost. CPU time per frame, each variant in turn over the same
frames, and the fastest of several rounds kept: other work on a shared machine only ever adds
time, so the minimum is the closest to the frame's own cost.

    .venv/bin/python bench/synthetic_cost.py [--rounds 5] [--frames 30]

Prints a table and writes bench/results/synthetic_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from pnp_vision.devtools.synthetic import WORLD, Variation, render

# the trainer's camera sizes and how often it draws each (devtools/train.py TrainConfig)
SIZES = ((160, 120), (224, 168), (320, 240), (480, 270), (640, 480), (800, 600), (1280, 720),
         (1920, 1080))  # fmt: skip
WEIGHTS = (4.0, 2.0, 4.0, 2.0, 2.0, 0.4, 0.6, 0.3)
VARIANTS = {
    "default": Variation(),
    "classic mix (JPEG on 40%)": Variation(jpeg_quality=(30, 95), jpeg_share=0.4),
    "WORLD": WORLD,
}


def measure(rounds: int, frames: int) -> dict[str, list[float]]:
    """ms per frame, per variant and size: the fastest of `rounds` runs over the same frames."""
    best = {name: [float("inf")] * len(SIZES) for name in VARIANTS}
    for _ in range(rounds):
        for j, size in enumerate(SIZES):
            n = frames if size[0] < 1000 else max(4, frames // 5)
            for name, var in VARIANTS.items():
                start = time.process_time()
                for i in range(n):
                    render(i, 7, size, variation=var)
                best[name][j] = min(best[name][j], (time.process_time() - start) / n * 1e3)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=30, help="frames a size a round (1/5 for HD)")
    args = p.parse_args()
    for var in VARIANTS.values():  # warm: noise tiles, imports
        for size in SIZES:
            render(0, 7, size, variation=var)
    best = measure(args.rounds, args.frames)
    w = np.asarray(WEIGHTS)
    mean = {name: float((np.asarray(ms) * w).sum() / w.sum()) for name, ms in best.items()}
    head = "| variant | " + " | ".join(f"{a}x{b}" for a, b in SIZES) + " | weighted mean |"
    print(head)
    print("|---" * (len(SIZES) + 2) + "|")
    for name, ms in best.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in ms) + f" | {mean[name]:.2f} |")
    for base in ("default", "classic mix (JPEG on 40%)"):
        ratios = [a / b for a, b in zip(best["WORLD"], best[base], strict=True)]
        print(f"| WORLD / {base} | " + " | ".join(f"{r:.2f}" for r in ratios)
              + f" | {mean['WORLD'] / mean[base]:.2f} |")  # fmt: skip
    out = Path(__file__).parent / "results" / "synthetic_cost.json"
    out.write_text(json.dumps({
        "what": "CPU ms per rendered frame (fastest of rounds), trainer's sizes and weights",
        "machine": platform.processor() or platform.machine(), "opencv": cv2.__version__,
        "rounds": args.rounds, "frames": args.frames, "sizes": SIZES, "weights": WEIGHTS,
        "ms": best, "weighted_mean_ms": mean,
    }, indent=1))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
