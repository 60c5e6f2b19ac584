"""Make the evaluation families of docs/evaluation.md and run `pnp-vision eval` on each.

    python -m pnp_vision.devtools.families --model models/pnp-inspector --out /tmp/families

Each family is a `make_recording` command line with its own seed (never a training seed), so
the table it prints is the one a person gets by running those commands and `pnp-vision eval`
on each folder. Recordings already in `--out` are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pnp_vision.config import DEFAULT_MIN_CONFIDENCE
from pnp_vision.devtools.synthetic_variation import PACKAGES, TWO_TERMINAL

REAL_PACKAGES = [p for p in PACKAGES if p != "classic"]
TOMBSTONES = ",".join(TWO_TERMINAL)
# name -> make_recording arguments (docs/evaluation.md lists the same command lines)
FAMILIES: dict[str, list[str]] = {
    "base": ["--seed", "9001"],
    "shift20": ["--seed", "9002", "--shift", "20:26"],
    "shift26": ["--seed", "9003", "--shift", "26:32"],
    "tip-small": ["--seed", "9004", "--tip-radius", "12:18", "--scenes", "nozzle_tip,part_held"],
    "tip-big": ["--seed", "9005", "--tip-radius", "38:46", "--scenes", "nozzle_tip,part_held"],
    "harsh": ["--seed", "9006", "--harshness", "1.5:2"],
    "edges": ["--seed", "9007", "--centred", "1.5:3", "--off", "12:15", "--scenes", "nozzle_tip"],
    "hd": ["--seed", "9008", "--size", "1280x720"],
    "tiny": ["--seed", "9009", "--size", "160x120"],
    "fullhd": ["--seed", "9010", "--size", "1920x1080", "--frames", "100"],
    "styles": [
        "--seed", "9011", "--tip-style", "disc,ring,gradient", "--scenes", "nozzle_tip,part_held"
    ],
    "outline": ["--seed", "9012", "--tip-style", "outline", "--scenes", "nozzle_tip,part_held"],
    "jpeg": ["--seed", "9013", "--jpeg-quality", "30:70"],
    # the world knobs, one at a time (docs/evaluation.md), then all of them at once
    "nozzle-makes": [
        "--seed", "9014", "--nozzles", "juki,samsung,yamaha,cp", "--tip-radius", "6:50",
        "--scenes", "nozzle_tip,part_held",
    ],
    "reticles": [
        "--seed", "9015", "--reticles", "cross,dashed,circle,ticks,gap",
        "--scenes", "nozzle_tip,part_held",
    ],
    "held-parts": ["--seed", "9016", "--packages", ",".join(REAL_PACKAGES),
                   "--scenes", "nozzle_tip,part_held"],
    "tapes": ["--seed", "9017", "--tapes", "paper,black,clear", "--scenes", "feeder_pocket"],
    "pads": ["--seed", "9018", "--packages", TOMBSTONES, "--pads", "rect,rounded,oval,home",
             "--scenes", "tombstone"],
    "boards": ["--seed", "9019", "--packages", TOMBSTONES, "--boards", "textured",
               "--scenes", "tombstone"],
    "tilt-edges": ["--seed", "9020", "--packages", TOMBSTONES, "--standing-tilt", "60:70",
                   "--flat-tilt", "6:10", "--scenes", "tombstone"],
    "rotation": ["--seed", "9021", "--rotation", "0:180"],
    "defocus": ["--seed", "9022", "--defocus", "1:2"],
    "motion": ["--seed", "9023", "--motion-blur", "3:6"],
    "dim": ["--seed", "9024", "--exposure=-1.5:-0.8"],
    "bright": ["--seed", "9025", "--exposure", "0.6:1"],
    "vignette": ["--seed", "9026", "--vignette", "0.4:0.8"],
    "world": ["--seed", "9027", "--world"],
    "world-wide": ["--seed", "9028", "--world", "--size", "400x200"],
    "world-portrait": ["--seed", "9029", "--world", "--size", "240x320"],
    "world-hd": ["--seed", "9030", "--world", "--size", "1280x720", "--frames", "150"],
    # the chip scene alone (part_marking, polarity_mark): classic, real parts, the world camera
    "chips": ["--seed", "9031", "--scenes", "chip"],
    "markings": ["--seed", "9032", "--scenes", "chip", "--markings", "world"],
    "markings-hd": ["--seed", "9033", "--scenes", "chip", "--markings", "world",
                    "--size", "1280x720", "--frames", "150"],
    "markings-world": ["--seed", "9034", "--scenes", "chip", "--world"],
}  # fmt: skip
COMMON = ["--frames", "300", "--noise", "3"]
FAST_PNG = ["--png-level", "1"]  # the same pixels, written several times faster


def make(out: Path, names: list[str], scale: int = 1) -> dict[str, Path]:
    """Write each family's recording under `out` (kept if it is already there, with as many
    frames); `scale` times the usual frames, for finer shares (one miss in 60 is 1.7%)."""
    from pnp_vision.devtools.make_recording import main as make_recording

    folders = {}
    for name in names:
        folder = out / name
        own = FAMILIES[name]
        frames = scale * int(own[own.index("--frames") + 1] if "--frames" in own else COMMON[1])
        args = [*COMMON, *own]
        labels = folder / "labels.jsonl"
        if not labels.is_file() or len(labels.read_text().splitlines()) != frames:
            args += ["--frames", str(frames), *FAST_PNG, "--out", str(folder), "--force"]
            if make_recording(args) != 0:
                raise SystemExit(f"make_recording failed for family {name}")
        folders[name] = folder
    return folders


def run(model: Path, folders: dict[str, Path], min_confidence: float) -> dict[str, Any]:
    """`pnp-vision eval --json` of every recording, by name (one model load; a taught
    template through the folder's own adapter, as the worker answers it)."""
    from pnp_vision.evaluation.evaluate import evaluate_folders

    return evaluate_folders(model, folders, min_confidence)


def table(reports: dict[str, Any]) -> str:
    """Markdown: per family and template, accuracy / confident-and-wrong / ECE."""
    names = sorted({t for r in reports.values() for t in r["templates"]})
    lines = [
        "| family | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for family, report in reports.items():
        cells = []
        for t in names:
            s = report["templates"].get(t)
            if s is None:
                cells.append("-")
                continue
            mark = " (untrained)" if s["trained"] is False else ""
            ece = "-" if s["ece"] is None else f"{s['ece']:.3f}"
            cells.append(
                f"{100 * s['accuracy']:.1f} / {100 * s['confident_wrong_share']:.1f} / {ece}"
                f" (n={s['questions']}){mark}"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pnp_vision.devtools.families", description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for the recordings")
    p.add_argument("--family", action="append", choices=sorted(FAMILIES), help="only these")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    p.add_argument(
        "--scale", type=int, default=1, help="record this many times the usual frames (300)"
    )
    p.add_argument("--json", type=Path, help="also write every report here")
    args = p.parse_args(argv)
    folders = make(args.out, args.family or list(FAMILIES), args.scale)
    reports = run(args.model, folders, args.min_confidence)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    print("accuracy % / confident-and-wrong % / ECE per template")
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
