"""A recording's `labels.jsonl`: the true answer of every question asked about each frame.

One line per frame::

    {"seq": 3, "file": "000003.png", "scene": "nozzle",
     "questions": [{"template": "nozzle_alignment", "params": {}, "answer": "YES"}]}

The synthetic generator writes it next to the frames; people label their own recordings the same
way. A bad line is a `ConfigError` naming the file and line, never a silently skipped label.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from pnp_vision.config import StrictModel
from pnp_vision.errors import ConfigError
from pnp_vision.protocol.base import one_line

LABELS_FILE = "labels.jsonl"


class LabelledQuestion(StrictModel):
    template: str = Field(min_length=1, description="Template name.")
    params: dict[str, str] = Field(default_factory=dict, description="Template parameters.")
    answer: str = Field(min_length=1, description="The true answer, one of the template's.")


class LabelledFrame(StrictModel):
    seq: int = Field(ge=0, description="Frame sequence number in the recording.")
    file: str = Field(min_length=1, description="Image file, relative to the recording folder.")
    scene: str = Field("", description="Scene kind (nozzle, feeder, part, board...).")
    questions: list[LabelledQuestion] = Field(default_factory=list)


def load_labels(recording: Path) -> list[LabelledFrame]:
    """Every labelled frame of `recording`, in file order."""
    path = Path(recording) / LABELS_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no label file (one JSON object per frame, see pnp-vision eval)")
    frames: list[LabelledFrame] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            frames.append(LabelledFrame.model_validate_json(line))
        except ValidationError as exc:
            raise ConfigError(f"{path}:{number}: invalid label line: {one_line(exc)}") from None
    if not frames:
        raise ConfigError(f"{path}: no labelled frames")
    return frames
