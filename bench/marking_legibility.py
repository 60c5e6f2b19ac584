"""How small can part-marking text be and still tell O from 0, B from 8 in the model's view?

Every character of the marking alphabet is drawn in each marking face at a cap height of H
*view* pixels, on a part's epoxy at a random sub-pixel position, through the way a frame
reaches the model: drawn at camera resolution, resized to the view (INTER_AREA from a camera
larger than the view, INTER_LINEAR up from the trainer's 320x240) and JPEG-compressed at
quality 40; the "render" conditions add what `synthetic.render` adds on top (its worst blur,
sigma 1.2 units = 1.8 view px, the lighting's lowest gain 0.65 and sensor noise sigma 5).

The observer is the best one there is for telling two known shapes apart: it compares each
sample with the mean look of both characters (templates from 16 noise-free samples, the best
of +-1 px shifts) and picks the nearer. Its error on a look-alike pair is the floor: no model
reads better than the pixels allow, so the world keeps its smallest text a margin above the
height where this observer starts to fail. Prints a table and writes
bench/results/marking_legibility.json.

    python bench/marking_legibility.py [--samples 48]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from pnp_vision.devtools.marking_codes import LOOKALIKES, PRIMARY_PAIRS
from pnp_vision.devtools.marking_text import CONDENSED, DOT_MATRIX, REGULAR, Face, draw_block

FACES = {"regular": REGULAR, "condensed": CONDENSED, "dot": DOT_MATRIX}
# (surface, text) greys: the lowest contrast the world draws of each process: laser-etched
# grey on epoxy (+55), and dark ink on a silver can or tantalum body (115 below it)
CONTRASTS = {"laser": (35, 90), "ink": (165, 50)}
# camera pixels per view pixel, and how the view is made from the frame
CAMERAS = {"1280x960 (area)": 960 / 336, "320x240 (linear up)": 240 / 336}
HEIGHTS = (6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 28)
PRIMARY_BAR, ALL_BAR = 0.02, 0.05  # "distinguishable": the observer's error at most this
WINDOW = 40  # view pixels around a character


def _sample(
    ch: str,
    face: Face,
    h: float,
    cam: float,
    contrast: tuple[int, int],
    rng,
    render: bool,
    noise: bool = True,
) -> np.ndarray:
    """One character, centred near the window's middle at a random sub-pixel offset."""
    side = int(np.ceil(WINDOW * cam))
    img = np.full((side, side, 3), contrast[0], np.uint8)
    dx, dy = rng.uniform(-0.5, 0.5, size=2) * cam
    m = np.array([[cam, 0, side / 2 + dx], [0, cam, side / 2 + dy]], dtype=np.float64)
    draw_block(img, [ch], face, h, m, [(contrast[1],) * 3])
    out = img.astype(np.float32)
    if render:  # synthetic.render's worst case: blur 1.2 units, gain 0.65, noise sigma 5
        out = cv2.GaussianBlur(out, (0, 0), 1.8 * cam) * 0.65
        if noise:
            out += rng.normal(0, 5, out.shape).astype(np.float32)
    img = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    method = cv2.INTER_AREA if cam > 1 else cv2.INTER_LINEAR
    view = cv2.resize(img, (WINDOW, WINDOW), interpolation=method)
    return view


def _jpeg(img: np.ndarray) -> np.ndarray:
    _, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 40])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(np.float32)


def _distances(samples: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Each sample's smallest mean squared difference from the template over +-1 px shifts
    (the inner window only): (n,)."""
    inner = samples[:, 2:-2, 2:-2]
    shifted = np.stack(
        [template[2 + y : WINDOW - 2 + y, 2 + x : WINDOW - 2 + x] for y in (-1, 0, 1)
         for x in (-1, 0, 1)]
    )  # fmt: skip
    return ((inner[:, None] - shifted[None]) ** 2).mean(axis=(2, 3)).min(axis=1)


def pair_errors(
    face: Face, h: float, cam: float, contrast, samples: int, render: bool, seed: int = 0
) -> dict[str, float]:
    """Error of the two-choice observer on every look-alike pair (both directions)."""
    rng = np.random.default_rng(seed)
    chars = sorted({c for pair in LOOKALIKES for c in pair})
    templates = {
        c: np.mean(
            [cv2.cvtColor(_sample(c, face, h, cam, contrast, rng, render, noise=False),
                          cv2.COLOR_BGR2GRAY) for _ in range(16)],
            axis=0,
        ).astype(np.float32)
        for c in chars
    }  # fmt: skip
    seen = {
        c: np.stack(
            [_jpeg(_sample(c, face, h, cam, contrast, rng, render)) for _ in range(samples)]
        )
        for c in chars
    }
    errors = {}
    for a, b in LOOKALIKES:
        wrong = (_distances(seen[a], templates[b]) <= _distances(seen[a], templates[a])).sum()
        wrong += (_distances(seen[b], templates[a]) <= _distances(seen[b], templates[b])).sum()
        errors[a + b] = float(wrong) / (2 * samples)
    return errors


def limit(cells: list[dict]) -> int | None:
    """The smallest height from which on every larger one stays under both bars."""
    ok = [c["primary_max"] <= PRIMARY_BAR and c["all_max"] <= ALL_BAR for c in cells]
    for i in range(len(cells)):
        if all(ok[i:]):
            return cells[i]["height"]
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=48, help="samples per character and cell")
    p.add_argument("--out", type=Path, default=Path("bench/results/marking_legibility.json"))
    p.add_argument("--faces", default=",".join(FACES), help="comma list (default: all)")
    p.add_argument("--texts", default=",".join(CONTRASTS), help="comma list (default: all)")
    args = p.parse_args()
    faces = {name: FACES[name] for name in args.faces.split(",")}
    texts = {name: CONTRASTS[name] for name in args.texts.split(",")}
    started = time.perf_counter()
    rows = []
    print(
        f"{'face':10} {'text':6} {'camera':22} {'pipeline':8} "
        + " ".join(f"{h:>5}" for h in HEIGHTS)
    )
    for face_name, face in faces.items():
        for contrast_name, contrast in texts.items():
            for cam_name, cam in CAMERAS.items():
                for render in (False, True):
                    cells = []
                    for h in HEIGHTS:
                        errs = pair_errors(face, h, cam, contrast, args.samples, render)
                        primary = max(errs[a + b] for a, b in PRIMARY_PAIRS)
                        cells.append({"height": h, "primary_max": primary,
                                      "all_max": max(errs.values()), "pairs": errs})  # fmt: skip
                    found = limit(cells)
                    rows.append({"face": face_name, "text": contrast_name, "camera": cam_name,
                                 "pipeline": "render" if render else "jpeg40", "limit": found,
                                 "cells": cells})  # fmt: skip
                    print(
                        f"{face_name:10} {contrast_name:6} {cam_name:22} "
                        f"{'render' if render else 'jpeg40':8} "
                        + " ".join(f"{100 * c['primary_max']:5.1f}" for c in cells)
                        + f"  limit {found}",
                        flush=True,
                    )
    seconds = time.perf_counter() - started
    args.out.write_text(json.dumps({"heights": HEIGHTS, "rows": rows, "seconds": seconds}))
    print(f"max error over the primary look-alike pairs (%), by cap height in view px; {args.out}")
    print(
        f"limit: smallest cap height from which primary pairs <= {PRIMARY_BAR:.0%} and all"
        f" look-alike pairs <= {ALL_BAR:.0%}"
    )
    for face_name, face in faces.items():
        per_char = face.advance("STM32F103C8T6") / 13  # an average advance, in cap heights
        for pipeline in ("jpeg40", "render"):
            found = [
                r["limit"] for r in rows if r["face"] == face_name and r["pipeline"] == pipeline
            ]
            if None in found:
                print(f"  {face_name:10} {pipeline:7} no limit within {HEIGHTS[-1]} px")
                continue
            h = max(found)
            print(f"  {face_name:10} {pipeline:7} limit {h} view px ({h / 1.5:.1f} units),"
                  f" {int(448 // (per_char * h))} characters fit a 448-px line")  # fmt: skip


if __name__ == "__main__":
    main()
