"""Plain mlx-vlm against the optimized path, side by side in one process, on one device.

    python bench/perf_inspect.py --shape 3b --checkpoint 4bit --lm-layers 2 --vision-layers 2

For one Qwen2.5-VL shape (random weights) and the synthetic 448x448 YES/NO prompt it times:
  plain       mlx-vlm as shipped on the checkpoint as loaded (the whole model, every position's
              logits, windows one by one), after one warm-up;
  fast        after `tune_model` (device dtype, batched-window vision, head on the last
              position for the answer rows only); probabilities compared with plain;
  vision      the vision tower alone, plain and fast;
  questions   N questions on one frame: one question, N separate calls, and the shared-prefix
              batch (`FastInspector.many`);
  pixels      (--pixel-table) latency of the fast path per final image size, from a max_pixels
              budget and an ROI size, the way the engine's image prep resizes;
  engine      (--engine) the real `Inspector.inspect` on a side x side frame around the same
              model: one question and N questions in one call (one image view: the engine packs
              them into one forward), probabilities compared with plain mlx-vlm on the very
              prompt and pixels the engine uses (mlx-vlm's own processor, its own vision tower).
Writes JSON (--out, default bench/results/perf_inspect_<shape>_<device>.json).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc

from pnp_vision.inspect.runtime import setup_runtime

FRAME = (1280, 960)
ROIS = {"frame 1280x960": (1280, 960), "roi 640x480": (640, 480), "roi 320x240": (320, 240),
        "roi 160x160": (160, 160)}  # fmt: skip
BUDGETS = (200_704, 401_408, 802_816)  # 448^2 px, 2x, 4x
ENGINE_TEMPLATES = ("nozzle_alignment", "part_on_nozzle", "tombstone", "feeder_pocket_empty")


def fit(width: int, height: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Qwen's resize rule: multiples of 28, aspect kept, area under the budget."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    return w, h


def patch_plain_vision(how: str) -> None:
    """Make mlx-vlm's own vision tower survive on CUDA, for the unoptimized reference: 'matmul'
    computes window attention for head dims other than 64/128 without mx.fast (what design.md
    did), 'none' leaves it alone."""
    if how == "none":
        return
    import mlx.core as mx
    from mlx_vlm.models.qwen2_5_vl import vision

    real = mx.fast.scaled_dot_product_attention

    def sdpa(q, k, v, scale, mask=None, **kw):
        if q.shape[-1] in (64, 128):
            return real(q, k, v, scale=scale, mask=mask, **kw)
        w = mx.softmax(((q * scale) @ k.swapaxes(-1, -2)).astype(mx.float32), axis=-1)
        return w.astype(v.dtype) @ v

    class _Fast:
        scaled_dot_product_attention = staticmethod(sdpa)

    class _Mx:
        fast = _Fast()

        def __getattr__(self, name: str) -> Any:
            return getattr(mx, name)

    vision.mx = _Mx()


def engine_inspector(model: Any, vocab_size: int, side: int, compute_dtype: str) -> Any:
    """The real `Inspector` around the benchmark's in-memory model. Its `load_model` reads a
    small real-vocabulary Qwen2.5-VL folder (tokenizer, processor, config; built once under
    .cache/) and hands back `model` in place of that folder's weights; tuning, adapter, image
    prep, grouping and scoring are the engine's own. The shipped YES/NO templates get one view
    (no ROI, a side x side budget) so that N questions form one group."""
    from pnp_vision.devtools.tiny_models import QwenSpec, ensure_model
    from pnp_vision.inspect import Inspector, Template, TemplateSet, loading

    spec = QwenSpec(vocab_size=vocab_size, real_vocab=True, max_pixels=side * side)
    folder = ensure_model("qwen2_5_vl", spec, root=pc.ROOT / ".cache" / "bench-models")
    shipped = TemplateSet.load(pc.ROOT / "prompts")
    templates = TemplateSet({
        name: Template.model_validate(
            {**shipped.get(name).model_dump(), "roi": None, "view": None, "max_pixels": side * side}
        )
        for name in ENGINE_TEMPLATES
    })  # fmt: skip
    real = loading.load_model

    def load(path: Path) -> tuple[Any, Any, dict[str, Any]]:
        _, processor, config = real(path)
        return model, processor, config

    loading.load_model = load
    try:
        return Inspector(folder, templates, compute_dtype=compute_dtype)
    finally:
        loading.load_model = real


def engine_phases(insp: Any, frame: Any, qs: list[Any], repeat: int) -> dict[str, float]:
    """Medians of the engine's steps one by one (the first question's view): host image prep,
    pixel upload and lookup, vision, prefix embedding, the language pass for 1 and N questions,
    and the decoder layers alone at the prefix length with no mask, a causal array mask, compiled
    and not (whether an array mask costs on this device)."""
    import mlx.core as mx
    import numpy as np

    from pnp_vision.inspect import imageprep
    from pnp_vision.inspect.models.qwen2_5_vl import language

    ad, t = insp._adapter, insp.templates.get(qs[0].template)
    times: dict[str, float] = {}

    def tm(key: str, fn: Any) -> Any:
        for _ in range(2):
            fn()
        xs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            xs.append((time.perf_counter() - t0) * 1e3)
        times[key] = round(pc.med(xs), 2)
        return fn()

    tm("to_pil", lambda: imageprep.to_pil(frame))  # what prep cost before keep_array
    view = tm("prepare", lambda: imageprep.prepare(frame, max_pixels=t.max_pixels, keep_array=True))
    inputs = tm("preprocess_host", lambda: ad.preprocess(view, t.max_pixels))
    tm("preprocess_eval", lambda: mx.eval(ad.preprocess(view, t.max_pixels).arrays["pixel_values"]))
    mx.eval(inputs.arrays["pixel_values"])

    def encode() -> None:
        ad.encode(inputs)
        mx.eval(inputs.features)

    tm("encode_eval", encode)
    items = insp._validate(qs)
    prefix = insp._shared_prefix(t.system, items, inputs)
    suffixes = [it.ids[len(prefix) :] for it in items]
    tokens = tuple(sorted({tok for it in items for tok in it.plan.first_tokens}))
    tm("prefix_embed_eval", lambda: mx.eval(ad._prefix(prefix, inputs)[0]))
    tm("lm_1q_eval", lambda: mx.eval(ad.packed_logits(prefix, suffixes[:1], inputs, tokens)))
    tm(f"lm_{len(qs)}q_eval", lambda: mx.eval(ad.packed_logits(prefix, suffixes, inputs, tokens)))
    embeds, pos, _ = ad._prefix(prefix, inputs)
    mx.eval(embeds, pos)
    n = embeds.shape[1]
    causal = np.where(np.tri(n, dtype=bool), 0.0, -np.inf).astype(np.float32)
    mask = mx.array(causal).astype(embeds.dtype)[None, None]
    lm = insp.model.language_model
    for compiled in (True, False):
        run = language.layers_pass(lm, compiled)
        tag = "compiled" if compiled else "eager"
        tm(f"layers_{n}_nomask_{tag}", lambda run=run: mx.eval(run(embeds, pos)))
        tm(f"layers_{n}_arraymask_{tag}", lambda run=run: mx.eval(run(embeds, pos, mask)))
    return times


def bench_engine(model: Any, vocab_size: int, args: argparse.Namespace) -> dict[str, Any]:
    """`Inspector.inspect` for 1 and N questions on one frame, and its probabilities against
    plain mlx-vlm. Leaves the model on mlx-vlm's own vision tower: run it last."""
    import mlx.core as mx
    import numpy as np

    from pnp_vision.inspect import Question, imageprep
    from pnp_vision.inspect.models.qwen2_5_vl import vision

    insp = engine_inspector(model, vocab_size, args.side, args.compute_dtype)
    frame = np.random.default_rng(0).integers(0, 256, (args.side, args.side, 3), dtype=np.uint8)
    n = max(1, args.questions)
    qs = [Question(template=ENGINE_TEMPLATES[i % len(ENGINE_TEMPLATES)]) for i in range(n)]
    out: dict[str, Any] = {"engine_tuning": insp.tuning.summary(), "engine_questions": n}
    phases = ("prep_ms", "vision_ms", "language_ms")

    sets = {"1q": qs[:1], "nq": qs}
    walls: dict[str, list[float]] = {k: [] for k in sets}
    splits: dict[str, list[dict[str, float]]] = {k: [] for k in sets}
    last: dict[str, list[Any]] = {}
    for i in range(args.repeat + 2):  # 2 warm-ups; 1 and N alternate so drift hits both alike
        for key in sorted(sets, reverse=i % 2 == 1):
            t0 = time.perf_counter()
            last[key] = insp.inspect(frame, sets[key])
            if i >= 2:
                walls[key].append((time.perf_counter() - t0) * 1e3)
                splits[key].append(
                    {k: sum(getattr(r.timings, k) for r in last[key]) for k in phases}
                )
    for key in sets:
        split = {k: pc.med([x[k] for x in splits[key]]) for k in phases}
        split["model_ms"] = pc.med([x["vision_ms"] + x["language_ms"] for x in splits[key]])
        out[f"engine_{key}_ms"], out[f"engine_{key}_split"] = walls[key], split
    got = last["1q"] + last["nq"]

    try:
        out["engine_phases"] = engine_phases(insp, frame, qs, args.repeat)
        print(f"engine phases (ms): {out['engine_phases']}", flush=True)
    except Exception as exc:  # diagnostics only: never lose the run for them
        print(f"engine phases failed: {type(exc).__name__}: {exc}", flush=True)

    vision.uninstall(model)  # the reference: mlx-vlm as shipped
    pil, lm = imageprep.to_pil(frame), model.language_model
    plain = []
    for q in qs:
        t = insp.templates.get(q.template)
        view = imageprep.prepare(pil, max_pixels=t.max_pixels)
        inputs = insp.processor(text=[insp.prompt(q)], images=[view], return_tensors="mlx")
        lm._position_ids = lm._rope_deltas = None
        logits = model(
            inputs["input_ids"],
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
        ).logits
        rows = logits[0, -1, insp.answer_plan(q.template).first_tokens].astype(mx.float32)
        plain.append(np.array(mx.softmax(rows)))
        out.setdefault("engine_plain_logits", []).append(np.array(rows).tolist())  # bf16 ulps
        out["engine_tokens"] = int(inputs["input_ids"].shape[1])
        out["engine_image_tokens"] = int(np.prod(inputs["image_grid_thw"].tolist()[0])) // 4

    def probs(r: Any) -> np.ndarray:
        return np.array([r.probabilities[a] for a in insp.answer_plan(r.template).answers])

    out["engine_plain_probs"] = [p.tolist() for p in plain]
    out["engine_probs"] = [probs(r).tolist() for r in got]
    out["engine_1q_prob_diff"] = float(np.abs(probs(got[0]) - plain[0]).max())
    out["engine_nq_prob_diff"] = float(
        max(np.abs(probs(r) - p).max() for r, p in zip(got[1:], plain, strict=True))
    )
    one = pc.med(out["engine_1q_ms"])
    split = {k: round(v, 1) for k, v in out["engine_1q_split"].items()}
    print(
        f"engine ({out['engine_tokens']} tokens): 1 question {one:.1f} ms {split}, "
        f"{n} questions {pc.med(out['engine_nq_ms']):.1f} ms "
        f"({pc.med(out['engine_nq_ms']) / one:.2f}x); "
        f"max |p - plain| {out['engine_1q_prob_diff']:.1e} / {out['engine_nq_prob_diff']:.1e}",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="3b")
    ap.add_argument("--lm-layers", type=int)
    ap.add_argument("--vision-layers", type=int)
    ap.add_argument(
        "--checkpoint", default="bf16", help="bf16 | fp32 | 4bit: the 'folder' as loaded"
    )
    ap.add_argument("--compute-dtype", default="auto")
    ap.add_argument("--side", type=int, default=448)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain-repeat", type=int, default=1)
    ap.add_argument("--plain-warmup", type=int, default=1)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--plain-vision-fix", default="none", choices=["none", "matmul"])
    ap.add_argument("--pixel-table", action="store_true")
    ap.add_argument("--engine", action="store_true", help="time Inspector.inspect (1 and N)")
    ap.add_argument("--out")
    args = ap.parse_args()

    setup_runtime()
    import mlx.core as mx
    import numpy as np

    from pnp_vision.inspect.models.qwen2_5_vl import vision

    patch_plain_vision(args.plain_vision_fix)
    device = setup_runtime().device
    s = pc.shape(args.shape, args.lm_layers, args.vision_layers)
    bits = 4 if args.checkpoint == "4bit" else None
    dtype = "float32" if args.checkpoint == "fp32" else "bfloat16"
    model = pc.build_mlx(s, dtype, quantize_bits=bits)
    p = pc.prompt(args.side, questions=args.questions)
    px = pc.pixels(p)
    res: dict[str, Any] = {
        "shape": s.name,
        "lm_layers": s.lm_layers,
        "vision_layers": s.vision_layers,
        "full_lm_layers": s.full_lm_layers,
        "full_vision_layers": s.full_vision_layers,
        "device": device,
        "checkpoint": args.checkpoint,
        "tokens": len(p.ids()),
        "image_tokens": p.prefix.count(pc.IMAGE_TOKEN),
        "mlx": mx.__version__,
    }
    ev = mx.eval
    grid = mx.array([p.grid])
    pxa = mx.array(px)

    def plain_vision():
        vt = model.vision_tower
        return vision.plain_forward(vt, pxa.astype(vt.patch_embed.proj.weight.dtype), grid)

    if not args.skip_plain:
        t = pc.timeit(
            lambda: pc.plain_inspect(model, p, px), args.plain_repeat, args.plain_warmup, ev
        )
        res["plain_ms"] = t
        res["plain_probs"] = np.array(pc.plain_inspect(model, p, px)).tolist()
        res["plain_vision_ms"] = pc.timeit(plain_vision, args.plain_repeat, args.plain_warmup, ev)
        print(f"plain {pc.med(t):.1f} ms  probs {res['plain_probs']}", flush=True)

    report = pc.tune(model, args.compute_dtype)
    res["tuning"] = report.summary()
    print(report.summary(), flush=True)
    fi = pc.FastInspector(model, p)

    def fast_vision():
        vt = model.vision_tower
        return vt(pxa.astype(vt.patch_embed.proj.weight.dtype), grid)

    res["fast_ms"] = pc.timeit(lambda: fi.one(px), args.repeat, 2, ev)
    res["fast_probs"] = np.array(fi.one(px)).tolist()
    res["fast_vision_ms"] = pc.timeit(fast_vision, args.repeat, 1, ev)
    res["compiled"] = fi.compiled
    print(f"fast {pc.med(res['fast_ms']):.1f} ms  probs {res['fast_probs']}", flush=True)
    if fi.compiled:  # what compiling pays: the same path op by op
        fast = vision.FastVision.of(model.vision_tower)
        fast.compiled = False
        eager = pc.FastInspector(model, p, compiled=False)
        res["fast_eager_ms"] = pc.timeit(lambda: eager.one(px), args.repeat, 1, ev)
        res["fast_eager_vision_ms"] = pc.timeit(fast_vision, args.repeat, 1, ev)
        fast.compiled = True
        print(f"fast, not compiled {pc.med(res['fast_eager_ms']):.1f} ms", flush=True)
    if "plain_probs" in res:
        res["max_prob_diff"] = float(
            np.abs(np.array(res["plain_probs"]) - np.array(res["fast_probs"])).max()
        )

    n = args.questions
    if n > 1:
        res["separate_ms"] = pc.timeit(
            lambda: [ev(fi.one(px, q)) for q in range(n)], args.repeat, 1, ev
        )
        res["shared_ms"] = pc.timeit(lambda: fi.many(px), args.repeat, 1, ev)
        res["packed_ms"] = pc.timeit(lambda: fi.packed(px), args.repeat, 1, ev)
        one = np.array([np.array(fi.one(px, q)) for q in range(n)])
        res["shared_vs_separate_prob_diff"] = float(np.abs(np.array(fi.many(px)) - one).max())
        res["packed_vs_separate_prob_diff"] = float(np.abs(np.array(fi.packed(px)) - one).max())
        print(
            f"{n} questions: separate {pc.med(res['separate_ms']):.1f} ms, "
            f"shared-prefix cache {pc.med(res['shared_ms']):.1f} ms, "
            f"packed {pc.med(res['packed_ms']):.1f} ms",
            flush=True,
        )

    if args.pixel_table:
        rows = []
        for budget in BUDGETS:
            for roi, (w, h) in ROIS.items():
                fw, fh = fit(w, h, budget)
                q = pc.prompt_grid(fh // 14, fw // 14)
                fq = pc.FastInspector(model, q)
                qpx = pc.pixels(q)
                t = pc.timeit(lambda fq=fq, qpx=qpx: fq.one(qpx), args.repeat, 1, ev)
                rows.append({"max_pixels": budget, "roi": roi, "image": f"{fw}x{fh}",
                             "image_tokens": fw * fh // 784, "ms": pc.med(t)})  # fmt: skip
                print(rows[-1], flush=True)
        res["pixel_table"] = rows

    if args.engine:
        res.update(bench_engine(model, s.lm["vocab_size"], args))

    out = args.out or f"perf_inspect_{s.name}_{device}"
    path = pc.write_result(Path(out).stem, res)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
