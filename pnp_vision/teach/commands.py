"""`pnp-vision label`: the teach loop's commands (no heavy imports until run)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def _label(args: argparse.Namespace) -> int:
    from pnp_vision.config import load_settings
    from pnp_vision.inspect.templates import TemplateSet, parse_params
    from pnp_vision.teach.label import label_recording

    templates = TemplateSet.load(args.prompts or load_settings().prompts_dir)
    crops = None if args.no_crops else args.crops or Path(tempfile.mkdtemp(prefix="pnp-crops-"))
    counts = label_recording(
        args.recording,
        templates.get(args.template),
        parse_params(args.param),
        input,
        crops=crops,
        relabel=args.relabel,
    )
    return 130 if counts.remaining and args.fail_if_unfinished else 0


def register(subparsers: argparse._SubParsersAction) -> None:
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
