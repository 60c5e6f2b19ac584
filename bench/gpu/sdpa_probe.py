"""Find which attention calls kill the process on CUDA (design.md: the Qwen2.5-VL vision tower
died with SIGFPE inside mx.fast.scaled_dot_product_attention).

    python bench/gpu/sdpa_probe.py            # every case, each in its own process; a table
    python bench/gpu/sdpa_probe.py CASE       # one case, in this process

Each case calls attention with one shape/dtype/layout and compares with float32 attention spelled
out as matmuls. A child that dies by a signal is reported with the signal's name. With --gdb,
the first case that dies is run again under cuda-gdb for a native backtrace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

# name: (dtype, batch, heads, length, head_dim, layout, extra env)
CASES: dict[str, tuple[str, int, int, int, int, str, dict[str, str]]] = {
    "bf16_d80_L64_b1": ("bfloat16", 1, 16, 64, 80, "contiguous", {}),
    "bf16_d80_L64_b1_splitview": ("bfloat16", 1, 16, 64, 80, "splitview", {}),
    "bf16_d80_L1024_b1": ("bfloat16", 1, 16, 1024, 80, "contiguous", {}),
    "bf16_d80_L64_b16": ("bfloat16", 16, 16, 64, 80, "contiguous", {}),
    "bf16_d80_L64_b16_mask": ("bfloat16", 16, 16, 64, 80, "mask", {}),
    "bf16_d80pad128_L64_b16": ("bfloat16", 16, 16, 64, 80, "pad128", {}),
    "bf16_d64_L64_b16": ("bfloat16", 16, 16, 64, 64, "contiguous", {}),
    "bf16_d96_L64_b16": ("bfloat16", 16, 16, 64, 96, "contiguous", {}),
    "bf16_d128_L64_b16": ("bfloat16", 16, 16, 64, 128, "contiguous", {}),
    "bf16_d72_L64_b16": ("bfloat16", 16, 16, 64, 72, "contiguous", {}),
    "fp16_d80_L64_b16": ("float16", 16, 16, 64, 80, "contiguous", {}),
    "fp32_d80_L64_b16": ("float32", 16, 16, 64, 80, "contiguous", {}),
    "bf16_d80_L64_b16_nocudnn": (
        "bfloat16", 16, 16, 64, 80, "contiguous", {"MLX_CUDA_USE_CUDNN_SDPA": "0"}
    ),
    "bf16_d80_L1_b1_decode": ("bfloat16", 1, 16, 1, 80, "decode", {}),
    # q, k, v laid out exactly as mlx-vlm's vision Attention hands them over (v is a view into
    # the fused qkv output: batch stride 1280, sequence stride 3840), one window and the whole
    "bf16_vlm_views_L64": ("bfloat16", 1, 16, 64, 80, "vlmviews", {}),
    "bf16_vlm_views_L1024": ("bfloat16", 1, 16, 1024, 80, "vlmviews", {}),
    # the same v strides one at a time: sequence stride 3840 with an ordinary batch stride
    "bf16_v_seqstride_L64": ("bfloat16", 1, 16, 64, 80, "vseqstride", {}),
    "bf16_vlm_views_L64_vcopy": ("bfloat16", 1, 16, 64, 80, "vlmviews_vcopy", {}),
    "bf16_vlm_views_L64_d64": ("bfloat16", 1, 16, 64, 64, "vlmviews", {}),
    "vlm_tower_bf16": ("bfloat16", 0, 0, 0, 0, "tower", {}),
    # the tower again, each attention call's inputs evaluated first and the call logged, to see
    # which call dies; then with v (a strided view into qkv) or q, k, v made contiguous first
    "vlm_tower_trace": ("bfloat16", 0, 0, 0, 0, "tower:trace", {}),
    "vlm_tower_vcontig": ("bfloat16", 0, 0, 0, 0, "tower:vcontig", {}),
    "vlm_tower_allcontig": ("bfloat16", 0, 0, 0, 0, "tower:allcontig", {}),
    "vlm_tower_bf16_nocudnn": ("bfloat16", 0, 0, 0, 0, "tower", {"MLX_CUDA_USE_CUDNN_SDPA": "0"}),
}  # fmt: skip


def _wrap_tower_sdpa(mode: str) -> None:
    """Route mlx-vlm vision's mx.fast.scaled_dot_product_attention through a wrapper."""
    import mlx.core as mx
    from mlx_vlm.models.qwen2_5_vl import vision

    real = mx.fast.scaled_dot_product_attention
    calls = [0]

    def sdpa(q, k, v, scale, mask=None, **kw):
        if mode == "trace":
            mx.eval(q, k, v)
            print(f"call {calls[0]} q{q.shape} k{k.shape} v{v.shape} {q.dtype}", flush=True)
        elif mode == "vcontig":
            v = mx.contiguous(v)
        elif mode == "allcontig":
            q, k, v = (mx.contiguous(a) for a in (q, k, v))
        calls[0] += 1
        out = real(q, k, v, scale=scale, mask=mask, **kw)
        if mode == "trace":
            mx.eval(out)
            print(f"call {calls[0] - 1} done", flush=True)
        return out

    class _Fast:
        scaled_dot_product_attention = staticmethod(sdpa)

    class _Mx:
        fast = _Fast()

        def __getattr__(self, name):
            return getattr(mx, name)

    vision.mx = _Mx()


def _tower(dtype: str, mode: str = "") -> str:
    """mlx-vlm's own Qwen2.5-VL vision tower, full width, 2 blocks (one windowed, one full)."""
    import mlx.core as mx
    from mlx_vlm.models.qwen2_5_vl.config import VisionConfig
    from mlx_vlm.models.qwen2_5_vl.vision import VisionModel

    if mode:
        _wrap_tower_sdpa(mode)
    vt = VisionModel(VisionConfig(depth=2, out_hidden_size=2048, fullatt_block_indexes=[1]))
    vt.apply(lambda a: a.astype(getattr(mx, dtype)))
    px = mx.random.normal((1024, 1176)).astype(getattr(mx, dtype))
    out = vt(px, mx.array([[1, 32, 32]]))
    mx.eval(out)
    return f"ok tower out {out.shape} finite={bool(mx.isfinite(out.astype(mx.float32)).all())}"


def run_case(name: str) -> str:
    import mlx.core as mx

    dtype, b, h, n, d, layout, _ = CASES[name]
    if layout.startswith("tower"):
        return _tower(dtype, layout.partition(":")[2])
    mx.random.seed(1)
    dt = getattr(mx, dtype)
    scale = d**-0.5
    mask = None
    kv_len = 64 if layout == "decode" else n
    if layout.startswith("vlmviews"):
        qkv = mx.random.normal((1024, 3 * h * d)).astype(dt).reshape(1024, 3, h, d)
        q, k, v = mx.split(qkv.transpose(1, 0, 2, 3), 3)
        q, k = q * 1, k * 1  # rotary embedding makes new, contiguous q and k; v stays a view
        if layout.endswith("vcopy"):
            v = mx.contiguous(v)
        q, k, v = (a.transpose(0, 2, 1, 3) for a in (q, k, v))
        if n < 1024:
            q, k, v = (mx.split(a, list(range(n, 1024, n)), axis=2)[1] for a in (q, k, v))
    elif layout == "vseqstride":
        q, k = (mx.random.normal((1, h, n, d)).astype(dt) for _ in "qk")
        v = mx.random.normal((1, n, 3, h, d)).astype(dt)[:, :, 2].transpose(0, 2, 1, 3)
    elif layout == "splitview":  # the views mlx-vlm hands over: windows cut out of (1, H, 1024, D)
        big = [mx.random.normal((1, 1024, h, d)).astype(dt).transpose(0, 2, 1, 3) for _ in "qkv"]
        q, k, v = (mx.split(a, list(range(64, 1024, 64)), axis=2)[1] for a in big)
    else:
        q = mx.random.normal((b, h, n, d)).astype(dt)
        k, v = (mx.random.normal((b, h, kv_len, d)).astype(dt) for _ in "kv")
    if layout == "mask":
        keep = mx.arange(n)[None, :] < mx.array([n - 3 * (i % 4) for i in range(b)])[:, None]
        mask = mx.where(keep, 0.0, -mx.inf).astype(dt)[:, None, None, :]
    if layout == "pad128":
        w = [(0, 0)] * 3 + [(0, 128 - d)]
        out = mx.fast.scaled_dot_product_attention(
            mx.pad(q, w), mx.pad(k, w), mx.pad(v, w), scale=scale
        )[..., :d]
    else:
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    mx.eval(out)
    f = [a.astype(mx.float32) for a in (q, k, v)]
    s = (f[0] * scale) @ f[1].swapaxes(-1, -2)
    if mask is not None:
        s = s + mask.astype(mx.float32)
    ref = mx.softmax(s, axis=-1) @ f[2]
    err = float(mx.linalg.norm(out.astype(mx.float32) - ref) / mx.linalg.norm(ref))
    return f"ok rel_err={err:.2e}"


def _describe(rc: int) -> str:
    if rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return f"exit {rc}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in CASES:
        print(run_case(sys.argv[1]), flush=True)
        return
    use_gdb = "--gdb" in sys.argv
    results = {}
    first_dead = None
    for name, case in CASES.items():
        env = {**os.environ, **case[-1]}
        try:
            proc = subprocess.run(
                [sys.executable, __file__, name], env=env, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            status = lines[-1] if proc.returncode == 0 and lines else _describe(proc.returncode)
            if proc.returncode != 0 and lines:
                status += " | " + " / ".join(x[:100] for x in lines[-3:])
            if proc.returncode < 0 and first_dead is None:
                first_dead = name
        except subprocess.TimeoutExpired:
            status = "timeout"
        results[name] = status
        print(f"{name:30s} {status}", flush=True)
    if use_gdb and first_dead and _which("cuda-gdb"):
        cmd = ["cuda-gdb", "-q", "-batch", "-ex", "set pagination off", "-ex", "run",
               "-ex", "bt 40", "--args", sys.executable, __file__, first_dead]  # fmt: skip
        env = {**os.environ, **CASES[first_dead][-1]}
        try:
            gdb = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
            trace = gdb.stdout[-6000:] + gdb.stderr[-2000:]
        except subprocess.TimeoutExpired:
            trace = "cuda-gdb timed out"
        results["_backtrace_case"] = first_dead
        results["_backtrace"] = trace
        print(f"--- backtrace of {first_dead} ---\n{trace[-4000:]}", flush=True)
    out = Path(os.environ.get("PNP_BENCH_OUT", "bench/results"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "sdpa_probe.json").write_text(json.dumps(results, indent=2))


def _which(cmd: str) -> bool:
    from shutil import which

    return which(cmd) is not None


if __name__ == "__main__":
    main()
