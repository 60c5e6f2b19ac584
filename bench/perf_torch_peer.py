"""The PyTorch + transformers peer: the same Qwen2.5-VL shapes and prompt, random weights, SDPA
attention, logits for the last position only (as generous to the peer as our own path).

    python bench/perf_torch_peer.py --shape 3b --device cpu --dtype float32 --lm-layers 6 ...

Prints one JSON line (and writes it with --out) so a driver can run it in its own process:
torch and an mlx model of the same size do not fit in this machine's memory together.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc


def hf_config(s: pc.Shape):
    from transformers import Qwen2_5_VLConfig

    m = pc.mlx_config(s)
    text = dict(
        hidden_size=m["hidden_size"],
        num_hidden_layers=m["num_hidden_layers"],
        intermediate_size=m["intermediate_size"],
        num_attention_heads=m["num_attention_heads"],
        num_key_value_heads=m["num_key_value_heads"],
        vocab_size=m["vocab_size"],
        rms_norm_eps=m["rms_norm_eps"],
        rope_parameters={
            "rope_type": "default",
            "mrope_section": m["rope_scaling"]["mrope_section"],
            "rope_theta": m["rope_theta"],
        },
    )
    v = m["vision_config"]
    vision = dict(
        depth=v["depth"],
        hidden_size=v["hidden_size"],
        intermediate_size=v["intermediate_size"],
        num_heads=v["num_heads"],
        out_hidden_size=v["out_hidden_size"],
        fullatt_block_indexes=v["fullatt_block_indexes"],
    )
    ids = dict(
        tie_word_embeddings=m["tie_word_embeddings"],
        image_token_id=pc.IMAGE_TOKEN,
        vision_start_token_id=pc.VISION_START,
        vision_end_token_id=pc.VISION_END,
    )
    try:
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
        if not cfg.text_config.rope_parameters.get("mrope_section"):
            raise ValueError("rope_parameters not understood")
        return cfg
    except (TypeError, ValueError, AttributeError):  # older transformers: rope_scaling
        rope = text.pop("rope_parameters")
        text["rope_theta"] = rope["rope_theta"]
        text["rope_scaling"] = {"type": "mrope", "mrope_section": rope["mrope_section"]}
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="3b")
    ap.add_argument("--lm-layers", type=int)
    ap.add_argument("--vision-layers", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--side", type=int, default=448)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out")
    args = ap.parse_args()

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    if args.threads:
        torch.set_num_threads(args.threads)
    s = pc.shape(args.shape, args.lm_layers, args.vision_layers)
    dtype = getattr(torch, args.dtype)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(dev):
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            hf_config(s), attn_implementation="sdpa", dtype=dtype
        )
    model.eval()
    build_s = time.perf_counter() - t0
    p = pc.prompt(args.side)
    ids = torch.tensor([p.ids()], device=dev)
    px = torch.from_numpy(pc.pixels(p)).to(dev, dtype)
    grid = torch.tensor([p.grid], device=dev)

    def sync(r):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return r

    def full():
        with torch.inference_mode():
            out = model(input_ids=ids, pixel_values=px, image_grid_thw=grid, logits_to_keep=1)
            return torch.softmax(out.logits[0, -1, list(pc.ANSWERS)].float(), -1)

    def vision():
        with torch.inference_mode():
            return model.model.get_image_features(px, grid)

    warm = 3 if dev.type == "cuda" else 1
    t_full = pc.timeit(full, args.repeat, warmup=warm, sync=sync)
    try:
        t_vis = pc.timeit(vision, args.repeat, warmup=1, sync=sync)
    except Exception as exc:  # the helper's name moved between transformers versions
        print(f"vision-only timing skipped: {exc}", file=sys.stderr)
        t_vis = [float("nan")]
    probs = full().tolist()
    res = {
        "peer": "torch+transformers sdpa",
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "shape": s.name,
        "lm_layers": s.lm_layers,
        "vision_layers": s.vision_layers,
        "device": args.device,
        "dtype": args.dtype,
        "side": args.side,
        "threads": torch.get_num_threads(),
        "build_s": round(build_s, 1),
        "full_ms": t_full,
        "vision_ms": t_vis,
        "full_median_ms": pc.med(t_full),
        "vision_median_ms": pc.med(t_vis),
        "probs": probs,
    }
    line = json.dumps(res)
    print(line, flush=True)
    if args.out:
        Path(args.out).write_text(line)


if __name__ == "__main__":
    main()
