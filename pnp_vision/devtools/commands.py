"""`pnp-vision dev ...`: developer tools (tiny model folders for demos, tests and benchmarks)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="Developer tools.")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True, metavar="TOOL")
    t = dev_sub.add_parser(
        "tiny-model", help="Build (or reuse) a tiny random-weight model folder and print its path."
    )
    t.add_argument("--kind", default="qwen2_5_vl", choices=("qwen2_5_vl", "mllama"))
    t.add_argument("--out", type=Path, help="Copy the folder here (default: just the cache).")
    t.set_defaults(func=run_tiny_model)


def run_tiny_model(args: argparse.Namespace) -> int:
    from pnp_vision.devtools.tiny_models import ensure_tiny_model
    from pnp_vision.errors import BadRequest

    path = ensure_tiny_model(args.kind)
    if args.out is not None:
        if args.out.exists() and any(args.out.iterdir()):
            raise BadRequest(f"--out {args.out} exists and is not empty")
        shutil.copytree(path, args.out, dirs_exist_ok=True)
        path = args.out
    print(path)
    return 0
