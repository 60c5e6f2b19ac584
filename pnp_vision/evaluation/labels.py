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
from pnp_vision.errors import ConfigError, FolderNotFound
from pnp_vision.protocol.base import one_line

LABELS_FILE = "labels.jsonl"


class LabelledQuestion(StrictModel):
    template: str = Field(min_length=1, description="Template name.")
    params: dict[str, str] = Field(default_factory=dict, description="Template parameters.")
    answer: str = Field(min_length=1, description="The true answer, one of the template's.")


class LabelledFrame(StrictModel):
    seq: int = Field(ge=0, description="Frame sequence number in the recording.")
    file: str = Field(min_length=1, description="Image file, relative to the recording folder.")
    scene: str = Field(
        "", description="Scene kind (nozzle, feeder, part, board...); left out when unknown."
    )
    questions: list[LabelledQuestion] = Field(default_factory=list)


def load_labels(recording: Path) -> list[LabelledFrame]:
    """Every labelled frame of `recording`, in file order."""
    folder = Path(recording)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise FolderNotFound(f"recording folder {folder} {what}")
    path = folder / LABELS_FILE
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


def load_labels_if_any(recording: Path) -> list[LabelledFrame]:
    """The recording's labels, or none yet (a folder being labelled for the first time)."""
    if not (Path(recording) / LABELS_FILE).is_file():
        return []
    return load_labels(recording)


def with_answer(
    frames: list[LabelledFrame],
    *,
    seq: int,
    file: str,
    template: str,
    params: dict[str, str],
    answer: str,
) -> list[LabelledFrame]:
    """`frames` with one question's answer set (replacing an earlier answer to the same
    question), kept in seq order: the one rule for every labeller (CLI, console, controller)."""
    by_seq = {f.seq: f for f in frames}
    frame = by_seq.get(seq) or LabelledFrame(seq=seq, file=file)
    questions = [q for q in frame.questions if (q.template, q.params) != (template, params)]
    questions.append(LabelledQuestion(template=template, params=params, answer=answer))
    by_seq[seq] = frame.model_copy(update={"questions": questions})
    return [by_seq[s] for s in sorted(by_seq)]


def save_labels(recording: Path, frames: list[LabelledFrame]) -> Path:
    """Write labels.jsonl atomically (temp file + rename): a crash or Ctrl-C mid-write leaves
    the previous file whole, so labelling is resumable and nothing already labelled is lost."""
    path = Path(recording) / LABELS_FILE
    tmp = path.with_name(f".{LABELS_FILE}.tmp")
    # `scene` only where it is known (a generator's frames): never an empty "scene": ""
    lines = (f.model_dump_json(exclude=None if f.scene else {"scene"}) + "\n" for f in frames)
    tmp.write_text("".join(lines))
    tmp.replace(path)
    return path


def answer_of(frame: LabelledFrame | None, template: str, params: dict[str, str]) -> str | None:
    """The labelled answer to one question about a frame, if there is one."""
    for q in frame.questions if frame else ():
        if q.template == template and q.params == params:
            return q.answer
    return None
