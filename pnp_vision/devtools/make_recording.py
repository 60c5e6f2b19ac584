"""Write a synthetic recording folder (the bundled `recordings/demo` is made with the defaults).

    python -m pnp_vision.devtools.make_recording --out recordings/demo

Frames are deterministic from the seed, so regenerating gives the same pixels and labels.
The family options (shift, tip size and style, lighting, resolution, JPEG) move frames outside
the defaults for evaluation; the world options draw real parts, tips, tapes and pads in
millimetres through a camera that turns, blurs and exposes (`--world`: all of them at real
proportions, the trainer's `WORLD` preset). docs/evaluation.md lists the families used to judge
a model.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pnp_vision.errors import PnpVisionError


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}")
    return int(match[1]), int(match[2])


def _range(text: str) -> tuple[float, float]:
    """`LO:HI` or one number (a range of one value)."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LO:HI or a number, got {text!r}")
    return parts[0], parts[1]


def _quality(text: str) -> tuple[int, int]:
    lo, hi = _range(text)
    if lo != int(lo) or hi != int(hi):
        raise argparse.ArgumentTypeError(f"JPEG quality must be whole numbers, got {text!r}")
    return int(lo), int(hi)


def _styles(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share 0..1, got {text!r}") from None


# world options: (flag, Variation field, parser, metavar, help)
WORLD_OPTIONS = (
    ("--nozzles", "nozzles", _styles, "S,S",
     "nozzle tip makes: classic (the --tip-style drawing), juki, samsung, yamaha, cp"),
    ("--reticles", "reticles", _styles, "S,S",
     "crosshair styles: classic, cross, dashed, circle, ticks, gap (any colour)"),
    ("--packages", "packages", _styles, "S,S",
     "parts held, in pockets and tombstoned: classic, 0201, 0402, 0603, 0805, 1206, melf,"
     " sot23, sot223, soic8, tssop, qfn, qfp, bga, elco, tantalum, led"),
    ("--tapes", "tapes", _styles, "S,S", "carrier tapes: classic, paper, black, clear"),
    ("--pads", "pads", _styles, "S,S", "tombstone pad shapes: classic, rect, rounded, oval, home"),
    ("--boards", "boards", _styles, "S,S", "tombstone boards: classic, textured"),
    ("--standing-tilt", "standing_tilt", _range, "LO:HI",
     "a tombstone's tilt from the board, degrees (60..90; default 90)"),
    ("--flat-tilt", "flat_tilt", _range, "LO:HI",
     "a flat part's tilt from the board, degrees (0..10; default 0)"),
    ("--canvas", "canvas", int, "N", "draw at most N pixels on the shorter side, resize once"),
    ("--rotation", "rotation", _range, "LO:HI", "camera roll, degrees either way (0..180)"),
    ("--defocus", "defocus", _range, "LO:HI", "defocus blur sigma, units"),
    ("--motion-blur", "motion_blur", _range, "LO:HI", "motion streak length, units"),
    ("--exposure", "exposure", _range, "LO:HI",
     "exposure in stops, -4..4 (a negative range: --exposure=-1.5:0)"),
    ("--vignette", "vignette", _range, "LO:HI", "brightness lost at the corners, 0..0.9"),
    ("--jpeg-share", "jpeg_share", _share, "P", "share of frames through JPEG (default 1)"),
    ("--markings", "markings", str, "LOOK",
     "the chip scene (part_marking, polarity_mark): classic, or world (real parts, markings"
     " with near-miss negatives, polarity cues; --world implies it)"),
)  # fmt: skip


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
    parser.add_argument(
        "--png-level", type=int, default=9, choices=range(10), metavar="0-9",
        help="PNG compression (default 9: small files; 1 writes several times faster)",
    )  # fmt: skip
    parser.add_argument("--scenes", type=_styles, help="only these scenes (comma list)")
    family = parser.add_argument_group(
        "families",
        "frames outside the default ranges (lengths in units: 1/224 of the shorter side)",
    )
    family.add_argument(
        "--shift", type=_range, metavar="LO:HI",
        help="crosshair (scene centre) LO..HI units from the image centre, any direction"
        " (default: up to 20 units each way)",
    )  # fmt: skip
    family.add_argument(
        "--tip-radius", type=_range, metavar="LO:HI", help="nozzle tip radius (default 22:36)"
    )
    family.add_argument(
        "--tip-style", type=_styles, metavar="S,S",
        help="nozzle tip render styles, drawn uniformly: metallic (default), disc, ring,"
        " gradient, outline",
    )  # fmt: skip
    family.add_argument(
        "--centred", type=_range, metavar="LO:HI",
        help="tip-to-crosshair distance of a centred tip (nozzle_alignment YES; default 0:2.5,"
        " at most 3)",
    )  # fmt: skip
    family.add_argument(
        "--off", type=_range, metavar="LO:HI",
        help="tip-to-crosshair distance of an off-centre tip (NO; default 14:40, at least 12)",
    )  # fmt: skip
    family.add_argument(
        "--harshness", type=_range, metavar="LO:HI",
        help="lighting ranges (gain, ramp, vignette, colour cast) scaled by a factor drawn"
        " from LO..HI (default 1)",
    )  # fmt: skip
    family.add_argument(
        "--lighting", choices=("varied", "even"), default="varied", help="even: no lighting field"
    )
    family.add_argument(
        "--jpeg-quality", type=_quality, metavar="LO:HI",
        help="pass every frame through JPEG at a quality drawn from LO..HI (5..100)",
    )  # fmt: skip
    world = parser.add_argument_group(
        "world",
        "real parts, tips, tapes and pads in millimetres at a per-frame camera scale, and the"
        " camera's own effects (docs/evaluation.md); each option's default draws nothing new",
    )
    world.add_argument(
        "--world", action="store_true",
        help="start from the WORLD preset (every world option at real proportions, as the"
        " trainer uses it); options given override its fields",
    )  # fmt: skip
    for flag, _, kind, metavar, text in WORLD_OPTIONS:
        world.add_argument(flag, type=kind, metavar=metavar, help=text)
    return parser


def variation_of(args: argparse.Namespace) -> Any:
    """The generator's `Variation` for the family options given (defaults, or the WORLD
    preset's with `--world`, for the rest)."""
    from pnp_vision.devtools.synthetic import WORLD, Variation

    changes = {
        "shift": args.shift,
        "tip_radius": args.tip_radius,
        "tip_styles": args.tip_style,
        "centred": args.centred,
        "off": args.off,
        "harshness": args.harshness,
        "jpeg_quality": args.jpeg_quality,
        **{field: getattr(args, field) for _, field, *_ in WORLD_OPTIONS},
    }
    given = {k: v for k, v in changes.items() if v is not None}
    return replace(WORLD if args.world else Variation(), **given)


def main(argv: list[str] | None = None) -> int:
    from pnp_vision.devtools.synthetic import write_synthetic_recording

    args = build_parser().parse_args(argv)
    variation = variation_of(args)
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
            lighting=args.lighting,
            variation=variation,
            scenes=args.scenes,
            png_level=args.png_level,
        )
    except PnpVisionError as exc:  # a bad size, or an existing recording (config_error)
        print(f"make_recording: error: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.frames} frames ({size / 1e6:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
