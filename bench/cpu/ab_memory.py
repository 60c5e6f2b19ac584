"""A/B of `setup_runtime`'s glibc settings (freed memory kept in the process) on the tuned
3B-shaped CPU inspection: the two settings alternate process by process.

    python bench/cpu/ab_memory.py --lm-layers 2 --vision-layers 8 --rounds 3

Each process builds the model, warms up, then times `--repeat` inspections: wall time, process
CPU time (user + system) and minor page faults per inspection (faults are what the setting
removes: with glibc's defaults big freed buffers go back to the kernel and fault back in, zeroed,
on the next pass). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_common as pc


def one(args: argparse.Namespace) -> dict:
    from pnp_vision.inspect.runtime import setup_runtime

    info = setup_runtime().backend
    import mlx.core as mx

    pc.mlx_threads(args.threads)
    _, fi, px = pc.tuned_3b(args.lm_layers, args.vision_layers)
    for _ in range(2):
        mx.eval(fi.one(px))
    wall, cpu, faults = [], [], []
    for _ in range(args.repeat):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        t0 = time.perf_counter()
        mx.eval(fi.one(px))
        t1, c1 = time.perf_counter(), time.process_time()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall.append((t1 - t0) * 1e3)
        cpu.append((c1 - c0) * 1e3)
        faults.append(r1.ru_minflt - r0.ru_minflt)
    return {"memory_kept": info.memory_kept, "wall_ms": wall, "cpu_ms": cpu, "minflt": faults,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lm-layers", type=int, default=2)
    ap.add_argument("--vision-layers", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        pc.report(one(args))
        return
    runs: dict[str, list[dict]] = {"kept": [], "glibc default": []}
    for r in range(args.rounds):
        order = ("kept", "glibc default") if r % 2 == 0 else ("glibc default", "kept")
        for arm in order:
            env = dict(os.environ, PNP_VISION_KEEP_MEMORY="1" if arm == "kept" else "0")
            cmd = [sys.executable, __file__, "--child", "--lm-layers", str(args.lm_layers),
                   "--vision-layers", str(args.vision_layers),
                   "--repeat", str(args.repeat)]  # fmt: skip
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            res = pc.child_result(cmd, env)
            runs[arm].append(res)
            print(
                f"round {r} {arm}: wall {pc.med(res['wall_ms']):.0f} ms, "
                f"cpu {pc.med(res['cpu_ms']):.0f} ms, faults {pc.med(res['minflt']):.0f}",
                flush=True,
            )
    rows = []
    for arm, rs in runs.items():
        rows.append({
            "memory": arm,
            "wall ms": pc.med([pc.med(x["wall_ms"]) for x in rs]),
            "cpu ms": pc.med([pc.med(x["cpu_ms"]) for x in rs]),
            "minor faults": pc.med([pc.med(x["minflt"]) for x in rs]),
            "max rss MB": pc.med([x["maxrss_mb"] for x in rs]),
        })  # fmt: skip
    for key in ("wall ms", "cpu ms"):
        rows[1][f"{key} default/kept"] = rows[1][key] / rows[0][key]
    print(pc.table(rows, ["memory", "wall ms", "cpu ms", "minor faults", "max rss MB",
                          "wall ms default/kept", "cpu ms default/kept"]))  # fmt: skip
    pc.write_result(
        f"ab_memory_d{args.lm_layers}_{args.vision_layers}_t{args.threads or 'default'}",
        {"runs": runs, "rows": rows, "load": os.getloadavg(), "args": vars(args)},
    )


if __name__ == "__main__":
    main()
