"""Llama-3.2-11B-Vision-shaped (mllama) inspection on the CPU at reduced depth: the tuned path
(fp32, OpenBLAS, fast math, head on the answer rows of the last position), PyTorch (fp32, sdpa)
and, with --defaults, mlx-vlm's defaults on a 4-bit model.

    python bench/perf_mllama.py                        # depths A and B, tuned and torch, 2 rounds
    python bench/perf_mllama.py --defaults --rounds 1  # plus mlx-vlm's 4-bit default at depth A

Widths are the 11B model's (vision 1280 wide, 4 tiles of 560x560 = 4 x 1601 tokens padded to
6432, 16 heads; text 4096 wide, GQA 32/8, MLP 14336, vocabulary 128,256; projector 7680 ->
4096). Depth is cut to what fits beside other work in 24 GB (the text layers are 0.9 GB each in
fp32): A = vision 2 local + 1 global layers, text 2 layers (the second cross-attention); B =
vision 4 + 2, text 4 (2 cross). Every layer is timed inside the pass (each evaluated where it
ends), so the full model (vision 32 + 8, text 32 self + 8 cross-attention layers) is
extrapolated per layer kind: full = measured - its layers + 40 x vision layer + 32 x self layer
+ 8 x cross layer (the vision tower's fixed part, the projector and the head stay as measured).
Depth A against B checks that the per-layer times hold. mlx and torch processes alternate.
Prints a table, writes bench/results/perf_mllama_cpu.json.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc

SMOKE = os.environ.get("PNP_BENCH_SMOKE") == "1"  # tiny widths: a quick run of the whole driver
TEXT_HIDDEN = 256 if SMOKE else 4096
IMAGE_SIDE = 112 if SMOKE else 560
TILE_TOKENS = (IMAGE_SIDE // 14) ** 2 + 1
IMAGE, TEXT_TOKENS, ANSWERS = 128256, 24, (9642, 2822)
DEPTHS = {"A": (2, 1, 2, [1]), "B": (4, 2, 4, [1, 3])}  # vision local, global; text, cross
FULL = {"vision": 40, "self": 32, "cross": 8}


def text_config(layers: int, cross: list[int]) -> dict:
    return dict(vocab_size=128256, hidden_size=TEXT_HIDDEN,
                intermediate_size=512 if SMOKE else 14336,
                num_hidden_layers=layers, num_attention_heads=32, num_key_value_heads=8,
                cross_attention_layers=cross, rms_norm_eps=1e-5, rope_theta=500000.0,
                tie_word_embeddings=False)  # fmt: skip


def vision_config(local: int, global_: int) -> dict:
    return dict(image_size=IMAGE_SIDE, patch_size=14, num_channels=3,
                hidden_size=64 if SMOKE else 1280, intermediate_size=128 if SMOKE else 5120,
                num_hidden_layers=local,
                num_global_layers=global_, attention_heads=16, num_attention_heads=16,
                max_num_tiles=4, vision_output_dim=6 * (64 if SMOKE else 1280),
                intermediate_layers_indices=[min(i, local - 1) for i in (3, 7, 15, 23, 30)],
                norm_eps=1e-5,
                supported_aspect_ratios=[[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1],
                                         [4, 1]])  # fmt: skip


def inputs():
    import numpy as np

    ids = [128000, IMAGE, *range(1000, 1000 + TEXT_TOKENS)]
    rng = np.random.default_rng(0)
    px = rng.standard_normal((1, 1, 4, 3, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    cross = np.zeros((1, len(ids), 1, 4), dtype=np.float32)
    cross[:, 1:] = 1.0  # text after the image token sees all 4 tiles
    return ids, px, np.array([[6]]), np.ones((1, 1, 4), dtype=np.int64), cross


def _mlx_timers(model: Any, sink: dict[str, list[float]]) -> None:
    """Each layer (and the tower, the projector) evaluated where it ends, its time recorded."""
    import mlx.core as mx
    from mlx_vlm.models.mllama import language, vision

    kinds = {vision.MllamaVisionEncoderLayer: "vision layer",
             language.MllamaSelfAttentionDecoderLayer: "self layer",
             language.MllamaCrossAttentionDecoderLayer: "cross layer"}  # fmt: skip
    subclasses: dict[type, type] = {}

    def timed(module: Any, name: str) -> None:
        cls = type(module)
        if cls not in subclasses:

            def call(self: Any, *a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                out = cls.__call__(self, *a, **kw)
                mx.eval(out)
                sink[self._pnp_timer].append((time.perf_counter() - t) * 1e3)
                return out

            subclasses[cls] = type(f"Timed{cls.__name__}", (cls,), {"__call__": call})
        object.__setattr__(module, "_pnp_timer", name)
        module.__class__ = subclasses[cls]

    for _, m in model.named_modules():
        if type(m) in kinds:
            timed(m, kinds[type(m)])
    timed(model.vision_tower, "vision tower")
    timed(model.multi_modal_projector, "projector")


def run_mlx(depth: str, repeat: int, default: bool) -> dict:
    if not default:
        from pnp_vision.inspect.runtime import setup_runtime

        setup_runtime()
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np
    from mlx_vlm.models.mllama import Model, ModelConfig, TextConfig, VisionConfig

    local, global_, layers, cross_layers = DEPTHS[depth]
    d = {"model_type": "mllama", "image_token_index": IMAGE,
         "text_config": text_config(layers, cross_layers),
         "vision_config": vision_config(local, global_)}  # fmt: skip
    cfg = ModelConfig.from_dict(dict(d))
    cfg.text_config = TextConfig.from_dict(d["text_config"])
    cfg.vision_config = VisionConfig.from_dict(d["vision_config"])
    t0 = time.perf_counter()
    model = Model(cfg)
    # mlx-vlm's mllama vision builds float32 attention masks, which its bf16 attention rejects
    # on the CPU ("Mask type must promote"), so the default runs with fp32 activations
    model.set_dtype(mx.float32)
    nn.quantize(
        model,
        group_size=64,
        bits=4,
        class_predicate=lambda _, m: hasattr(m, "to_quantized") and m.weight.shape[-1] % 64 < 1,
    )
    mx.eval(model.parameters())
    res: dict[str, Any] = {"impl": "default" if default else "tuned"}
    if not default:
        res["tuning"] = pc.tune(model, "auto", "mllama").summary()
    res["build_s"] = time.perf_counter() - t0
    ids, px, ar_ids, ar_mask, cross = inputs()
    kw = dict(pixel_values=mx.array(px), aspect_ratio_ids=mx.array(ar_ids),
              aspect_ratio_mask=mx.array(ar_mask),
              cross_attention_mask=mx.array(cross))  # fmt: skip
    tokens = mx.array([ids])
    lm = model.language_model
    rows = mx.array(list(ANSWERS))

    def plain():  # mlx-vlm's forward: every position's logits
        out = model(tokens, **kw)
        logits = out.logits if hasattr(out, "logits") else out
        return mx.softmax(logits[0, -1, list(ANSWERS)].astype(mx.float32))

    def fast():  # the engine's: vision + projector, text layers, the answer rows only
        states = model.vision_tower(pixel_values=kw["pixel_values"],
                                    aspect_ratio_ids=kw["aspect_ratio_ids"],
                                    aspect_ratio_mask=kw["aspect_ratio_mask"])[0]  # fmt: skip
        states = model.multi_modal_projector(states).reshape(1, -1, TEXT_HIDDEN)
        mask, row = model._prepare_cross_attention_mask(kw["cross_attention_mask"], TILE_TOKENS)
        h = lm.model(input_ids=tokens, cross_attention_states=states,
                     cross_attention_mask=mask, full_text_row_masked_out_mask=row)  # fmt: skip
        logits = h[0, -1] @ lm.lm_head.weight[rows].T
        return mx.softmax(logits.astype(mx.float32))

    sink: dict[str, list[float]] = collections.defaultdict(list)
    _mlx_timers(model, sink)
    fn = plain if default else fast
    passes = []
    for i in range(1 if default else repeat + 1):  # the default: one pass, no warm-up
        sink.clear()
        t = time.perf_counter()
        probs = fn()
        mx.eval(probs)
        if default or i:
            passes.append({"total_ms": (time.perf_counter() - t) * 1e3, **dict(sink)})
    res.update(passes=passes, probs=np.array(probs).tolist())
    return res


def run_torch(depth: str, repeat: int) -> dict:
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    local, global_, layers, cross_layers = DEPTHS[depth]
    cfg = MllamaConfig(text_config=text_config(layers, cross_layers),
                       vision_config=vision_config(local, global_),
                       image_token_index=IMAGE)  # fmt: skip
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration._from_config(
        cfg, attn_implementation="sdpa", dtype=torch.float32
    ).eval()
    build_s = time.perf_counter() - t0
    ids, px, ar_ids, ar_mask, cross = inputs()
    kw = dict(input_ids=torch.tensor([ids]), pixel_values=torch.from_numpy(px),
              aspect_ratio_ids=torch.from_numpy(ar_ids),
              aspect_ratio_mask=torch.from_numpy(ar_mask),
              cross_attention_mask=torch.from_numpy(cross).long())  # fmt: skip
    sink: dict[str, list[float]] = collections.defaultdict(list)
    starts: dict[int, float] = {}

    def hook(module: torch.nn.Module, name: str) -> None:
        module.register_forward_pre_hook(
            lambda m, *_: starts.__setitem__(id(m), time.perf_counter())
        )
        module.register_forward_hook(
            lambda m, *_: sink[name].append((time.perf_counter() - starts[id(m)]) * 1e3)
        )

    for _, m in model.named_modules():
        kind = type(m).__name__
        if kind == "MllamaVisionEncoderLayer":
            hook(m, "vision layer")
        elif kind == "MllamaSelfAttentionDecoderLayer":
            hook(m, "self layer")
        elif kind == "MllamaCrossAttentionDecoderLayer":
            hook(m, "cross layer")
    hook(model.model.vision_model, "vision tower")
    hook(model.model.multi_modal_projector, "projector")
    passes = []
    for i in range(repeat + 1):  # one warm-up
        sink.clear()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model(**kw, logits_to_keep=1)
            probs = torch.softmax(out.logits[0, -1, list(ANSWERS)].float(), -1)
        if i:
            passes.append({"total_ms": (time.perf_counter() - t) * 1e3, **dict(sink)})
    return {"impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "build_s": build_s, "passes": passes, "probs": probs.tolist()}  # fmt: skip


def per_pass(p: dict[str, Any]) -> dict[str, float]:
    """One pass's split and its extrapolation to the full model."""
    out = {"total": p["total_ms"], "vision": sum(p.get("vision tower", [0.0]))}
    layers = 0.0
    for kind, full in (("vision", FULL["vision"]), ("self", FULL["self"]),
                       ("cross", FULL["cross"])):  # fmt: skip
        times = p.get(f"{kind} layer", [])
        out[f"{kind} layer"] = sum(times) / len(times) if times else float("nan")
        layers += sum(times)
        out[f"full {kind}"] = out[f"{kind} layer"] * full
    out["fixed"] = p["total_ms"] - layers  # patch embedding, projector, norms, head, embedding
    out["full"] = out["fixed"] + out["full vision"] + out["full self"] + out["full cross"]
    out["full vision tower"] = out["vision"] - sum(p.get("vision layer", [])) + out["full vision"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", choices=["tuned", "torch", "default"])
    ap.add_argument("--depth", default="A", choices=sorted(DEPTHS))
    ap.add_argument("--depths", nargs="+", default=["A", "B"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--defaults", action="store_true", help="mlx-vlm's 4-bit default at depth A")
    args = ap.parse_args()
    if args.impl:
        start = [round(x, 2) for x in os.getloadavg()]
        if args.impl == "torch":
            res = run_torch(args.depth, args.repeat)
        else:
            res = run_mlx(args.depth, args.repeat, default=args.impl == "default")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        res.update(depth=args.depth, load=[start, [round(x, 2) for x in os.getloadavg()]],
                   maxrss_gb=rss)  # fmt: skip
        pc.report(res)
        return

    runs: list[dict[str, Any]] = []

    def child(impl: str, depth: str, r: int) -> None:
        cmd = [sys.executable, __file__, "--impl", impl, "--depth", depth,
               "--repeat", str(args.repeat)]  # fmt: skip
        env = dict(os.environ)
        if impl == "default":  # nothing of ours in that process; say so explicitly anyway
            env.update(PNP_VISION_BLAS="", PNP_VISION_KEEP_MEMORY="0", PNP_VISION_FASTMATH="0")
        res = {**pc.child_result(cmd, env), "round": r}
        runs.append(res)
        total = pc.med([p["total_ms"] for p in res["passes"]])
        print(f"  {impl:7s} depth {depth}: {total:9.0f} ms, load {res['load']}", flush=True)

    t_start = time.time()
    for r in range(args.rounds):
        for depth in args.depths:
            for impl in ("tuned", "torch") if r % 2 == 0 else ("torch", "tuned"):
                child(impl, depth, r)
            if r == 0 and args.defaults and depth == "A":
                child("default", depth, r)

    rows = []
    for impl in ("tuned", "torch", "default"):
        for depth in args.depths:
            passes = [per_pass(p) for x in runs if x["impl"] == impl and x["depth"] == depth
                      for p in x["passes"]]  # fmt: skip
            if not passes:
                continue
            med = {k: pc.med([p[k] for p in passes]) for k in passes[0]}
            rows.append({"path": impl, "depth": depth, "ms": med["total"],
                         "vision ms": med["vision"], "vision layer": med["vision layer"],
                         "self layer": med["self layer"], "cross layer": med["cross layer"],
                         "fixed": med["fixed"], "full (extrapolated) ms": med["full"],
                         "full vision tower": med["full vision tower"],
                         "samples": len(passes)})  # fmt: skip
    cols = ["path", "depth", "ms", "vision ms", "vision layer", "self layer", "cross layer",
            "fixed", "full (extrapolated) ms", "full vision tower", "samples"]  # fmt: skip
    print(pc.table(rows, cols))
    ratios = []
    for depth in args.depths:
        for r in range(args.rounds):
            here = {x["impl"]: x for x in runs if x["round"] == r and x["depth"] == depth}
            if "tuned" in here and "torch" in here:
                ms = {i: pc.med([q["total_ms"] for q in here[i]["passes"]]) for i in here}
                ratios.append(
                    {"depth": depth, "round": r, "torch/tuned": ms["torch"] / ms["tuned"]}
                )
    full = {(x["path"], x["depth"]): x["full (extrapolated) ms"] for x in rows}
    for depth in args.depths:
        if ("tuned", depth) in full:
            row = {"depth": f"full from {depth}"}
            for impl in ("torch", "default"):
                if (impl, depth) in full:
                    row[f"{impl}/tuned"] = full[(impl, depth)] / full[("tuned", depth)]
            ratios.append(row)
    print(pc.table(ratios, ["depth", "round", "torch/tuned", "default/tuned"]))
    name = "perf_mllama_cpu_smoke" if SMOKE else "perf_mllama_cpu"
    pc.write_result(name, {"rows": rows, "ratios": ratios, "runs": runs, "depths": DEPTHS,
                           "full_layers": FULL, "wall_s": time.time() - t_start})  # fmt: skip


if __name__ == "__main__":
    main()
