"""Latency of the inspection engine against the prompt-and-parse approach, on one model.

  (a) constrained scoring: `Inspector.inspect` with one question;
  (b) what other tools do: mlx-vlm `generate` (greedy, up to 8 tokens) on the same prompt and
      image, then parse YES/NO out of the text;
  (c) N questions about one frame: one call (the engine's own path: image encoded once per
      view, the questions of a view packed into one forward pass where the architecture allows),
      the same call on the KV-cache path (prefix once, then each question on top; what the
      engine does for mllama and multi-token answers), and N separate calls.

Sizes: `tiny` (the test models, both architectures) and `3b` (Qwen2.5-VL-3B shapes, random
weights, the real Qwen2 vocabulary, a 448x448 frame). Random weights time the same as trained
ones, except that (b) always runs all 8 tokens (a trained model would stop after ~2).

    .venv/bin/python bench/inspect_latency.py --size tiny
    .venv/bin/python bench/inspect_latency.py --size 3b --repeats 1
    .venv/bin/python bench/inspect_latency.py --size 3b --questions 4 --one-view   # goal: <= 1.3x

Prints a table and merges its figures into bench/results/inspect_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

QUESTIONS = [
    ("nozzle_alignment", {}),
    ("part_on_nozzle", {}),
    ("part_marking", {"marking": "R10K"}),
    ("polarity_mark", {"corner": "top_left"}),
    ("tombstone", {}),
    ("feeder_pocket_empty", {}),
]


def _median_ms(label: str, fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(times)
    print(f"  {label}: {median:.1f} ms", file=sys.stderr, flush=True)  # progress on long runs
    return median, out


def _frame(side: int):
    """A synthetic up-looking nozzle frame (BGR): ring, bore, red crosshair."""
    import cv2
    import numpy as np

    img = np.full((side, side, 3), 40, np.uint8)
    c = side // 2
    cv2.circle(img, (c + side // 40, c), side // 5, (170, 170, 175), -1, cv2.LINE_AA)
    cv2.circle(img, (c + side // 40, c), side // 12, (20, 20, 20), -1, cv2.LINE_AA)
    cv2.line(img, (0, c), (side - 1, c), (0, 0, 220), 1)
    cv2.line(img, (c, 0), (c, side - 1), (0, 0, 220), 1)
    return img


def _parse(text: str) -> str | None:
    words = text.strip().upper().split()
    first = words[0].strip(".,!:;\"'") if words else ""
    return first if first in ("YES", "NO") else None


def bench_model(
    model_dir: Path, side: int, repeats: int, n_questions: int, one_view: bool = False
) -> dict[str, Any]:
    import mlx.core as mx
    from mlx_vlm import generate

    from pnp_vision.inspect import Inspector, Question, TemplateSet, imageprep

    templates = TemplateSet.load(ROOT / "prompts")
    if one_view:  # the shipped ROIs give each template its own view; here all share the frame
        templates = TemplateSet(
            {n: templates.get(n).model_copy(update={"roi": None}) for n in templates.names()}
        )
    t0 = time.perf_counter()
    inspector = Inspector(model_dir, templates)
    load_s = time.perf_counter() - t0
    frame = _frame(side)
    questions = [Question(template=t, params=p) for t, p in QUESTIONS[:n_questions]]
    one = [questions[0]]

    inspector.inspect(frame, one)  # warm-up
    a_ms, a_res = _median_ms("(a)", lambda: inspector.inspect(frame, one)[0], repeats)

    template = templates.get(one[0].template)
    messages = [
        {"role": "system", "content": template.system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": a_res.question}]},
    ]
    tok = inspector.processor.tokenizer
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    view = imageprep.prepare(frame, max_pixels=template.max_pixels)

    def prompt_and_parse() -> tuple[str | None, str, int]:
        out = generate(
            inspector.model, inspector.processor, prompt, image=[view], max_tokens=8,
            temperature=0.0, verbose=False,
        )  # fmt: skip
        return _parse(out.text), out.text, out.generation_tokens

    prompt_and_parse()  # warm-up
    b_ms, (b_answer, b_text, b_tokens) = _median_ms("(b)", prompt_and_parse, repeats)

    c_one_ms, c_res = _median_ms("(c1)", lambda: inspector.inspect(frame, questions), repeats)
    c_split = {
        phase: sum(getattr(r.timings, phase) for r in c_res)
        for phase in ("prep_ms", "vision_ms", "language_ms")
    }
    c_sep_ms, _ = _median_ms(
        "(c2)", lambda: [inspector.inspect(frame, [q]) for q in questions], repeats
    )
    adapter = inspector._adapter  # benchmark only: the same call with packing switched off
    packs, adapter.packs_questions = adapter.packs_questions, False
    c_cache_ms, _ = _median_ms("(c3)", lambda: inspector.inspect(frame, questions), repeats)
    adapter.packs_questions = packs

    views = [templates.get(q.template) for q in questions]
    inputs = inspector.processor(text=[prompt], images=[view], return_tensors="mlx")
    info = inspector.info()
    mx.clear_cache()
    return {
        "model_type": info["model_type"],
        "parameter_bytes": info["parameter_bytes"],
        "dtype": info["dtype"],
        "device": info["device"],
        "load_s": round(load_s, 2),
        "image": f"{side}x{side}",
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "repeats": repeats,
        "a_constrained_ms": a_ms,
        "a_timings": a_res.timings.model_dump(),
        "a_answer": a_res.answer,
        "a_probabilities": a_res.probabilities,
        "b_generate_parse_ms": b_ms,
        "b_tokens_generated": b_tokens,
        "b_text": b_text,
        "b_parsed": b_answer,
        "b_over_a": b_ms / a_ms,
        "n_questions": len(questions),
        "c_views": len({(t.roi, t.max_pixels, t.system) for t in views}),
        "c_packed": packs,
        "c_one_call_ms": c_one_ms,
        "c_one_call_over_one_question": c_one_ms / a_ms,
        "c_one_call_split": c_split,
        "c_separate_calls_ms": c_sep_ms,
        "c_separate_over_one_call": c_sep_ms / c_one_ms,
        "c_cache_path_ms": c_cache_ms,
        "c_cache_path_over_one_call": c_cache_ms / c_one_ms,
    }


def print_table(size: str, kind: str, r: dict[str, Any]) -> None:
    n = r["n_questions"]
    print(
        f"\ninspect_latency size={size} model={kind} ({r['parameter_bytes'] / 1e6:.1f} MB"
        f" {r['dtype']}, {r['device']}) image={r['image']} prompt={r['prompt_tokens']} tokens"
        f" repeats={r['repeats']}"
    )
    rows = [
        ("(a) constrained scoring, 1 question", r["a_constrained_ms"], "1.00x (a)"),
        (
            f"(b) generate <=8 tokens + parse ({r['b_tokens_generated']} made)",
            r["b_generate_parse_ms"],
            f"{r['b_over_a']:.2f}x (a)",
        ),
        (
            f"(c1) {n} questions, one call{' (packed)' if r['c_packed'] else ''}",
            r["c_one_call_ms"],
            f"1.00x (c1), {r['c_one_call_over_one_question']:.2f}x (a)",
        ),
        (
            f"(c2) {n} questions, {n} separate calls",
            r["c_separate_calls_ms"],
            f"{r['c_separate_over_one_call']:.2f}x (c1)",
        ),
        (
            f"(c3) {n} questions, one call, KV-cache path",
            r["c_cache_path_ms"],
            f"{r['c_cache_path_over_one_call']:.2f}x (c1)",
        ),
    ]
    print(f"{'case':<46} {'median ms':>12}  ratio")
    for name, ms, ratio in rows:
        print(f"{name:<46} {ms:>12.1f}  {ratio}")
    t = r["a_timings"]
    print(
        f"(a) split: prep {t['prep_ms']:.1f} ms, vision {t['vision_ms']:.1f} ms,"
        f" language {t['language_ms']:.1f} ms; answer {r['a_answer']}"
        f" {r['a_probabilities']}; (b) text {r['b_text']!r} -> {r['b_parsed']}"
    )
    c = r["c_one_call_split"]
    print(
        f"(c1) split: prep {c['prep_ms']:.1f} ms, vision {c['vision_ms']:.1f} ms,"
        f" language {c['language_ms']:.1f} ms; image views: {r['c_views']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "3b"), default="tiny")
    parser.add_argument("--repeats", type=int, help="Timed runs per case (median).")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="N for (c).")
    parser.add_argument(
        "--one-view", action="store_true", help="drop the templates' ROIs: one image view for all"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    os.environ["HF_HUB_OFFLINE"] = "1"
    from pnp_vision.inspect.runtime import setup_runtime

    backend = setup_runtime().backend
    from pnp_vision.devtools.tiny_models import ensure_model, ensure_tiny_model, qwen_3b

    results: dict[str, Any] = {}
    if args.size == "tiny":
        repeats = args.repeats or 10
        for kind in ("qwen2_5_vl", "mllama"):
            results[kind] = bench_model(
                ensure_tiny_model(kind), 112, repeats, args.questions, args.one_view
            )
            print_table("tiny", kind, results[kind])
    else:
        t0 = time.perf_counter()
        folder = ensure_model("qwen2_5_vl", qwen_3b(), root=ROOT / ".cache" / "bench-models")
        print(f"3b folder {folder} ready in {time.perf_counter() - t0:.0f} s", flush=True)
        results["qwen2_5_vl"] = bench_model(
            folder, 448, args.repeats or 1, args.questions, args.one_view
        )
        print_table("3b", "qwen2_5_vl", results["qwen2_5_vl"])

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "inspect_latency.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged[args.size + ("-one-view" if args.one_view else "")] = {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "blas": backend.blas},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": results,
    }
    path.write_text(json.dumps(merged, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
