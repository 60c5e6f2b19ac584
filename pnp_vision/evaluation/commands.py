"""`pnp-vision eval`: how well a model answers on a labelled recording, and how fast."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()  # before anything imports mlx
    from pnp_vision.evaluation.evaluate import evaluate
    from pnp_vision.evaluation.labels import load_labels
    from pnp_vision.evaluation.report import render_text
    from pnp_vision.inspect import TemplateSet
    from pnp_vision.inspect.adapters import open_inspector

    load_labels(args.recording)  # a missing folder or label file, before the model loads
    settings = load_settings()
    model_dir = args.model or settings.model_dir
    min_confidence = settings.min_confidence if args.min_confidence is None else args.min_confidence
    templates = TemplateSet.load(args.prompts or settings.prompts_dir)
    inspector = open_inspector(  # a taught folder's templates through their own weights
        model_dir,
        templates,
        min_confidence=min_confidence,
        compute_dtype=args.compute_dtype or settings.compute_dtype,
    )
    report = evaluate(
        inspector,
        args.recording,
        lambda name: list(templates.get(name).answers),
        model_name=str(model_dir),
        min_confidence=min_confidence,
        templates=args.template or None,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_text(report))
    if args.fail_under is not None:
        low = [s.template for s in report.templates.values() if s.accuracy < args.fail_under]
        if low or not report:
            return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="accuracy, confusion, confidence and latency of a model on a labelled recording",
        description=(
            "Ask every labelled question of a recording (labels.jsonl) through the normal"
            " inspector and report, per template: accuracy, confusion matrix, the share of"
            " answers below the confidence bar, and latency p50/p95."
        ),
    )
    p.add_argument("--model", type=Path, help="model folder (default: settings model_dir)")
    p.add_argument("--recording", type=Path, required=True, help="recording folder with labels")
    p.add_argument("--prompts", type=Path, help="template folder (default: settings prompts_dir)")
    p.add_argument(
        "--template", action="append", metavar="NAME", help="only this template (repeatable)"
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        metavar="P",
        help="confidence bar (default: settings min_confidence)",
    )
    p.add_argument("--compute-dtype", help="auto, float32, bfloat16, float16")
    p.add_argument(
        "--fail-under",
        type=float,
        metavar="ACC",
        help="exit 1 if any template's accuracy is below ACC (0..1), for CI",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)
