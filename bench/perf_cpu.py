"""Goal 1 on a Linux CPU: a Qwen2.5-VL-3B-shaped 448x448 YES/NO inspection through the tuned
path, against PyTorch (fp32, sdpa) and against mlx-vlm's defaults, same shapes, same machine.

    python bench/perf_cpu.py                    # depths 2/8 and 4/16, 3 rounds, bf16 defaults
    python bench/perf_cpu.py --threads 1 --defaults --out perf_cpu_3b_1thread
    python bench/perf_cpu.py --depths 1,1 2,2 --rounds 1 --defaults 4bit --out perf_cpu_3b_4bit

Every measurement is its own process (`--impl`), and the processes alternate (tuned, torch,
then torch, tuned in the next round), so the load of a shared machine falls on both peers;
each child records the load average it ran under. The paths:

  tuned    what the worker runs: `setup_runtime()` (OpenBLAS preloaded, freed memory kept),
           the checkpoint built in its dtype (bf16, or 4-bit like mlx-community folders), then
           `tune_model` (fp32 on the CPU, fast vision tower, fast math), head on the answer rows
           of the last position only (`perf_common.FastInspector`).
  torch    transformers' Qwen2_5_VLForConditionalGeneration, fp32, sdpa, logits_to_keep=1.
  default  mlx-vlm as shipped on the same checkpoint: no BLAS preload, no malloc settings, the
           checkpoint's dtype, its own forward (every position's logits). One pass, no warm-up:
           a pass takes minutes, and what a warm-up saves is under a second.

A 3B model in fp32 (15 GB) plus a PyTorch copy does not fit beside other work in 24 GB, and
mlx-vlm's defaults take tens of minutes at full depth, so everything runs at reduced depth: two
(language layers, vision blocks) pairs, the vision depth a multiple of 8 so that the share of
full-attention blocks (every 8th) is the full model's. Each process builds the deeper model and
alternates passes over both depths (the shallower one runs the first layers and blocks only),
so both points of the fit are measured under the same load, seconds apart; per process the
full 36 + 32 layers are extrapolated by `vision = v0 + c * vision_blocks` (the tower, timed
inside the pass) and `rest = a + b * lm_layers`. Ratios are taken between neighbouring
processes (same round) and their median reported. `--threads 1` runs both peers on one thread
(BLAS and torch), where a shared machine's load distorts least. Prints tables and writes
bench/results/perf_cpu_3b.json (`--report` re-prints them from it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc

FULL_LM, FULL_VISION = 36, 32
SHAPE = ["3b"]  # --shape tiny: a quick run of the whole driver


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _depths(args: argparse.Namespace) -> list[tuple[int, int]]:
    return sorted(tuple(int(x) for x in d.split(",")) for d in args.depths)


def _build(args: argparse.Namespace):
    lm, vision = _depths(args)[-1]  # the deepest pair; shallower ones use its first layers
    s = pc.shape(args.shape, lm, vision)
    bits = 4 if args.checkpoint == "4bit" else None
    return pc.build_mlx(s, "bfloat16", quantize_bits=bits)


class _Depth:
    """Run the first `lm` decoder layers and `vision` blocks only (lists put back on exit)."""

    def __init__(self, holders: list[tuple[Any, str]], counts: tuple[int, int]) -> None:
        self.holders, self.counts = holders, counts

    def __enter__(self) -> None:
        self.saved = [getattr(obj, name) for obj, name in self.holders]
        for (obj, name), full, n in zip(self.holders, self.saved, self.counts, strict=True):
            setattr(obj, name, full[:n])

    def __exit__(self, *exc: Any) -> None:
        for (obj, name), full in zip(self.holders, self.saved, strict=True):
            setattr(obj, name, full)


def _alternate(args: argparse.Namespace, holders, one_pass, passes: int) -> dict[str, Any]:
    """`passes` timed passes per depth pair, the pairs alternating; one warm-up each first."""
    out: dict[str, Any] = {}
    warm = 0 if args.impl == "default" else 1
    for i in range(warm + passes):
        for lm, vision in _depths(args):
            with _Depth(holders, (lm, vision)):
                total, vis, probs = one_pass()
            if i >= warm:
                d = out.setdefault(key(lm, vision), {"total_ms": [], "vision_ms": []})
                d["total_ms"].append(total)
                d["vision_ms"].append(vis)
                d["probs"] = probs
    return out


def child_tuned(args: argparse.Namespace) -> dict[str, Any]:
    from pnp_vision.inspect.runtime import setup_runtime

    info = setup_runtime().backend
    import mlx.core as mx
    import numpy as np

    pc.mlx_threads(args.threads)
    t0 = time.perf_counter()
    model = _build(args)
    report = pc.tune(model, "auto")
    build_s = time.perf_counter() - t0
    p = pc.prompt(448)
    px = pc.pixels(p)
    fi = pc.FastInspector(model, p)
    tower, grid, split = model.vision_tower, mx.array([p.grid]), {}
    dtype = tower.patch_embed.proj.weight.dtype

    def embeds(ids: list[int], pixels: Any) -> Any:  # FastInspector._embeds, vision timed
        t = time.perf_counter()
        feats = tower(mx.array(pixels).astype(dtype), grid)
        mx.eval(feats)
        split["vision"] = (time.perf_counter() - t) * 1e3
        text = model.language_model.model.embed_tokens(mx.array([ids]))
        start, n = ids.index(pc.IMAGE_TOKEN), feats.shape[0]
        return mx.concatenate(
            [text[:, :start], feats[None].astype(text.dtype), text[:, start + n :]], axis=1
        )

    fi._embeds = embeds

    def one_pass() -> tuple[float, float, list[float]]:
        t = time.perf_counter()
        probs = fi.one(px)
        mx.eval(probs)
        return (time.perf_counter() - t) * 1e3, split["vision"], np.array(probs).tolist()

    holders = [(model.language_model.model, "layers"), (tower, "blocks")]
    return {"tuning": report.summary(), "backend": info.summary(), "build_s": build_s,
            "depths": _alternate(args, holders, one_pass, args.repeat)}  # fmt: skip


def child_default(args: argparse.Namespace) -> dict[str, Any]:
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten

    t0 = time.perf_counter()
    model = _build(args)
    build_s = time.perf_counter() - t0
    p = pc.prompt(448)
    px = pc.pixels(p)
    split: dict[str, float] = {}
    cls = type(model.vision_tower)

    class Timed(cls):  # the tower's time inside the pass: evaluate its output there
        def __call__(self, *a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            out = cls.__call__(self, *a, **kw)
            mx.eval(out)
            split["vision"] = (time.perf_counter() - t) * 1e3
            return out

    model.vision_tower.__class__ = Timed

    def one_pass() -> tuple[float, float, list[float]]:
        t = time.perf_counter()
        probs = pc.plain_inspect(model, p, px)
        mx.eval(probs)
        return (time.perf_counter() - t) * 1e3, split["vision"], np.array(probs).tolist()

    holders = [(model.language_model.model, "layers"), (model.vision_tower, "blocks")]
    dtypes = sorted({str(v.dtype) for _, v in tree_flatten(model.parameters())})
    return {"build_s": build_s, "dtypes": dtypes,
            "depths": _alternate(args, holders, one_pass, 1)}  # fmt: skip


def child_torch(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from perf_torch_peer import hf_config
    from transformers import Qwen2_5_VLForConditionalGeneration

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    s = pc.shape(args.shape, *_depths(args)[-1])
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration._from_config(
        hf_config(s), attn_implementation="sdpa", dtype=torch.float32
    ).eval()
    build_s = time.perf_counter() - t0
    p = pc.prompt(448)
    ids = torch.tensor([p.ids()])
    px = torch.from_numpy(pc.pixels(p))
    grid = torch.tensor([p.grid])
    split: dict[str, float] = {}
    visual = model.model.visual
    visual.register_forward_pre_hook(lambda *_: split.__setitem__("t", time.perf_counter()))
    visual.register_forward_hook(
        lambda *_: split.__setitem__("vision", (time.perf_counter() - split["t"]) * 1e3)
    )

    def one_pass() -> tuple[float, float, list[float]]:
        t = time.perf_counter()
        with torch.inference_mode():
            out = model(input_ids=ids, pixel_values=px, image_grid_thw=grid, logits_to_keep=1)
            probs = torch.softmax(out.logits[0, -1, list(pc.ANSWERS)].float(), -1)
        return (time.perf_counter() - t) * 1e3, split["vision"], probs.tolist()

    holders = [(model.model.language_model, "layers"), (visual, "blocks")]
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "build_s": build_s,
            "depths": _alternate(args, holders, one_pass, args.repeat)}  # fmt: skip


def run_child(impl: str, args: argparse.Namespace, checkpoint: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--impl", impl, "--checkpoint", checkpoint, "--repeat",
           str(args.repeat), "--shape", args.shape, "--depths", *args.depths]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if impl == "default":  # nothing of ours in that process; say so explicitly anyway
        env.update(PNP_VISION_BLAS="", PNP_VISION_KEEP_MEMORY="0", PNP_VISION_FASTMATH="0")
    res = pc.child_result(cmd, env)
    res["full"] = extrapolate(res, args.full)
    each = ", ".join(f"{k}: {pc.med(v['total_ms']):.0f}" for k, v in res["depths"].items())
    print(f"  {impl:7s} {checkpoint:4s} {each} ms -> {res['full']['total_ms']:.0f} ms at "
          f"{args.full[0]}/{args.full[1]}, load {res['load']}", flush=True)  # fmt: skip
    return res


def fit(points: dict[tuple[int, int], tuple[float, float]]) -> dict[str, float]:
    """points: (lm, vision) -> (total ms, vision ms), two depth pairs -> the linear model."""
    ((l1, v1), (t1, s1)), ((l2, v2), (t2, s2)) = sorted(points.items())[:2]
    c = (s2 - s1) / (v2 - v1)
    b = ((t2 - s2) - (t1 - s1)) / (l2 - l1)
    return {"v0": s1 - c * v1, "c": c, "a": (t1 - s1) - b * l1, "b": b}


def at(model: dict[str, float], lm: int, vision: int) -> tuple[float, float]:
    vis = model["v0"] + model["c"] * vision
    return vis + model["a"] + model["b"] * lm, vis


def extrapolate(res: dict[str, Any], full: tuple[int, int]) -> dict[str, float]:
    points = {}
    for k, d in res["depths"].items():
        lm, vision = (int(x) for x in k.split("/"))
        points[(lm, vision)] = (pc.med(d["total_ms"]), pc.med(d["vision_ms"]))
    m = fit(points)
    total, vision = at(m, *full)
    return {"total_ms": total, "vision_ms": vision, **m}


def key(lm: int, vision: int) -> str:
    return f"{lm}/{vision}"


def _ms(run: dict[str, Any], k: str, full_key: str, field: str = "total_ms") -> float:
    return run["full"][field] if k == full_key else pc.med(run["depths"][k][field])


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    gflop_full = sum(pc.qwen_gflop(pc.shape(args.shape), pc.prompt(448)).values())
    full_key = key(*args.full)
    rows = []
    for impl, ckpt in sorted({(x["impl"], x["checkpoint"]) for x in runs},
                             key=lambda t: ("tuned", "torch", "default").index(t[0])):  # fmt: skip
        sel = [x for x in runs if (x["impl"], x["checkpoint"]) == (impl, ckpt)]
        for k in [*sel[0]["depths"], full_key]:
            if k == full_key:
                total = [x["full"]["total_ms"] for x in sel]
                vision = [x["full"]["vision_ms"] for x in sel]
                lm, vis = args.full
            else:
                total = [pc.med(x["depths"][k]["total_ms"]) for x in sel]
                vision = [pc.med(x["depths"][k]["vision_ms"]) for x in sel]
                lm, vis = (int(v) for v in k.split("/"))
            gflop = sum(pc.qwen_gflop(pc.shape(args.shape, lm, vis), pc.prompt(448)).values())
            rows.append({"path": f"{impl} ({ckpt})", "lm/vision": k + (" fit" if k == full_key
                         else ""), "ms": pc.med(total), "best ms": min(total),
                         "vision ms": pc.med(vision), "language ms": pc.med(total) -
                         pc.med(vision), "GFLOP/s": gflop / pc.med(total) * 1e3,
                         "processes": len(sel)})  # fmt: skip
    print(pc.table(rows, list(rows[0])))
    print(f"{gflop_full:.0f} GFLOP per full-depth inspection")

    ratios = []  # between neighbouring processes: same round, same checkpoint
    for r in sorted({x["round"] for x in runs}):
        for ckpt in ("bf16", "4bit"):
            here = {x["impl"]: x for x in runs if x["round"] == r and x["checkpoint"] == ckpt}
            if "tuned" not in here:
                continue
            tuned = here["tuned"]
            for k in [*tuned["depths"], full_key]:
                row = {"round": r, "checkpoint": ckpt, "lm/vision": k,
                       "tuned ms": _ms(tuned, k, full_key)}  # fmt: skip
                if "torch" in here:
                    row["torch/tuned"] = _ms(here["torch"], k, full_key) / row["tuned ms"]
                    row["vision torch/tuned"] = _ms(here["torch"], k, full_key, "vision_ms") / _ms(
                        tuned, k, full_key, "vision_ms"
                    )
                if "default" in here:
                    row["default/tuned"] = _ms(here["default"], k, full_key) / row["tuned ms"]
                row["load"] = tuned["load"][0][0]
                ratios.append(row)
    cols = ["round", "checkpoint", "lm/vision", "tuned ms", "torch/tuned", "vision torch/tuned",
            "default/tuned", "load"]  # fmt: skip
    print(pc.table(ratios, cols))
    summary = {}
    for name in ("torch/tuned", "vision torch/tuned", "default/tuned"):
        for ckpt in ("bf16", "4bit"):
            vals = [x[name] for x in ratios if name in x and x["lm/vision"] == full_key
                    and x["checkpoint"] == ckpt]  # fmt: skip
            if vals:
                summary[f"{name} ({ckpt}), {full_key}"] = {
                    "median": pc.med(vals),
                    "min": min(vals),
                    "max": max(vals),
                    "n": len(vals),
                }
    for k, v in summary.items():
        print(f"{k}: median {v['median']:.2f} (min {v['min']:.2f}, max {v['max']:.2f}, n={v['n']})")
    return {"rows": rows, "ratios": ratios, "summary": summary, "gflop_full": gflop_full}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", choices=["tuned", "torch", "default"])
    ap.add_argument("--checkpoint", default="bf16", choices=["bf16", "4bit"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--depths", nargs=2, default=["2,8", "4,16"], help="lm,vision pairs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--defaults", nargs="*", default=["bf16"], help="checkpoints for defaults")
    ap.add_argument("--default-rounds", type=int, default=1, help="rounds that run defaults")
    ap.add_argument("--threads", type=int, help="BLAS / torch threads (default: theirs)")
    ap.add_argument("--shape", default="3b", help="3b; tiny for a smoke run")
    ap.add_argument("--out", default="perf_cpu_3b")
    ap.add_argument("--report", help="re-print the tables of a JSON this script wrote")
    args = ap.parse_args()
    full = pc.shape(args.shape)
    args.full = (full.full_lm_layers, full.full_vision_layers)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        report(saved["runs"], args)
        return
    if args.impl:
        start = _load()
        res = {"child": args.impl}
        res.update(globals()[f"child_{args.impl}"](args))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        res.update(impl=args.impl, checkpoint=args.checkpoint, load=[start, _load()],
                   maxrss_gb=rss)  # fmt: skip
        pc.report(res)
        return

    runs: list[dict[str, Any]] = []
    t_start = time.time()
    for r in range(args.rounds):
        print(f"round {r}, load {_load()}", flush=True)
        plan = ["tuned", "torch"] if r % 2 == 0 else ["torch", "tuned"]
        for ckpt in args.defaults if r < args.default_rounds else []:
            plan = [*plan, ("default", ckpt)] if r % 2 == 0 else [("default", ckpt), *plan]
        for item in plan:
            impl, ckpt = item if isinstance(item, tuple) else (item, "bf16")
            runs.append({**run_child(impl, args, ckpt), "round": r})
            if impl == "default" and ckpt == "4bit":  # its own tuned neighbour (same folder)
                runs.append({**run_child("tuned", args, "4bit"), "round": r})
    out = report(runs, args)
    pc.write_result(args.out, {**out, "runs": runs, "args": vars(args),
                               "wall_s": time.time() - t_start})  # fmt: skip


if __name__ == "__main__":
    main()
