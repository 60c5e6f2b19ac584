"""Shared pieces of the performance benchmarks: model shapes, random-weight models (mlx-vlm and
transformers), the synthetic inspection prompt, the plain and the optimized inspection, timing.

Speed does not depend on weight values, so full-size shapes are built with random weights in
memory. Imports only what a bare GPU host has (mlx, mlx-vlm, numpy, optionally torch).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMAGE_TOKEN, VISION_START, VISION_END = 151655, 151652, 151653
YES, NO = 14004, 8996
ANSWERS = (YES, NO)

# Qwen2.5-VL language-model shapes (vision tower: 1280 wide, 32 blocks, head dim 80, both sizes).
QWEN_SHAPES: dict[str, dict[str, Any]] = {
    "3b": dict(hidden_size=2048, num_hidden_layers=36, intermediate_size=11008,
               num_attention_heads=16, num_key_value_heads=2, vocab_size=151936, tie=True),
    "7b": dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944,
               num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie=False),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=151936, tie=True),
}  # fmt: skip
VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16)
TINY_VISION = dict(depth=4, hidden_size=64, intermediate_size=128, num_heads=4)


@dataclass(frozen=True)
class Shape:
    name: str
    lm_layers: int
    vision_layers: int
    lm: dict[str, Any]
    vision: dict[str, Any]

    @property
    def full_lm_layers(self) -> int:
        return QWEN_SHAPES[self.name]["num_hidden_layers"]

    @property
    def full_vision_layers(self) -> int:
        return (TINY_VISION if self.name == "tiny" else VISION)["depth"]


def shape(name: str, lm_layers: int | None = None, vision_layers: int | None = None) -> Shape:
    lm = dict(QWEN_SHAPES[name])
    vision = dict(TINY_VISION if name == "tiny" else VISION)
    lm_layers = lm_layers or lm["num_hidden_layers"]
    vision_layers = vision_layers or vision["depth"]
    return Shape(name, lm_layers, vision_layers, lm, vision)


def full_attention_blocks(depth: int) -> list[int]:
    """Qwen2.5-VL's pattern (every 8th block sees the whole image), kept at reduced depth."""
    blocks = [i for i in range(7, depth, 8)]
    return blocks or [depth - 1]


def mlx_config(s: Shape) -> dict[str, Any]:
    head_dim = s.lm["hidden_size"] // s.lm["num_attention_heads"]
    third = head_dim // 2 // 8
    return {
        "model_type": "qwen2_5_vl",
        "hidden_size": s.lm["hidden_size"],
        "num_hidden_layers": s.lm_layers,
        "intermediate_size": s.lm["intermediate_size"],
        "num_attention_heads": s.lm["num_attention_heads"],
        "num_key_value_heads": s.lm["num_key_value_heads"],
        "vocab_size": s.lm["vocab_size"],
        "rms_norm_eps": 1e-6,
        "rope_theta": 1e6,
        "tie_word_embeddings": s.lm["tie"],
        "rope_scaling": {"type": "mrope", "mrope_section": [2 * third, 3 * third, 3 * third]},
        "image_token_id": IMAGE_TOKEN,
        "vision_start_token_id": VISION_START,
        "vision_end_token_id": VISION_END,
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": s.vision_layers,
            "hidden_size": s.vision["hidden_size"],
            "intermediate_size": s.vision["intermediate_size"],
            "num_heads": s.vision["num_heads"],
            "out_hidden_size": s.lm["hidden_size"],
            "fullatt_block_indexes": full_attention_blocks(s.vision_layers),
        },
    }


def build_mlx(s: Shape, dtype: str = "float32", quantize_bits: int | None = None, seed: int = 0):
    """An mlx-vlm Qwen2.5-VL model with random weights, optionally quantized like mlx-community
    checkpoints (every layer whose input width divides by the group size)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_vlm.models.qwen2_5_vl import Model, ModelConfig, TextConfig, VisionConfig

    cfg_dict = mlx_config(s)
    cfg = ModelConfig.from_dict(dict(cfg_dict))
    cfg.text_config = TextConfig.from_dict(cfg_dict)
    cfg.vision_config = VisionConfig.from_dict(cfg_dict["vision_config"])
    mx.random.seed(seed)
    model = Model(cfg)
    target = getattr(mx, dtype)
    model.apply(lambda a: a.astype(target) if mx.issubdtype(a.dtype, mx.floating) else a)
    mx.eval(model.parameters())
    if quantize_bits:
        nn.quantize(
            model,
            group_size=64,
            bits=quantize_bits,
            class_predicate=lambda _, m: (
                hasattr(m, "to_quantized") and m.weight.shape[-1] % 64 == 0
            ),
        )
        mx.eval(model.parameters())
    model.eval()
    return model


@dataclass(frozen=True)
class Prompt:
    """One synthetic inspection prompt: system text, the image, then the question."""

    prefix: list[int]  # system + user header + vision tokens (+ shared text)
    suffixes: list[list[int]]  # one per question: question text + assistant header
    grid: tuple[int, int, int]  # (t, h, w) in patches

    def ids(self, question: int = 0) -> list[int]:
        return self.prefix + self.suffixes[question]


def prompt_grid(
    h: int, w: int, questions: int = 1, prefix_text: int = 20, suffix_text: int = 27
) -> Prompt:
    """A prompt for an image of h x w patches (14 px each; both even)."""
    n_image = h * w // 4
    text = list(range(1000, 1000 + prefix_text))
    prefix = [*text, VISION_START, *([IMAGE_TOKEN] * n_image), VISION_END]
    suffixes = [list(range(2000 + 50 * q, 2000 + 50 * q + suffix_text)) for q in range(questions)]
    return Prompt(prefix, suffixes, (1, h, w))


def prompt(side_px: int = 448, questions: int = 1) -> Prompt:
    """448x448 -> 32x32 patches -> 256 image tokens; 20 + 256 + 27 = 303 tokens, as measured
    in design.md. Text ids are arbitrary ordinary tokens (speed does not depend on them)."""
    return prompt_grid(side_px // 14, side_px // 14, questions)


def qwen_gflop(s: Shape, p: Prompt) -> dict[str, float]:
    """Multiply-add FLOPs (x2) of one tuned inspection: every linear layer, attention's two
    matmuls (windows of 64 patches, every 8th block the whole image), patch embedding, merger;
    the head on 2 rows is negligible. GFLOP per part, at the shape's depths."""
    lm, vis = s.lm, s.vision
    n_text = len(p.ids())
    _, h, w = p.grid
    n = h * w  # patches
    d, heads, kv = lm["hidden_size"], lm["num_attention_heads"], lm["num_key_value_heads"]
    hd = d // heads
    lm_layer = 2 * n_text * (2 * d * d + 2 * d * kv * hd + 3 * d * lm["intermediate_size"])
    lm_layer += 4 * n_text * n_text * hd * heads
    dv, iv = vis["hidden_size"], vis["intermediate_size"]
    block = 2 * n * (3 * dv * dv + dv * dv + 3 * dv * iv)
    full = set(full_attention_blocks(s.vision_layers))
    attention = sum(4 * n * (n if i in full else 64) * dv for i in range(s.vision_layers))
    merger = 2 * (n // 4) * (4 * dv * 4 * dv + 4 * dv * d)
    return {
        "language": s.lm_layers * lm_layer / 1e9,
        "vision": (s.vision_layers * block + attention + 2 * n * 1176 * dv + merger) / 1e9,
    }


def pixels(p: Prompt, seed: int = 0):
    """Processor-shaped pixel values: (t*h*w, 3*2*14*14)."""
    import numpy as np

    t, h, w = p.grid
    rng = np.random.default_rng(seed)
    return rng.standard_normal((t * h * w, 3 * 2 * 14 * 14), dtype=np.float32)


def mlx_threads(n: int | None) -> None:
    """Run this process's MLX work on `n` BLAS threads (None: the library's count); with one,
    big attention keeps to one stream too (`fastmath` otherwise uses two)."""
    if n:
        from pnp_vision.inspect import fastmath, runtime

        if runtime._BLAS is not None:
            runtime._BLAS.openblas_set_num_threads(n)
        if n == 1:
            fastmath.PARALLEL_SCORES = 1 << 62


def tune(model, compute_dtype: str = "auto", model_type: str = "qwen2_5_vl"):
    """What the engine does after loading: the dtype (`tune_model`), then the fast paths
    (`patching.patch_model`). Returns the tuning report."""
    from pnp_vision.inspect.models import patching
    from pnp_vision.inspect.runtime import setup_runtime
    from pnp_vision.inspect.tuning import tune_model

    report = tune_model(model, compute_dtype)
    patching.patch_model(model, model_type, setup_runtime())
    return report


def tuned_3b(lm_layers: int, vision_layers: int):
    """A 3B-shaped fp32 model at a reduced depth, tuned as the worker tunes it, and its
    (uncompiled) `FastInspector` with the 448x448 prompt's pixels: (model, inspector, pixels)."""
    model = build_mlx(shape("3b", lm_layers, vision_layers), "float32")
    tune(model, "auto")
    p = prompt(448)
    return model, FastInspector(model, p, compiled=False), pixels(p)


def plain_inspect(model, p: Prompt, px, question: int = 0):
    """What mlx-vlm does for a first decoding step: the whole model on the whole prompt, logits
    for every position, then the YES/NO rows of the last one. Returns probabilities (2,)."""
    import mlx.core as mx

    lm = model.language_model
    lm._position_ids = lm._rope_deltas = None  # mlx-vlm keeps these between calls
    ids = mx.array([p.ids(question)])
    grid = mx.array([p.grid])
    out = model(ids, pixel_values=mx.array(px), image_grid_thw=grid)
    logits = out.logits[0, -1, list(ANSWERS)].astype(mx.float32)
    return mx.softmax(logits)


class FastInspector:
    """The optimized path, with what a resident engine keeps between calls (the positions plan).
    `model` must have been through `tune` (fast vision installed)."""

    def __init__(self, model, p: Prompt, compiled: bool | None = None) -> None:
        from pnp_vision.inspect.models.qwen2_5_vl.language import mrope_positions
        from pnp_vision.inspect.runtime import setup_runtime

        self.model, self.p = model, p
        self.compiled = setup_runtime().compile if compiled is None else compiled
        merge = model.config.vision_config.spatial_merge_size
        self.positions = {}
        for q in range(len(p.suffixes)):
            self.positions[q] = mrope_positions(p.ids(q), [p.grid], IMAGE_TOKEN, merge)[0]
        self.prefix_pos, self.next_pos = mrope_positions(p.prefix, [p.grid], IMAGE_TOKEN, merge)

    def _embeds(self, ids: list[int], px):
        import mlx.core as mx

        m = self.model
        dtype = m.vision_tower.patch_embed.proj.weight.dtype
        feats = m.vision_tower(mx.array(px).astype(dtype), mx.array([self.p.grid]))
        text = m.language_model.model.embed_tokens(mx.array([ids]))
        start = ids.index(IMAGE_TOKEN)
        n = feats.shape[0]
        return mx.concatenate(
            [text[:, :start], feats[None].astype(text.dtype), text[:, start + n :]], axis=1
        )

    def one(self, px, question: int = 0):
        """One question: one forward over the whole prompt, head on the last position only."""
        import mlx.core as mx

        from pnp_vision.inspect.models.qwen2_5_vl.language import last_position_logits

        ids = self.p.ids(question)
        lm = self.model.language_model
        embeds = self._embeds(ids, px)
        pos = self.positions[question]
        logits = last_position_logits(lm, embeds, pos, ANSWERS, compiled=self.compiled)
        return mx.softmax(logits[0].astype(mx.float32))

    def packed(self, px):
        """All questions in one forward: image once, prefix and every suffix in one sequence."""
        import mlx.core as mx

        from pnp_vision.inspect.models.qwen2_5_vl.language import packed_logits

        lm = self.model.language_model
        embeds = self._embeds(self.p.prefix, px)
        logits = packed_logits(lm, embeds, self.prefix_pos, self.next_pos, self.p.suffixes, ANSWERS)
        return mx.softmax(logits.astype(mx.float32), axis=-1)

    def many(self, px):
        """All questions: the image and the shared prefix once, the suffixes in one batch."""
        import mlx.core as mx

        from pnp_vision.inspect.models.qwen2_5_vl.language import prefill, suffix_logits

        lm = self.model.language_model
        cache = prefill(lm, self._embeds(self.p.prefix, px), self.prefix_pos)
        logits = suffix_logits(lm, cache, self.p.suffixes, self.next_pos, ANSWERS)
        return mx.softmax(logits.astype(mx.float32), axis=-1)


def timeit(
    fn: Callable[[], Any], repeat: int, warmup: int = 1, sync: Callable[[Any], Any] | None = None
) -> list[float]:
    """Wall times in ms; `sync` forces the result (mx.eval, cuda synchronize) inside the timing."""
    sync = sync or (lambda r: r)
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sync(fn())
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    out_dir = Path(os.environ.get("PNP_BENCH_OUT", ROOT / "bench" / "results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"machine": platform.platform(), "python": sys.version.split()[0], **payload}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


CHILD_TIMEOUT_S = 4 * 3600  # mlx-vlm's defaults take ~18 min a pass on the 11B shape


def report(res: dict[str, Any]) -> None:
    """A child process's result, for `child_result` in its parent."""
    print("RESULT " + json.dumps(res), flush=True)


def child_result(
    cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> dict[str, Any]:
    """Run one measuring child (its own process, so peers never share a heap or a BLAS) and
    return what it `report`ed; a child that failed raises with the end of its output."""
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=CHILD_TIMEOUT_S
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[0][7:])


def free() -> None:
    gc.collect()
    try:
        import mlx.core as mx

        mx.clear_cache()
    except Exception:  # mlx absent (torch-only run)
        pass


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += [
        "  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True))
        for r in rows
    ]
    return "\n".join(lines)
