"""Write a synthetic recording folder (the bundled `recordings/demo` is made with the defaults).

    python -m pnp_vision.devtools.make_recording --out recordings/demo

Frames are deterministic from the seed, so regenerating gives the same pixels and labels.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from pnp_vision.errors import BadRequest


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}")
    return int(match[1]), int(match[2])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pnp_vision.devtools.make_recording", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be new)")
    parser.add_argument("--frames", type=int, default=48, help="frame count (default 48)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=_size, default=(320, 240), help="WxH (default 320x240)")
    parser.add_argument("--camera", default="demo", help="camera name in the frame headers")
    parser.add_argument("--fps", type=float, default=10.0, help="recorded pace (default 10)")
    parser.add_argument("--noise", type=float, default=0.6, help="max noise sigma (default 0.6)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    from pnp_vision.devtools.synthetic import write_synthetic_recording

    args = build_parser().parse_args(argv)
    if args.frames < 1:
        raise SystemExit(f"--frames must be >= 1, got {args.frames}")
    if args.out.exists() and args.force:
        shutil.rmtree(args.out)
    try:
        write_synthetic_recording(
            args.out,
            args.frames,
            args.seed,
            args.size,
            camera=args.camera,
            fps=args.fps,
            noise=args.noise,
        )
    except BadRequest as exc:
        print(f"make_recording: error: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.frames} frames ({size / 1e6:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
