"""`pnp-vision label`: the teach loop's commands (no heavy imports until run)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pnp_vision.errors import ConfigError


def _label(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect.templates import TemplateSet, parse_params
    from pnp_vision.teach.label import label_recording, terminal_prompt

    templates = TemplateSet.load(args.prompts or load_settings().prompts_dir)
    crops = None if args.no_crops else args.crops or Path(tempfile.mkdtemp(prefix="pnp-crops-"))
    counts = label_recording(
        args.recording,
        templates.get(args.template),
        parse_params(args.param),
        terminal_prompt,
        crops=crops,
        relabel=args.relabel,
    )
    return 130 if counts.remaining and args.fail_if_unfinished else 0


def _train(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect.runtime import setup_runtime
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.teach.lora import examples_from_recording

    settings = load_settings()
    setup_runtime(settings)  # before anything imports mlx
    templates = TemplateSet.load(args.prompts or settings.prompts_dir)
    examples = [
        e for rec in args.recording for e in examples_from_recording(rec, templates=args.template)
    ]
    if not examples:
        raise ConfigError(
            "no labelled questions in "
            + ", ".join(map(str, args.recording))
            + (f" for {', '.join(args.template)}" if args.template else "")
            + " (label frames with `pnp-vision label` or the console)"
        )
    base = args.base or settings.model_dir
    if args.lora:
        from pnp_vision.teach.lora import train_lora

        if args.out.exists() and any(args.out.iterdir()) and not args.force:
            raise ConfigError(f"--out {args.out} is not empty (add --force to replace it)")
        report = train_lora(
            base, examples, args.out, steps=args.steps or 100, lr=args.lr or 1e-4,
            seed=args.seed, holdout=args.holdout, templates=templates, rank=args.rank,
            progress=print,
        )  # fmt: skip
        print(report.summary())
        return 0
    from pnp_vision.teach.train import LR, STEPS, fine_tune

    report = fine_tune(
        base, examples, args.out, templates, steps=args.steps or STEPS, batch=args.batch,
        lr=args.lr or LR, seed=args.seed, holdout=args.holdout, force=args.force,
        recordings=args.recording,
    )  # fmt: skip
    print(report.summary())
    print(
        f"model folder {args.out}: {', '.join(report.templates)} answered with their own"
        f" weights, every other template as {base} answers ({report.steps} steps,"
        f" {report.seconds:.0f} s, {report.cpu_seconds:.0f} s CPU); learned templates: "
        + ", ".join(report.learned_templates)
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from pnp_vision.teach.train import LR, STEPS

    t = subparsers.add_parser(
        "train",
        help="fine-tune a model on labelled recordings (the shipped inspector, or LoRA)",
        description=(
            "Train on the labelled questions of one or more recordings (labels.jsonl), hold"
            " out a fifth of the frames, print loss and held-out accuracy as it goes, and end"
            " with held-out accuracy before and after (95% intervals) and whether each taught"
            " template was marked learned. Without --lora a new model folder is written: the"
            " small inspector (default: the settings' model_dir) plus its own weights for the"
            " taught templates only (every other template answers exactly as before), their"
            " calibration and familiarity refitted; a template whose labels hold one answer, or"
            " fewer than 20 of an answer, is refused. With --lora, mlx-vlm's trainer writes a"
            " LoRA adapter folder for a real Qwen2.5-VL or Llama-3.2-Vision model."
        ),
    )
    t.add_argument(
        "--recording",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="labelled recording (repeatable)",
    )
    t.add_argument(
        "--from",
        dest="base",
        type=Path,
        metavar="MODEL",
        help="model folder to start from (default: settings model_dir)",
    )
    t.add_argument("--out", type=Path, required=True, help="new model (or adapter) folder")
    t.add_argument("--lora", action="store_true", help="train a LoRA adapter (real models)")
    t.add_argument(
        "--template",
        action="append",
        metavar="NAME",
        help="only this template's labels (repeatable)",
    )
    t.add_argument(
        "--steps",
        type=int,
        help=f"most training steps (default {STEPS}, fewer once the held-out loss stops"
        " falling; LoRA 100)",
    )
    t.add_argument("--batch", type=int, default=16, help="questions per step (default 16)")
    t.add_argument("--lr", type=float, help=f"learning rate (default {LR:g}; LoRA 1e-4)")
    t.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    t.add_argument("--holdout", type=float, default=0.2, help="frames held out (default 0.2)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--prompts", type=Path, help="template folder (default: settings)")
    t.add_argument("--force", action="store_true", help="replace a non-empty --out")
    t.set_defaults(func=_train)

    p = subparsers.add_parser(
        "label",
        help="answer a template's question for each frame of a recording (resumable)",
        description=(
            "Walk the frames of a recording, show each one's file and the crop the template"
            " sees, read the answer from the terminal and write it to the recording's"
            " labels.jsonl after every frame. Frames already labelled for this question are"
            " skipped, so a session can stop (q, Ctrl-C, end of input) and resume."
        ),
    )
    p.add_argument("--recording", type=Path, required=True, help="recording folder")
    p.add_argument("--template", required=True, metavar="NAME", help="template to label")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="template parameter (repeatable)",
    )
    p.add_argument("--prompts", type=Path, help="template folder (default: settings prompts_dir)")
    p.add_argument(
        "--crops",
        type=Path,
        metavar="DIR",
        help="write the crops here (default: a new temporary folder)",
    )
    p.add_argument("--no-crops", action="store_true", help="show only the frame file")
    p.add_argument("--relabel", action="store_true", help="ask again for labelled frames")
    p.add_argument(
        "--fail-if-unfinished",
        action="store_true",
        help="exit 130 if frames are left (for scripts)",
    )
    p.set_defaults(func=_label)
