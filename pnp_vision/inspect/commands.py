"""`pnp-vision inspect` (one question about one image file) and `pnp-vision templates`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pnp_vision.errors import BadRequest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="Ask one templated question about an image file.")
    p.add_argument("--model", type=Path, help="Model folder (default: settings model_dir).")
    p.add_argument("--image", type=Path, required=True, help="PNG/JPEG file.")
    p.add_argument("--template", required=True, help="Template name (see `templates`).")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="Template parameter."
    )
    p.add_argument("--roi", help="Crop x,y,width,height in pixels before the template's own.")
    p.add_argument("--prompts", type=Path, help="Template folder (default: settings).")
    p.add_argument("--min-confidence", type=float, help="Default: settings min_confidence.")
    p.add_argument("--json", action="store_true", help="Print the InspectionResult as JSON.")
    p.add_argument("--save-crop", type=Path, metavar="FILE", help="Write the image the model saw.")
    p.set_defaults(func=run_inspect)

    t = sub.add_parser("templates", help="List the inspection templates and their parameters.")
    t.add_argument("--prompts", type=Path, help="Template folder (default: settings).")
    t.add_argument("--json", action="store_true", help="Print the templates as JSON.")
    t.set_defaults(func=run_templates)


def _parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise BadRequest(f"--roi {text!r} must be x,y,width,height in pixels") from None
    return x, y, w, h


def run_inspect(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect import Question, TemplateSet
    from pnp_vision.inspect.adapters import open_inspector
    from pnp_vision.inspect.imageprep import read_image_file
    from pnp_vision.inspect.runtime import setup_runtime
    from pnp_vision.inspect.templates import parse_params
    from pnp_vision.logs import setup_logging

    settings = load_settings(
        model_dir=args.model, prompts_dir=args.prompts, min_confidence=args.min_confidence
    )
    setup_logging("WARNING")
    runtime = setup_runtime(settings)
    question = Question(template=args.template, params=parse_params(args.param))
    roi = _parse_roi(args.roi)
    templates = TemplateSet.load(settings.prompts_dir)
    templates.render(question)  # bad template/params fail before the model loads
    image = read_image_file(args.image)  # before the model loads
    t0 = time.perf_counter()
    inspector = open_inspector(  # a taught folder's templates through their own weights
        settings.model_dir,
        templates,
        min_confidence=settings.min_confidence,
        compute_dtype=settings.compute_dtype,
        runtime=runtime,
    )
    load_ms = (time.perf_counter() - t0) * 1e3
    result = inspector.inspect(image, [question], roi=roi)[0]
    if args.save_crop is not None:
        from pnp_vision.inspect.imageprep import template_view

        view = template_view(image, templates.get(question.template), roi=roi)
        view.save(args.save_crop, format="PNG")
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    mark = "confident" if result.confident else f"NOT confident (< {settings.min_confidence:g})"
    if result.trained is False:
        mark = "NOT confident: the model did not learn this template"
    elif result.familiar is False:
        mark = (
            f"NOT confident: unfamiliar view (familiarity {result.familiarity:.2f} > 1),"
            " unlike what the model was trained on"
        )
    print(f"{result.template}: {result.answer} ({mark})")
    print(f"  question: {result.question}")
    for answer, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1]):
        print(f"  {answer:<12} {p:.4f}")
    t = result.timings
    print(
        f"  timings: prep {t.prep_ms:.1f} ms, vision {t.vision_ms:.1f} ms,"
        f" language {t.language_ms:.1f} ms, total {t.total_ms:.1f} ms"
        f" (model load {load_ms:.0f} ms)"
    )
    return 0


def run_templates(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect import TemplateSet

    settings = load_settings(prompts_dir=args.prompts)
    templates = TemplateSet.load(settings.prompts_dir)
    if args.json:
        print(json.dumps([t.model_dump(mode="json") for t in templates], indent=2))
        return 0
    for t in templates:
        print(f"{t.name}  [{' / '.join(t.answers)}]")
        print(f"  {t.description}")
        print(f"  question: {t.question}")
        for name, p in t.params.items():
            rule = f"one of {', '.join(p.choices)}" if p.choices else f"matches {p.pattern}"
            print(f"  param {name} ({p.type.value}, {rule}, max {p.max_length} chars)")
        extras = []
        if t.roi is not None:
            extras.append(f"roi {t.roi}")
        if t.max_pixels is not None:
            extras.append(f"max_pixels {t.max_pixels}")
        if t.view is not None:
            extras.append(f"view {t.view[0]}x{t.view[1]}")
        if extras:
            print(f"  {', '.join(extras)}")
    return 0
