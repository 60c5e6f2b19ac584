"""python -m pnp_vision.devtools.second_look --out DIR [--family NAME|all | --rig NAME]
--seed N --frames M: write second-look recordings (evaluation only: never train on them,
except a rig's frames that stand in for a user's own rig in the teach loop)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pnp_vision.devtools.second_look.families import FAMILIES, RIGS
from pnp_vision.devtools.second_look.record import write_recording


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pnp_vision.devtools.second_look",
        description="Write the second look's frames (an evaluation-only renderer, apart from"
        " the generator) as labelled recording folders.",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="recording folder (one family or rig), or the parent of one folder per"
        " family (--family all)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--family",
        default="all",
        choices=[*FAMILIES, "all"],
        help="a family, or all of them (default)",
    )
    which.add_argument(
        "--rig",
        choices=list(RIGS),
        help="one fixed look, only the content varies (teach-loop rigs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=60, help="frames per recording (default 60)")
    p.add_argument("--force", action="store_true", help="replace existing folders")
    p.add_argument("--png-level", type=int, default=3, choices=range(10), metavar="0-9")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.frames < 1:
        print("second_look: error: --frames must be >= 1", file=sys.stderr)
        return 2
    if args.rig:
        jobs = [(args.out, RIGS[args.rig], args.rig)]
    elif args.family == "all":
        jobs = [(args.out / name, style, name) for name, style in FAMILIES.items()]
    else:
        jobs = [(args.out, FAMILIES[args.family], args.family)]
    for folder, style, stream in jobs:
        if folder.exists() and any(folder.iterdir()):
            if not args.force:
                print(
                    f"second_look: error: {folder} is not empty (--force replaces it)",
                    file=sys.stderr,
                )
                return 2
            shutil.rmtree(folder)
        write_recording(
            folder,
            style,
            stream=stream,
            seed=args.seed,
            frames=args.frames,
            png_level=args.png_level,
            progress=True,
        )
        print(f"wrote {args.frames} frames of {stream} to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
