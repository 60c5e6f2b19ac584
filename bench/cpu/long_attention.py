"""One mllama-11B vision attention (16 heads x 6,432 tokens x 80, one softmax over all 4 tiles)
on the CPU: `fastmath.attention` against PyTorch's fused sdpa, with and without the additive
mask, plus the layer's biggest GEMM for scale, same process, same threads.

    python bench/cpu/long_attention.py --threads 1

Prints a table, writes bench/results/long_attention.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perf_common as pc

HEADS, TOKENS, DIM, WIDTH, MLP = 16, 6432, 80, 1280, 5120


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    pc.mlx_threads(args.threads)
    import mlx.core as mx
    import numpy as np
    import torch

    from pnp_vision.inspect import fastmath

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, HEADS, TOKENS, DIM), dtype=np.float32) for _ in range(3))
    mask = np.zeros((1, 1, TOKENS, TOKENS), np.float32)
    x = rng.standard_normal((TOKENS, WIDTH), dtype=np.float32)
    w = rng.standard_normal((WIDTH, MLP), dtype=np.float32)
    mq, mk, mv, mm, mxx, mw = map(mx.array, (q, k, v, mask, x, w))
    tq, tk, tv, tm, tx, tw = map(torch.from_numpy, (q, k, v, mask, x, w))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    scale = DIM**-0.5
    attn_gflop = 4 * HEADS * TOKENS * TOKENS * DIM / 1e9
    gemm_gflop = 2 * TOKENS * WIDTH * MLP / 1e9
    rows = []

    def row(case: str, gflop: float, ours: Callable[[], object], theirs: Callable[[], object]):
        a = best_ms(ours, args.repeat)
        b = best_ms(theirs, args.repeat)
        rows.append({"case": case, "mlx ms": a, "torch ms": b, "torch/mlx": b / a,
                     "mlx GFLOP/s": gflop / a * 1e3, "torch GFLOP/s": gflop / b * 1e3})  # fmt: skip
        print(pc.table(rows[-1:], list(rows[-1])), flush=True)

    row("attention + mask", attn_gflop,
        lambda: mx.eval(fastmath.attention(mq, mk, mv, scale, mm)),
        lambda: sdpa(tq, tk, tv, attn_mask=tm, scale=scale))  # fmt: skip
    row("attention", attn_gflop,
        lambda: mx.eval(fastmath.attention(mq, mk, mv, scale)),
        lambda: sdpa(tq, tk, tv, scale=scale))  # fmt: skip
    row("GEMM 6432x1280x5120", gemm_gflop, lambda: mx.eval(mxx @ mw), lambda: tx @ tw)
    print(pc.table(rows, list(rows[0])))
    path = pc.write_result("long_attention", {"threads": args.threads, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
