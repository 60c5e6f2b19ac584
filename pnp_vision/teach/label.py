"""`pnp-vision label`: answer one template's question for each frame of a recording.

Labels go to the recording's `labels.jsonl` (the file `eval` and `train` read) after every
answer, atomically, so a session can stop anywhere and resume where it stopped: frames that
already carry an answer to this question are skipped. Each frame is shown as its file path and
the crop the template sees (written as a PNG), since that crop, not the frame, is what a model
is trained on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pnp_vision.capture.sources import RecordedEntry, read_index
from pnp_vision.errors import ConfigError
from pnp_vision.evaluation.labels import answer_of, load_labels_if_any, save_labels, with_answer
from pnp_vision.inspect.templates import Template

SKIP, QUIT = "", "quit"


@dataclass
class LabelCounts:
    labelled: int = 0
    skipped: int = 0
    already: int = 0
    remaining: int = 0


def parse_reply(reply: str, answers: list[str]) -> str | None:
    """The answer a typed reply means: exact (any case), else a unique prefix ("y" for YES).
    `""` skips the frame and `"quit"`/`"q"` stops, unless an answer claims them; None: unclear."""
    text = reply.strip()
    lowered = text.lower()
    exact = [a for a in answers if a.lower() == lowered]
    if exact:
        return exact[0]
    if not text:
        return SKIP
    prefixed = [a for a in answers if a.lower().startswith(lowered)]
    if len(prefixed) == 1:
        return prefixed[0]
    if lowered in ("q", "quit") and not prefixed:
        return QUIT
    return None


def terminal_prompt(prompt: str) -> str:
    """`input(prompt)`, except when stdin is not a terminal (a pipe, a script): the typed
    answer is not echoed there, so the prompt ends its own line instead of running into the
    next one. EOFError at the end of the input, as `input` raises."""
    if sys.stdin.isatty():
        return input(prompt)
    print(prompt, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


def save_crop(entry: RecordedEntry, template: Template, crops: Path) -> Path:
    """Write the crop the template sees of this frame; returns its path."""
    from pnp_vision.inspect.imageprep import template_view

    view = template_view(entry.file.read_bytes(), template)
    crops.mkdir(parents=True, exist_ok=True)
    path = crops / f"{entry.file.stem}-{template.name}.png"
    view.save(path)
    return path


def label_recording(
    recording: Path,
    template: Template,
    params: dict[str, str],
    ask: Callable[[str], str],
    *,
    crops: Path | None = None,
    relabel: bool = False,
    say: Callable[[str], None] = print,
) -> LabelCounts:
    """Walk the frames, asking `ask(prompt)` for each unlabelled one. EOF or Ctrl-C from `ask`
    stops like `quit`: every answer given so far is already on disk."""
    recording = Path(recording)
    if not recording.is_dir():
        raise ConfigError(f"{recording}: no such recording folder")
    question = template.render(params)  # checks the parameters before any frame is shown
    entries = read_index(recording)
    if not entries:
        raise ConfigError(f"{recording}: no frames (no index.jsonl lines and no image files)")
    answers = list(template.answers)
    labels = load_labels_if_any(recording)
    by_seq = {f.seq: f for f in labels}
    counts = LabelCounts()
    todo = [
        e for e in entries if relabel or answer_of(by_seq.get(e.seq), template.name, params) is None
    ]
    counts.already = len(entries) - len(todo)
    say(
        f"{recording}: {len(entries)} frames, {counts.already} already labelled for"
        f" {template.name}; question: {question}"
    )
    say(f"answers: {', '.join(answers)} (a unique prefix will do); Enter skips; q quits")
    for number, entry in enumerate(todo, start=1):
        shown = f"  crop: {save_crop(entry, template, crops)}" if crops else ""
        say(f"[{number}/{len(todo)}] seq {entry.seq}  {entry.file}{shown}")
        while True:
            try:
                reply = ask(f"{template.name}? ")
            except (EOFError, KeyboardInterrupt):
                reply = QUIT
            choice = parse_reply(reply, answers) if reply != QUIT else QUIT
            if choice is not None:
                break
            say(f"  {reply!r} is not one of {', '.join(answers)}")
        if choice == QUIT:
            counts.remaining = len(todo) - number + 1
            break
        if choice == SKIP:
            counts.skipped += 1
            continue
        labels = with_answer(
            labels,
            seq=entry.seq,
            file=entry.file.name,
            template=template.name,
            params=params,
            answer=choice,
        )
        save_labels(recording, labels)
        counts.labelled += 1
    say(
        f"{counts.labelled} labelled, {counts.skipped} skipped, {counts.remaining} left;"
        f" labels in {recording / 'labels.jsonl'}"
    )
    return counts
