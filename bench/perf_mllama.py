"""Llama-3.2-11B-Vision-shaped inspection on the CPU at reduced depth: mlx-vlm's defaults on a
4-bit model, the tuned path (fp32, head on the last position only), and PyTorch (fp32, sdpa).

    python bench/perf_mllama.py                 # all three, mlx and torch alternating
    python bench/perf_mllama.py --impl mlx      # one process of one kind (used by the driver)

Widths are the 11B model's (vision 1280 x 4 tiles of 560x560 = 6,404 tokens, text 4096 with
GQA 32/8, vocab 128,256). Depth is cut to what fits beside other work in 24 GB: vision 2 local
+ 1 global layers (of 32 + 8), text 2 layers, the second a cross-attention layer (of 32 + 8).
The scaling to full depth is stated from the measured vision / language split.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc

VISION_LOCAL, VISION_GLOBAL, TEXT_LAYERS, CROSS = 2, 1, 2, [1]
TEXT_HIDDEN = 4096
IMAGE, TEXT_TOKENS, ANSWERS = 128256, 24, (9642, 2822)


def text_config() -> dict:
    return dict(vocab_size=128256, hidden_size=TEXT_HIDDEN, intermediate_size=14336,
                num_hidden_layers=TEXT_LAYERS, num_attention_heads=32, num_key_value_heads=8,
                cross_attention_layers=CROSS, rms_norm_eps=1e-5, rope_theta=500000.0,
                tie_word_embeddings=False)  # fmt: skip


def vision_config() -> dict:
    return dict(image_size=560, patch_size=14, num_channels=3, hidden_size=1280,
                intermediate_size=5120, num_hidden_layers=VISION_LOCAL,
                num_global_layers=VISION_GLOBAL, attention_heads=16, num_attention_heads=16,
                max_num_tiles=4, vision_output_dim=7680,
                intermediate_layers_indices=[0, 1, 0, 1, 1], norm_eps=1e-5,
                supported_aspect_ratios=[[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1],
                                         [4, 1]])  # fmt: skip


def inputs():
    import numpy as np

    ids = [128000, IMAGE, *range(1000, 1000 + TEXT_TOKENS)]
    rng = np.random.default_rng(0)
    px = rng.standard_normal((1, 1, 4, 3, 560, 560), dtype=np.float32)
    cross = np.zeros((1, len(ids), 1, 4), dtype=np.float32)
    cross[:, 1:] = 1.0  # text after the image token sees all 4 tiles
    return ids, px, np.array([[6]]), np.ones((1, 1, 4), dtype=np.int64), cross


def run_mlx(repeat: int) -> dict:
    from pnp_vision.inspect.backend import configure_backend

    configure_backend()
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np
    from mlx_vlm.models.mllama import Model, ModelConfig, TextConfig, VisionConfig

    from pnp_vision.inspect.tuning import tune_model

    d = {"model_type": "mllama", "image_token_index": IMAGE, "text_config": text_config(),
         "vision_config": vision_config()}  # fmt: skip
    cfg = ModelConfig.from_dict(dict(d))
    cfg.text_config = TextConfig.from_dict(d["text_config"])
    cfg.vision_config = VisionConfig.from_dict(d["vision_config"])
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
    ids, px, ar_ids, ar_mask, cross = inputs()
    kw = dict(
        pixel_values=mx.array(px),
        aspect_ratio_ids=mx.array(ar_ids),
        aspect_ratio_mask=mx.array(ar_mask),
        cross_attention_mask=mx.array(cross),
    )
    tokens = mx.array([ids])

    def plain():
        out = model(tokens, **kw)
        logits = out.logits if hasattr(out, "logits") else out
        return mx.softmax(logits[0, -1, list(ANSWERS)].astype(mx.float32))

    def vision():
        return model.vision_tower(pixel_values=kw["pixel_values"],
                                  aspect_ratio_ids=kw["aspect_ratio_ids"],
                                  aspect_ratio_mask=kw["aspect_ratio_mask"])[0]  # fmt: skip

    res = {"impl": "mlx", "plain_ms": pc.timeit(plain, 1, 0, mx.eval)}
    res["plain_probs"] = np.array(plain()).tolist()
    res["plain_vision_ms"] = pc.timeit(vision, 1, 0, mx.eval)
    report = tune_model(model, "auto")
    res["tuning"] = report.summary()
    lm = model.language_model
    rows = mx.array(list(ANSWERS))

    def fast():
        states = model.vision_tower(pixel_values=kw["pixel_values"],
                                    aspect_ratio_ids=kw["aspect_ratio_ids"],
                                    aspect_ratio_mask=kw["aspect_ratio_mask"])[0]  # fmt: skip
        states = model.multi_modal_projector(states).reshape(1, -1, TEXT_HIDDEN)
        mask, row = model._prepare_cross_attention_mask(kw["cross_attention_mask"], 1601)
        h = lm.model(input_ids=tokens, cross_attention_states=states,
                     cross_attention_mask=mask, full_text_row_masked_out_mask=row)  # fmt: skip
        logits = h[0, -1] @ lm.lm_head.weight[rows].T
        return mx.softmax(logits.astype(mx.float32))

    res["fast_ms"] = pc.timeit(fast, repeat, 1, mx.eval)
    res["fast_probs"] = np.array(fast()).tolist()
    res["fast_vision_ms"] = pc.timeit(vision, repeat, 0, mx.eval)
    return res


def run_torch(repeat: int) -> dict:
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    cfg = MllamaConfig(text_config=text_config(), vision_config=vision_config(),
                       image_token_index=IMAGE)  # fmt: skip
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration._from_config(
        cfg, attn_implementation="sdpa", dtype=torch.float32
    ).eval()
    ids, px, ar_ids, ar_mask, cross = inputs()
    kw = dict(input_ids=torch.tensor([ids]), pixel_values=torch.from_numpy(px),
              aspect_ratio_ids=torch.from_numpy(ar_ids),
              aspect_ratio_mask=torch.from_numpy(ar_mask),
              cross_attention_mask=torch.from_numpy(cross).long())  # fmt: skip

    def full():
        with torch.inference_mode():
            out = model(**kw, logits_to_keep=1)
            return torch.softmax(out.logits[0, -1, list(ANSWERS)].float(), -1)

    def vision():
        with torch.inference_mode():
            return model.model.vision_model(
                pixel_values=kw["pixel_values"], aspect_ratio_ids=kw["aspect_ratio_ids"],
                aspect_ratio_mask=kw["aspect_ratio_mask"])  # fmt: skip

    return {"impl": "torch", "torch": torch.__version__, "full_ms": pc.timeit(full, repeat, 1),
            "vision_ms": pc.timeit(vision, repeat, 0), "probs": full().tolist()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", choices=["mlx", "torch"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if args.impl:
        res = run_mlx(args.repeat) if args.impl == "mlx" else run_torch(args.repeat)
        print("RESULT " + json.dumps(res), flush=True)
        return
    results: dict[str, list[dict]] = {"mlx": [], "torch": []}
    for _ in range(args.rounds):
        for impl in ("mlx", "torch"):
            proc = subprocess.run([sys.executable, __file__, "--impl", impl, "--repeat",
                                   str(args.repeat)], capture_output=True, text=True)  # fmt: skip
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"{impl} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
            results[impl].append(json.loads(line[0][7:]))
            print(impl, "done", flush=True)
    m = results["mlx"]
    t = results["torch"]
    fast = pc.med([pc.med(r["fast_ms"]) for r in m])
    row = {
        "depth": f"vision {VISION_LOCAL}+{VISION_GLOBAL}, text {TEXT_LAYERS} ({len(CROSS)} cross)",
        "mlx-vlm 4bit default ms": pc.med([pc.med(r["plain_ms"]) for r in m]),
        "mlx tuned ms": fast,
        "torch ms": pc.med([pc.med(r["full_ms"]) for r in t]),
        "vision default/tuned/torch ms": "{:.0f}/{:.0f}/{:.0f}".format(
            pc.med([pc.med(r["plain_vision_ms"]) for r in m]),
            pc.med([pc.med(r["fast_vision_ms"]) for r in m]),
            pc.med([pc.med(r["vision_ms"]) for r in t]),
        ),
    }
    row["default/tuned"] = row["mlx-vlm 4bit default ms"] / fast
    row["torch/tuned"] = row["torch ms"] / fast
    print(pc.table([row], list(row)))
    pc.write_result("perf_mllama_cpu", {"row": row, "mlx": m, "torch": t})


if __name__ == "__main__":
    main()
