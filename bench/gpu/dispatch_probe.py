"""Where a compiled GPU inspection's time goes: host dispatch, kernels, or waiting.

    python bench/gpu/dispatch_probe.py --shape 7b            # the table + JSON
    python bench/gpu/dispatch_probe.py --env MLX_MAX_OPS_PER_BUFFER=100 ...   # one variant

For the tuned model (random weights, 448x448, 304-token language pass) it times, medians of
`--repeat`: the compiled vision pass and the compiled decoder layers, each as "dispatch" (until
`mx.async_eval` returns: the host building and queueing every kernel) and "wall" (until the
result is ready); both chained as one lazy graph; one op's cost (a chain of tiny adds); and the
GEMMs of one layer of each at their real shapes in MLX and in PyTorch (cuBLAS both), TFLOP/s.
Dispatch near wall means the host is the bottleneck (fewer ops pay); wall far above the GEMM
sum means time outside the matmuls. `--ncu-child` runs one vision + language pass between
cudaProfilerStart/Stop, for `ncu --profile-from-start off`; `--ncu-summary CSV` sums its kernels.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import glob
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_common as pc


def _model(shape: str):
    import mlx.core as mx

    from pnp_vision.inspect.models.qwen2_5_vl.language import layers_pass, mrope_positions

    s = pc.shape(shape)
    model = pc.build_mlx(s, "bfloat16")
    pc.tune(model, "auto")
    p = pc.prompt(448)
    px = mx.array(pc.pixels(p)).astype(mx.bfloat16)
    grid = mx.array([p.grid])
    lm = model.language_model
    ids = [*p.ids(), p.ids()[-1]]  # 304: the engine's bucket
    pos, _ = mrope_positions(ids, [p.grid], pc.IMAGE_TOKEN, 2)
    embeds = mx.random.normal((1, len(ids), s.lm["hidden_size"])).astype(mx.bfloat16)
    layers = layers_pass(lm, True)
    return model, px, grid, embeds, pos, layers, s


def _times(fn, repeat: int) -> dict[str, float]:
    """fn() -> lazy outputs; medians of dispatch (async_eval returned) and wall (ready)."""
    import mlx.core as mx

    for _ in range(3):
        mx.eval(fn())
    disp, wall = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        mx.async_eval(out)
        t1 = time.perf_counter()
        mx.eval(out)
        t2 = time.perf_counter()
        disp.append((t1 - t0) * 1e3)
        wall.append((t2 - t0) * 1e3)
    return {"dispatch_ms": round(pc.med(disp), 3), "wall_ms": round(pc.med(wall), 3)}


def _gemm_shapes(s: pc.Shape, n_text: int = 304, n_patch: int = 1024) -> dict[str, tuple]:
    d, i = s.lm["hidden_size"], s.lm["intermediate_size"]
    kv = s.lm["num_key_value_heads"] * d // s.lm["num_attention_heads"]
    dv, iv = s.vision["hidden_size"], s.vision["intermediate_size"]
    t, v = n_text, n_patch
    return {
        "lm q": (t, d, d), "lm k|v": (t, d, kv), "lm qkv fused": (t, d, d + 2 * kv),
        "lm o": (t, d, d), "lm gate|up": (t, d, i), "lm gate+up fused": (t, d, 2 * i),
        "lm down": (t, i, d),
        "vis qkv": (v, dv, 3 * dv), "vis proj": (v, dv, dv), "vis gate|up": (v, dv, iv),
        "vis gate+up fused": (v, dv, 2 * iv), "vis down": (v, iv, dv),
    }  # fmt: skip


def _gemms_mlx(shapes: dict[str, tuple], reps: int = 20) -> dict[str, float]:
    """us per GEMM, `reps` independent products in one evaluation (launch gaps amortized)."""
    import mlx.core as mx

    out = {}
    for name, (m, k, n) in shapes.items():
        xs = [mx.random.normal((m, k)).astype(mx.bfloat16) for _ in range(reps)]
        w = mx.random.normal((n, k)).astype(mx.bfloat16) * 0.02
        mx.eval(xs, w)
        run = lambda xs=xs, w=w: [x @ w.T for x in xs]  # noqa: E731
        t = _times(run, 10)["wall_ms"]
        out[name] = round(t * 1e3 / reps, 2)
    return out


def _gemms_torch(shapes: dict[str, tuple], reps: int = 20) -> dict[str, float]:
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    out = {}
    for name, (m, k, n) in shapes.items():
        xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(reps)]
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        for _ in range(3):
            [x @ w.T for x in xs]
        torch.cuda.synchronize()
        ts = []
        for _ in range(10):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            [x @ w.T for x in xs]
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        out[name] = round(pc.med(ts) * 1e3 / reps, 2)
    return out


def _op_cost(n: int = 400) -> dict[str, float]:
    """us per tiny op, eager (each op a kernel) and inside mx.compile (fused)."""
    import mlx.core as mx

    x = mx.ones((1024,))

    def chain(x):
        for j in range(n):
            x = x * 1.0001 if j % 2 else x + 1.0
        return x

    eager = _times(lambda: chain(x), 10)
    comp = mx.compile(chain)
    fused = _times(lambda: comp(x), 10)
    ex = mx.ones((1024, 1280)).astype(mx.bfloat16)
    gather = mx.array(list(range(1024))[::-1])
    takes = _times(lambda: [ex[gather] for _ in range(n)], 5)  # independent non-fusable ops
    return {
        "eager_dispatch_us": round(eager["dispatch_ms"] * 1e3 / n, 2),
        "eager_wall_us": round(eager["wall_ms"] * 1e3 / n, 2),
        "compiled_wall_ms": fused["wall_ms"],
        "gather_dispatch_us": round(takes["dispatch_ms"] * 1e3 / n, 2),
        "gather_wall_us": round(takes["wall_ms"] * 1e3 / n, 2),
    }


def measure(args: argparse.Namespace) -> dict:
    import mlx.core as mx

    model, px, grid, embeds, pos, layers, s = _model(args.shape)
    tower = model.vision_tower
    res = {"env": {k: v for k, v in os.environ.items() if k.startswith("MLX_")}}
    res["vision"] = _times(lambda: tower(px, grid), args.repeat)
    res["language"] = _times(lambda: layers(embeds, pos), args.repeat)

    def chained():
        feats = tower(px, grid)
        e = mx.concatenate([embeds[:, :21], feats[None], embeds[:, 277:]], axis=1)
        return layers(e, pos)

    res["vision+language"] = _times(chained, args.repeat)
    if not args.quick:
        res["op_cost"] = _op_cost()
        shapes = _gemm_shapes(s)
        res["gemm_us_mlx"] = _gemms_mlx(shapes)
        pc.free()
        res["gemm_us_torch"] = _gemms_torch(shapes)
        res["gemm_tflops_mlx"] = {
            k: round(2 * m * kk * n / (res["gemm_us_mlx"][k] * 1e-6) / 1e12, 1)
            for k, (m, kk, n) in shapes.items()
        }
    return res


def ncu_child(args: argparse.Namespace) -> None:
    """One warm vision + language pass inside the profiler's window."""
    import mlx.core as mx

    model, px, grid, embeds, pos, layers, _ = _model(args.shape)
    tower = model.vision_tower
    for _ in range(3):
        mx.eval(tower(px, grid), layers(embeds, pos))
    libs = [*sorted(glob.glob("/usr/local/cuda*/lib64/libcudart.so*")), "libcudart.so"]
    cudart = None
    for lib in libs:
        try:
            cudart = ctypes.CDLL(lib)
            break
        except OSError:
            continue
    if cudart is None:
        try:
            import torch  # its own cudart

            cudart = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib",
                                                        "libcudart*"))[0])  # fmt: skip
        except Exception as exc:
            raise SystemExit(f"no libcudart found: {exc}") from exc
    mx.synchronize()
    cudart.cudaProfilerStart()
    mx.eval(tower(px, grid))
    mx.eval(layers(embeds, pos))
    mx.synchronize()
    cudart.cudaProfilerStop()


def ncu_summary(path: str) -> dict:
    """Kernel count, total time and the top kernels from `ncu --csv` output."""
    rows = []
    with open(path) as f:
        lines = [ln for ln in f if ln.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(r.get("Metric Unit"), 1.0)
        rows.append((r["Kernel Name"][:90], value * scale))
    by: dict[str, list[float]] = {}
    for name, us in rows:
        by.setdefault(name, []).append(us)
    top = sorted(by.items(), key=lambda kv: -sum(kv[1]))[:25]
    return {
        "kernels": len(rows),
        "total_ms": round(sum(us for _, us in rows) / 1e3, 3),
        "top": [{"kernel": k, "count": len(v), "ms": round(sum(v) / 1e3, 3)} for k, v in top],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="7b")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="passes only (variants)")
    ap.add_argument("--variants", default="", help="comma list of ENV=VALUE, each a child run")
    ap.add_argument("--ncu-child", action="store_true")
    ap.add_argument("--ncu-summary")
    ap.add_argument("--out", default="dispatch_probe")
    args = ap.parse_args()
    if args.ncu_child:
        return ncu_child(args)
    if args.ncu_summary:
        res = ncu_summary(args.ncu_summary)
        print(json.dumps(res, indent=1))
        pc.write_result(args.out, res)
        return
    if os.environ.get("PNP_PROBE_CHILD"):
        return pc.report(measure(args))
    results = {"default": pc.child_result(
        [sys.executable, __file__, "--shape", args.shape, "--repeat", str(args.repeat)],
        env={**os.environ, "PNP_PROBE_CHILD": "1"},
    )}  # fmt: skip
    print(json.dumps(results["default"]), flush=True)
    for v in filter(None, args.variants.split(",")):
        key, value = v.split("=", 1)
        try:
            results[v] = pc.child_result(
                [sys.executable, __file__, "--shape", args.shape, "--quick",
                 "--repeat", str(args.repeat)],
                env={**os.environ, "PNP_PROBE_CHILD": "1", key: value},
            )  # fmt: skip
        except Exception as exc:
            results[v] = {"error": str(exc)[-500:]}
        print(v, json.dumps(results[v]), flush=True)
    rows = []
    for name, r in results.items():
        row = {"variant": name}
        for part in ("vision", "language", "vision+language"):
            if part in r:
                row[f"{part} dispatch"] = r[part]["dispatch_ms"]
                row[f"{part} wall"] = r[part]["wall_ms"]
        rows.append(row)
    cols = ["variant"] + [f"{p} {w}" for p in ("vision", "language", "vision+language")
                          for w in ("dispatch", "wall")]  # fmt: skip
    print(pc.table(rows, cols))
    d = results["default"]
    if "gemm_us_mlx" in d:
        torch_us, rate = d["gemm_us_torch"], d["gemm_tflops_mlx"]
        g = [
            {"gemm": k, "mlx us": v, "torch us": torch_us.get(k, ""), "mlx TFLOP/s": rate[k]}
            for k, v in d["gemm_us_mlx"].items()
        ]
        print(pc.table(g, ["gemm", "mlx us", "torch us", "mlx TFLOP/s"]))
        print("op cost:", d["op_cost"])
    print("wrote", pc.write_result(args.out, {"shape": args.shape, "results": results}))


if __name__ == "__main__":
    main()
