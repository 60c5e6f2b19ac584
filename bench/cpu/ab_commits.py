"""The tuned 3B-shaped CPU inspection at several commits, processes alternating: what each
change bought, on the same shapes, under the same load.

    python bench/cpu/ab_commits.py bed4f63 fa58b46 74eb55f HEAD --lm-layers 2 --vision-layers 8

Each commit is checked out into its own git worktree (under .cache/ab-commits/, removed after);
each child process imports that commit's `pnp_vision` and this checkout's bench/perf_common.py
(shapes and `FastInspector`), builds the model, tunes it, and times `--repeat` inspections after
a warm-up: wall time with the default BLAS threads, and process CPU time (user + system; with
two BLAS threads it includes their spinning). The commits alternate in every round, the order
reversed each round. Prints a table (medians, ratios to the first commit), writes JSON.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_common as pc

ROOT = Path(__file__).resolve().parents[2]


def child(tree: str, lm: int, vision: int, repeat: int) -> dict:
    sys.path.insert(0, tree)  # that commit's pnp_vision, ahead of this checkout's
    from pnp_vision.inspect.runtime import setup_runtime

    info = setup_runtime().backend
    import mlx.core as mx

    import pnp_vision
    from pnp_vision.inspect.tuning import tune_model

    assert pnp_vision.__file__.startswith(tree), pnp_vision.__file__
    s = pc.shape("3b", lm, vision)
    model = pc.build_mlx(s, "float32")
    tune_model(model, "auto")
    try:  # trees since the renovation: the fast paths are installed by patching, not tune_model
        from pnp_vision.inspect.models import patching
        from pnp_vision.inspect.runtime import setup_runtime

        patching.patch_model(model, "qwen2_5_vl", setup_runtime())
    except ImportError:
        pass
    p = pc.prompt(448)
    px = pc.pixels(p)
    fi = pc.FastInspector(model, p)
    mx.eval(fi.one(px))
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        mx.eval(fi.one(px))
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"wall_ms": wall, "cpu_ms": cpu, "memory_kept": getattr(info, "memory_kept", False),
            "load": os.getloadavg()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("commits", nargs="*")
    ap.add_argument("--lm-layers", type=int, default=2)
    ap.add_argument("--vision-layers", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", help="worktree path (internal)")
    args = ap.parse_args()
    if args.child:
        res = child(args.child, args.lm_layers, args.vision_layers, args.repeat)
        pc.report(res)
        return
    base = ROOT / ".cache" / "ab-commits"
    trees = {}
    for c in args.commits:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", c],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        tree = base / sha
        if not tree.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f",
                            str(tree), sha], check=True, capture_output=True)  # fmt: skip
        trees[c] = (sha, str(tree))
    runs: dict[str, list[dict]] = {c: [] for c in args.commits}
    try:
        for r in range(args.rounds):
            order = args.commits if r % 2 == 0 else args.commits[::-1]
            for c in order:
                sha, tree = trees[c]
                cmd = [sys.executable, __file__, "--child", tree, "--lm-layers",
                       str(args.lm_layers), "--vision-layers", str(args.vision_layers),
                       "--repeat", str(args.repeat)]  # fmt: skip
                res = pc.child_result(cmd, cwd=tree)
                runs[c].append(res)
                print(f"round {r} {c} ({sha}): wall {pc.med(res['wall_ms']):.0f} ms, "
                      f"cpu {pc.med(res['cpu_ms']):.0f} ms, load {res['load'][0]:.1f}",
                      flush=True)  # fmt: skip
    finally:
        for _, tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree],
                           capture_output=True)  # fmt: skip
    rows = []
    first = args.commits[0]
    for c in args.commits:
        wall = pc.med([pc.med(x["wall_ms"]) for x in runs[c]])
        cpu = pc.med([pc.med(x["cpu_ms"]) for x in runs[c]])
        rows.append({"commit": f"{c} ({trees[c][0]})", "wall ms": wall, "cpu ms": cpu})
    for row in rows:
        row[f"wall / {first}"] = row["wall ms"] / rows[0]["wall ms"]
        row[f"cpu / {first}"] = row["cpu ms"] / rows[0]["cpu ms"]
    print(pc.table(rows, list(rows[0])))
    pc.write_result(
        f"ab_commits_d{args.lm_layers}_{args.vision_layers}",
        {"rows": rows, "runs": runs, "args": vars(args)},
    )


if __name__ == "__main__":
    main()
