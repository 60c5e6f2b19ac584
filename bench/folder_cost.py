"""CPU time of an inspection on a model folder against its peer folder (issue 31's goal: a CPU
inspection within 2x of today's), as the worker answers: each folder opened with its own
adapters (`open_inspector`), so a template taught as an adapter swaps its weights in.

Per scene (640x480 frames of the generator), two kinds of call: each learned template's question
alone, and every question the frame asks in one call (a frame's questions on one view share its
vision pass unless they answer through different weights). Both folders answer the same frames,
call by call in turn, so the machine's drift hits both alike; the table gives median ms per call
and the ratio to the peer.

    .venv/bin/python bench/folder_cost.py --model NEW --peer models/pnp-inspector

Writes its figures to bench/results/folder_cost.json.
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

SCENES = ("nozzle_tip", "part_held", "tombstone", "feeder_pocket")
LEARNED = ("nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--peer", type=Path, default=ROOT / "models" / "pnp-inspector")
    p.add_argument("--frames", type=int, default=20, help="per scene")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "folder_cost.json")
    args = p.parse_args()

    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()  # before anything imports mlx
    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.devtools.synthetic import render
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.inspect.adapters import open_inspector

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    folders = {"model": args.model, "peer": args.peer}
    inspectors = {name: open_inspector(path, templates) for name, path in folders.items()}
    calls: list[tuple[str, object, list]] = []  # (kind, image, questions)
    for scene in SCENES:
        for i in range(args.frames):
            image, label = render(i, 5150, (640, 480), scenes=[scene])
            asked = [
                Question(template=q["template"], params=q["params"])
                for q in label["questions"]
                if q["template"] in LEARNED
            ]
            calls += [(q.template, image, [q]) for q in asked]
            if len(asked) > 1:
                calls.append((f"{scene} (all {len(asked)})", image, asked))
    for inspector in inspectors.values():  # warm: first passes of every shape
        for _, image, questions in calls[:: max(1, len(calls) // 20)]:
            inspector.inspect(image, questions)
    times: dict[str, dict[str, list[float]]] = {n: {} for n in folders}
    for _ in range(args.rounds):
        for kind, image, questions in calls:
            for name, inspector in inspectors.items():
                start = time.perf_counter()
                inspector.inspect(image, questions)
                times[name].setdefault(kind, []).append((time.perf_counter() - start) * 1e3)
    rows = {
        kind: {
            "model_ms": statistics.median(times["model"][kind]),
            "peer_ms": statistics.median(times["peer"][kind]),
            "calls": len(times["model"][kind]),
        }
        for kind in times["model"]
    }
    for row in rows.values():
        row["ratio"] = row["model_ms"] / row["peer_ms"]
    print(f"model {args.model}  peer {args.peer}  (median ms per call, CPU)")
    print(f"{'call':<26} {'model':>8} {'peer':>8} {'ratio':>6} {'calls':>6}")
    for kind, row in rows.items():
        print(
            f"{kind:<26} {row['model_ms']:8.2f} {row['peer_ms']:8.2f} {row['ratio']:6.2f}"
            f" {row['calls']:6d}"
        )
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "model": str(args.model),
        "peer": str(args.peer),
        "frames_per_scene": args.frames,
        "rounds": args.rounds,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
