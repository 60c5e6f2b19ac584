"""Where a tuned Qwen2.5-VL-3B-shaped CPU inspection spends its time, against PyTorch.

    python bench/cpu/profile_3b.py --impl mlx --lm-layers 2 --vision-layers 2
    python bench/cpu/profile_3b.py --impl torch --lm-layers 2 --vision-layers 2

mlx: the tuned path op by op, with an evaluation barrier around every linear layer and every
attention call, so each segment's wall time goes to one bucket: `linear` (GEMMs), `attention`
(QK^T, softmax, AV), `other` (norms, rotary, SwiGLU, residuals, gathers). Barriers cost a little
fusion, so the sum is a bit above the plain pass. torch: `torch.profiler` self CPU time per op,
grouped the same way. Both split vision tower and language model, and report GFLOP/s of the
linear layers (FLOPs counted from the shapes). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_common as pc


def clock() -> float:
    return time.process_time() if CPU_TIME else time.perf_counter()


CPU_TIME = False


def mlx_profile(args: argparse.Namespace) -> dict:
    from pnp_vision.inspect.runtime import setup_runtime

    info = setup_runtime().backend
    import mlx.core as mx
    import mlx.nn as nn

    from pnp_vision.inspect import fastmath
    from pnp_vision.inspect.models.qwen2_5_vl import vision as vision_fast

    pc.mlx_threads(args.threads)
    model, fi, px = pc.tuned_3b(args.lm_layers, args.vision_layers)
    buckets: dict[str, float] = collections.defaultdict(float)
    flops: dict[str, float] = collections.defaultdict(float)
    state = {"t": 0.0, "part": "vision", "on": False}

    def barrier(label: str, *arrays) -> None:
        if not state["on"]:
            return
        mx.eval(*arrays)
        now = clock()
        buckets[f"{state['part']} {label}"] += now - state["t"]
        state["t"] = now

    linear_call = nn.Linear.__call__

    def linear(self, x):
        barrier("other", x)
        y = linear_call(self, x)
        barrier("linear", y)
        if state["on"]:
            flops[state["part"]] += 2 * x.size * self.weight.shape[0]
        return y

    nn.Linear.__call__ = linear
    attend = vision_fast._attend

    def vattend(q, k, v, mask, scale, how, fast_exp):
        barrier("other", q, k, v)
        out = attend(q, k, v, mask, scale, how, fast_exp)
        barrier("attention full" if q.shape[0] == 1 else "attention windows", out)
        return out

    vision_fast._attend = vattend
    lm_attention = fastmath.attention

    def attention(q, k, v, scale, mask=None):
        if state["part"] != "language":  # the vision tower's own call, timed by vattend
            return lm_attention(q, k, v, scale, mask)
        barrier("other", q, k, v)
        out = lm_attention(q, k, v, scale, mask)
        barrier("attention", out)
        return out

    fastmath.attention = attention
    tower = model.vision_tower
    tower_call = type(tower).__call__

    def tower_wrapped(self, *a, **kw):
        out = tower_call(self, *a, **kw)
        barrier("other", out)
        state["part"] = "language"
        return out

    type(tower).__call__ = tower_wrapped
    mx.eval(fi.one(px))  # warm-up
    runs = []
    for _ in range(args.repeat):
        buckets.clear()
        flops.clear()
        state.update(on=True, part="vision", t=clock())
        t0 = state["t"]
        out = fi.one(px)
        barrier("other", out)
        state["on"] = False
        runs.append({"total_s": clock() - t0, **dict(buckets)})
    lin_flops = dict(flops)
    state["on"] = False
    plain = pc.timeit(lambda: fi.one(px), args.repeat, 0, mx.eval)
    return {"impl": "mlx", "blas": info.blas, "memory_kept": info.memory_kept,
            "runs": runs, "linear_gflop": {k: v / 1e9 for k, v in lin_flops.items()},
            "unbarriered_ms": plain}  # fmt: skip


def torch_profile(args: argparse.Namespace) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from perf_torch_peer import hf_config
    from transformers import Qwen2_5_VLForConditionalGeneration

    if args.threads:
        torch.set_num_threads(args.threads)
    s = pc.shape("3b", args.lm_layers, args.vision_layers)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration._from_config(
        hf_config(s), attn_implementation="sdpa", dtype=torch.float32
    ).eval()
    p = pc.prompt(448)
    ids = torch.tensor([p.ids()])
    px = torch.from_numpy(pc.pixels(p))
    grid = torch.tensor([p.grid])
    part = {"name": "vision"}
    visual = model.model.visual
    times: dict[str, float] = collections.defaultdict(float)

    def pre(_m, _i):
        part["t"] = clock()

    def post(_m, _i, _o):
        part["vision_s"] = clock() - part["t"]

    visual.register_forward_pre_hook(pre)
    visual.register_forward_hook(post)

    def full():
        with torch.inference_mode():
            out = model(input_ids=ids, pixel_values=px, image_grid_thw=grid, logits_to_keep=1)
            return out.logits

    full()
    runs = []
    for _ in range(args.repeat):
        t0 = clock()
        full()
        runs.append({"total_s": clock() - t0, "vision_s": part["vision_s"]})
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        full()
    for ev in prof.key_averages():
        times[ev.key] += ev.self_cpu_time_total / 1e6
    top = sorted(times.items(), key=lambda kv: -kv[1])[:25]
    return {"impl": "torch", "threads": torch.get_num_threads(), "runs": runs,
            "profile_self_cpu_s": dict(top)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", choices=["mlx", "torch"], required=True)
    ap.add_argument("--lm-layers", type=int, default=2)
    ap.add_argument("--vision-layers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, help="BLAS / torch threads (default: library's)")
    ap.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall time")
    ap.add_argument("--out")
    args = ap.parse_args()
    global CPU_TIME
    CPU_TIME = args.cpu_time
    res = mlx_profile(args) if args.impl == "mlx" else torch_profile(args)
    res.update(lm_layers=args.lm_layers, vision_layers=args.vision_layers)
    keys = sorted({k for r in res["runs"] for k in r})
    rows = [
        {"bucket": k, "median ms": 1e3 * pc.med([r.get(k, 0.0) for r in res["runs"]])} for k in keys
    ]
    print(pc.table(rows, ["bucket", "median ms"]))
    if "linear_gflop" in res:
        for part, g in res["linear_gflop"].items():
            sec = pc.med([r.get(f"{part} linear", 0.0) for r in res["runs"]])
            print(f"{part} linear: {g:.1f} GFLOP, {g / sec:.0f} GFLOP/s")
        print(f"unbarriered pass: {pc.med(res['unbarriered_ms']):.0f} ms")
    if "profile_self_cpu_s" in res:
        for k, v in res["profile_self_cpu_s"].items():
            print(f"  {k:40s} {v:.3f} s")
    name = f"profile_3b_{args.impl}_d{args.lm_layers}_{args.vision_layers}"
    pc.write_result(args.out or name, res)


if __name__ == "__main__":
    main()
