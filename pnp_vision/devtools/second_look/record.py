"""Write second-look frames as a normal recording folder: PNG frames, `index.jsonl` (the
capture recorder's writer) and `labels.jsonl` (the project's one label store), so `replay`,
`pnp-vision eval`, `label` and `train` read it like any rig's recording."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pnp_vision.capture.recording import RecordingWriter
from pnp_vision.devtools.second_look.render import render_frame
from pnp_vision.devtools.second_look.style import Style
from pnp_vision.evaluation.labels import LabelledFrame, LabelledQuestion, save_labels
from pnp_vision.progress import Progress
from pnp_vision.protocol.frames import Encoding, FrameHeader

CAMERA = "second-look"
TRUTH = "truth.jsonl"  # per frame, the geometry and look drawn (for slicing results by knob)
T0 = 1_800_000_000.0  # capture times: a fixed start, 10 frames a second
META = "second_look.json"


def write_recording(
    out: Path,
    style: Style,
    *,
    stream: str,
    seed: int,
    frames: int,
    png_level: int = 3,
    progress: bool = False,
) -> Path:
    """Frames 0..frames-1 of (`seed`, `stream`) into the new folder `out`."""
    out = Path(out)
    labels: list[LabelledFrame] = []
    truths: list[str] = []
    bar = Progress(f"second look {stream}", frames, stream=sys.stderr) if progress else None
    with RecordingWriter(out, png_level=png_level) as writer:
        for i in range(frames):
            frame = render_frame(style, seed, stream, i)
            w, h = frame.image.size
            header = FrameHeader(
                camera=CAMERA,
                session=f"second-look-{stream}-{seed}"[:64],
                seq=i,
                capture_time=T0 + 0.1 * i,
                width=w,
                height=h,
                channels=3,
                encoding=Encoding.PNG,
            )
            bgr = np.ascontiguousarray(np.asarray(frame.image)[:, :, ::-1])
            name = writer.write(header, bgr, name=f"{i:06d}-{frame.scene}.png")
            questions = [
                LabelledQuestion(template=t, params=p, answer=a) for t, p, a in frame.questions
            ]
            labels.append(LabelledFrame(seq=i, file=name, scene=frame.scene, questions=questions))
            truths.append(json.dumps({"seq": i, "scene": frame.scene, **_plain(frame.truth)}))
            if bar is not None:
                bar.advance()
    save_labels(out, labels)
    (out / TRUTH).write_text("".join(t + "\n" for t in truths))
    (out / META).write_text(json.dumps({"stream": stream, "seed": seed, "frames": frames}) + "\n")
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, tuples as lists, floats to 3 decimals."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 3)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value
