"""Goal 1 on the CPU: the tuned path against the PyTorch peer, interleaved, and both against
mlx-vlm's defaults, for a Qwen2.5-VL-3B-shaped 448x448 YES/NO inspection.

    python bench/perf_cpu.py --depths 2 4 --rounds 2

The defaults on a 4-bit folder take ~10 minutes at full depth here, and a 3B model in fp32
(15 GB) plus a PyTorch copy do not fit beside other work in 24 GB, so everything runs at reduced
depth, at two depths, and is extrapolated to the full 36 + 32 layers by fitting, per path,
`vision = v0 + c * vision_layers` (the tower timed alone) and `rest = a + b * lm_layers`.
The mlx and PyTorch processes alternate (the machine is shared; interleaving spreads the noise
over both), and each gets the same depth. mlx-vlm's defaults are timed once per depth by
`perf_inspect.py --checkpoint 4bit` (run it first; this script reads its JSON).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc

BENCH = Path(__file__).resolve().parent


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def fast_run(depth: int, tag: str) -> dict:
    name = f"perf_cpu_fast_d{depth}_{tag}"
    _run([sys.executable, str(BENCH / "perf_inspect.py"), "--shape", "3b", "--checkpoint", "4bit",
          "--lm-layers", str(depth), "--vision-layers", str(depth), "--skip-plain",
          "--repeat", "3", "--questions", "1", "--out", name])  # fmt: skip
    return json.loads((out_dir() / f"{name}.json").read_text())


def torch_run(depth: int, tag: str) -> dict:
    path = out_dir() / f"perf_cpu_torch_d{depth}_{tag}.json"
    _run([sys.executable, str(BENCH / "perf_torch_peer.py"), "--shape", "3b", "--device", "cpu",
          "--dtype", "float32", "--lm-layers", str(depth), "--vision-layers", str(depth),
          "--repeat", "3", "--out", str(path)])  # fmt: skip
    return json.loads(path.read_text())


def out_dir() -> Path:
    import os

    return Path(os.environ.get("PNP_BENCH_OUT", pc.ROOT / "bench" / "results"))


def extrapolate(points: dict[int, tuple[float, float]], lm_full: int, vis_full: int) -> float:
    """points: depth -> (total ms, vision ms) at lm = vision = depth; two depths needed."""
    (d1, (t1, v1)), (d2, (t2, v2)) = sorted(points.items())[:2]
    c = (v2 - v1) / (d2 - d1)
    v0 = v1 - c * d1
    b = ((t2 - v2) - (t1 - v1)) / (d2 - d1)
    a = (t1 - v1) - b * d1
    return v0 + c * vis_full + a + b * lm_full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depths", type=int, nargs=2, default=[2, 4])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    fast: dict[int, list[dict]] = {d: [] for d in args.depths}
    peer: dict[int, list[dict]] = {d: [] for d in args.depths}
    for r in range(args.rounds):
        for d in args.depths:
            fast[d].append(fast_run(d, f"r{r}"))
            print(
                f"round {r} depth {d}: mlx fast {pc.med(fast[d][-1]['fast_ms']):.0f} ms", flush=True
            )
            peer[d].append(torch_run(d, f"r{r}"))
            print(f"round {r} depth {d}: torch {peer[d][-1]['full_median_ms']:.0f} ms", flush=True)

    rows, fast_pts, peer_pts, plain_pts = [], {}, {}, {}
    for d in args.depths:
        f_ms = pc.med([pc.med(x["fast_ms"]) for x in fast[d]])
        f_vis = pc.med([pc.med(x["fast_vision_ms"]) for x in fast[d]])
        t_ms = pc.med([x["full_median_ms"] for x in peer[d]])
        t_vis = pc.med([x["vision_median_ms"] for x in peer[d]])
        fast_pts[d], peer_pts[d] = (f_ms, f_vis), (t_ms, t_vis)
        row = {"depth lm/vis": f"{d}/{d}", "mlx tuned ms": f_ms, "torch ms": t_ms,
               "torch/tuned": t_ms / f_ms}  # fmt: skip
        plain = out_dir() / f"perf_inspect_3b_cpu_d{d}.json"
        if plain.exists():
            p = json.loads(plain.read_text())
            p_ms, p_vis = pc.med(p["plain_ms"]), pc.med(p["plain_vision_ms"])
            plain_pts[d] = (p_ms, p_vis)
            row["mlx-vlm 4bit default ms"] = p_ms
            row["default/tuned"] = p_ms / f_ms
            row["default/tuned (same process)"] = p_ms / pc.med(p["fast_ms"])
        rows.append(row)
    full = {"depth lm/vis": "36/32 (extrapolated)",
            "mlx tuned ms": extrapolate(fast_pts, 36, 32),
            "torch ms": extrapolate(peer_pts, 36, 32)}  # fmt: skip
    full["torch/tuned"] = full["torch ms"] / full["mlx tuned ms"]
    if len(plain_pts) == 2:
        full["mlx-vlm 4bit default ms"] = extrapolate(plain_pts, 36, 32)
        full["default/tuned"] = full["mlx-vlm 4bit default ms"] / full["mlx tuned ms"]
    rows.append(full)
    cols = ["depth lm/vis", "mlx-vlm 4bit default ms", "mlx tuned ms", "torch ms",
            "default/tuned", "default/tuned (same process)", "torch/tuned"]  # fmt: skip
    print(pc.table(rows, cols))
    pc.write_result("perf_cpu_3b", {"rows": rows, "rounds": args.rounds, "depths": args.depths})


if __name__ == "__main__":
    main()
