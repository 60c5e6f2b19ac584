"""LoRA on 3B- and 7B-shaped Qwen2.5-VL folders: training steps/s, peak memory, and what an
adapter costs at inference.

    python bench/lora_gpu.py --shape 3b --shape 7b           # on the device (GPU)
    python bench/lora_gpu.py --shape tiny --steps 4          # smoke run on the CPU

For each shape it builds (once, cached under .cache/bench-models/) a model folder with random
weights (`tiny_models.ensure_model`; bf16 storage; the head is tied for both shapes, so the 7B
shape has ~0.5B fewer parameters than Qwen2.5-VL-7B), loads it in the real `Inspector`, and
with a one-template prompt set whose pixel budget is 448x448 (256 image tokens):

  train    `train_lora` (mlx-vlm's trainer, LoRA rank 8 on every language linear layer) on
           demo frames resized to 448x448: steps/s after the first steps (warm-up), peak memory;
  infer    `Inspector.inspect` latency, median of --repeat after warm-up: base, the adapter
           then, in rounds, the base and the adapter in each mode the GPU pass has (merged
           into its own weights / low-rank terms), switching with an `AdapterSet` before
           every request as per-template routing does: overhead = median over rounds of
           adapter/base; the memory each mode's folded adapter holds; the base after
           switching back (its probabilities must equal the first base run's, bit for bit).

Prints a table and writes JSON (--out, default bench/results/lora_gpu_<device>.json).
Speed does not depend on weight values, so random weights measure what real ones would.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIDE = 448
TEMPLATE = """name = "bench_check"
description = "LoRA benchmark question."
question = "Is the nozzle tip centred on the crosshair? Answer YES or NO."
max_pixels = 200704
"""


def _spec(shape: str, lm_layers: int | None, vision_layers: int | None) -> Any:
    from dataclasses import replace

    from pnp_vision.devtools.tiny_models import QwenSpec

    shapes = {
        "3b": dict(hidden=2048, layers=36, heads=16, kv_heads=2, intermediate=11008),
        "7b": dict(hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944),
    }
    if shape == "tiny":
        spec = QwenSpec(max_pixels=SIDE * SIDE)
    else:
        spec = QwenSpec(
            vocab_size=151936,
            mrope_section=(16, 24, 24),
            vision_hidden=1280,
            vision_depth=32,
            vision_heads=16,
            vision_intermediate=3420,
            fullatt_blocks=(7, 15, 23, 31),
            max_pixels=SIDE * SIDE,
            storage_dtype="bfloat16",
            **shapes[shape],
        )
    if lm_layers:
        spec = replace(spec, layers=lm_layers)
    if vision_layers:
        blocks = tuple(b for b in spec.fullatt_blocks if b < vision_layers) or (vision_layers - 1,)
        spec = replace(spec, vision_depth=vision_layers, fullatt_blocks=blocks)
    return spec


def _frames(n: int) -> list[Any]:
    import cv2

    files = sorted((ROOT / "recordings" / "demo").glob("*nozzle_tip.png"))
    return [cv2.resize(cv2.imread(str(files[i % len(files)])), (SIDE, SIDE)) for i in range(n)]


def _median_ms(fn: Any, repeat: int) -> float:
    fn()  # warm-up (and, on GPUs, the compile of a new trace)
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_shape(shape: str, args: argparse.Namespace, prompts: Path) -> dict[str, Any]:
    import mlx.core as mx

    from pnp_vision.devtools.tiny_models import ensure_model
    from pnp_vision.inspect import Inspector, Question, TemplateSet
    from pnp_vision.inspect import adapters as inspect_adapters
    from pnp_vision.inspect.models.qwen2_5_vl import language
    from pnp_vision.teach import lora

    t0 = time.perf_counter()
    spec = _spec(shape, args.lm_layers, args.vision_layers)
    model_dir = ensure_model("qwen2_5_vl", spec, ROOT / ".cache" / "bench-models", prompts)
    build_s = time.perf_counter() - t0
    inspector = Inspector(model_dir, TemplateSet.load(prompts))
    frames = _frames(args.examples)
    examples = [
        lora.Example(f, "bench_check", {}, "YES" if i % 2 else "NO") for i, f in enumerate(frames)
    ]
    question = [Question(template="bench_check")]

    def infer() -> dict[str, float]:
        return inspector.inspect(frames[0], question)[0].probabilities

    base_probs = infer()
    base_ms = _median_ms(infer, args.repeat)

    stamps: list[float] = []
    out = Path(tempfile.mkdtemp(prefix=f"lora-{shape}-"))
    mx.reset_peak_memory()
    memory_before = mx.get_active_memory()
    quiet = contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext()
    with quiet:
        report = lora.train_lora(
            model_dir,
            examples,
            out,
            rank=args.rank,
            steps=args.steps,
            lr=1e-4,
            holdout=0.0,
            inspector=inspector,
            progress=lambda _line: stamps.append(time.perf_counter()),
        )
    peak = mx.get_peak_memory()
    warm = min(args.warmup_steps, len(stamps) - 2)
    steps_per_s = (len(stamps) - 1 - warm) / (stamps[-1] - stamps[warm])

    # One AdapterSet holding the adapter once per mode (merged / low-rank on the fused GPU
    # pass; mlx-vlm's LoRA layers elsewhere), then rounds that run base and each mode in turn,
    # switching before every request as per-template routing does: the ratio per round
    # cancels the machine's drift, the median of the rounds is reported.
    lm = inspector.model.language_model
    merge_default = inspector.runtime.merge_adapters
    fused = language.fused(lm) is not None
    modes = {"merged": True, "low_rank": False} if fused else {"mlx_vlm_layers": None}
    adapters = inspect_adapters.AdapterSet(inspector.model, model_dir, dict.fromkeys(modes, out))
    fold_ms, fold_gib = {}, {}
    for name, merge in modes.items():
        if fused:
            language.fuse(lm, merge_adapters=merge)
        before, t1 = mx.get_active_memory(), time.perf_counter()
        adapters.activate(name)  # the first activation folds the adapter (kept for later ones)
        fold_ms[name] = (time.perf_counter() - t1) * 1e3
        fold_gib[name] = round((mx.get_active_memory() - before) / 1024**3, 3)
        adapters.activate(None)
    if fused:
        language.fuse(lm, merge_adapters=merge_default)
    order = [None, *modes]
    times: dict[str | None, list[float]] = {m: [] for m in order}
    switches = []
    for round_ in range(args.repeat + 2):
        for mode in order:
            t0 = time.perf_counter()
            adapters.activate(mode)
            t1 = time.perf_counter()
            infer()
            if round_ >= 2:  # two warm-up rounds (compiles of new traces)
                times[mode].append((time.perf_counter() - t1) * 1e3)
                switches.append((t1 - t0) * 1e3)
    adapters.activate(None)
    identical = infer() == base_probs
    rounds = range(args.repeat)
    ratio = {m: statistics.median(times[m][i] / times[None][i] for i in rounds) for m in modes}
    adapter_ms = {m: statistics.median(times[m]) for m in modes}
    after_ms = statistics.median(times[None])
    gib = 1024**3
    return {
        "shape": shape,
        "lm_layers": spec.layers,
        "vision_layers": spec.vision_depth,
        "image": f"{SIDE}x{SIDE}",
        "folder_build_s": build_s,
        "compute_dtype": inspector.tuning.compute_dtype,
        "rank": args.rank,
        "steps": args.steps,
        "examples": len(examples),
        "loss_first": report.losses[0],
        "loss_last": report.losses[-1],
        "steps_per_s": steps_per_s,
        "peak_memory_gib": peak / gib,
        "memory_before_training_gib": memory_before / gib,
        "infer_base_ms": base_ms,
        "adapters_merged_by_default": merge_default,
        "infer_base_interleaved_ms": after_ms,
        "infer_adapter_ms": adapter_ms,
        "adapter_overhead_pct": {m: round(100 * (r - 1), 1) for m, r in ratio.items()},
        "adapter_fold_ms": fold_ms,
        "adapter_memory_gib": fold_gib,
        "switch_ms": statistics.median(switches),
        "base_bit_identical_after_unload": identical,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", choices=("tiny", "3b", "7b"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--lm-layers", type=int, help="fewer language layers (quick runs)")
    parser.add_argument("--vision-layers", type=int, help="fewer vision blocks (quick runs)")
    parser.add_argument("--quiet", action="store_true", help="hide mlx-vlm's per-step report")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()
    import mlx.core as mx

    device = "gpu" if mx.default_device().type == mx.DeviceType.gpu else "cpu"
    prompts = Path(tempfile.mkdtemp(prefix="lora-bench-prompts-"))
    (prompts / "bench_check.toml").write_text(TEMPLATE)
    rows = [run_shape(shape, args, prompts) for shape in args.shape or ["3b", "7b"]]
    columns = (
        ("shape", "{}"),
        ("steps_per_s", "{:.2f}"),
        ("peak_memory_gib", "{:.1f}"),
        ("loss_first", "{:.3f}"),
        ("loss_last", "{:.3f}"),
        ("infer_base_ms", "{:.1f}"),
        ("adapter_overhead_pct", "{}"),
        ("adapter_memory_gib", "{}"),
        ("switch_ms", "{:.2f}"),
        ("base_bit_identical_after_unload", "{}"),
    )
    print(" | ".join(name for name, _ in columns))
    for row in rows:
        print(" | ".join(fmt.format(row[name]) for name, fmt in columns))
    out = args.out or Path(os.environ.get("PNP_BENCH_OUT", ROOT / "bench" / "results"))
    if out.suffix != ".json":
        out = out / f"lora_gpu_{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"device": device, "platform": platform.platform(), "mlx": mx.__version__}
    out.write_text(json.dumps({"info": info, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
