"""End to end with the trained model: the capture daemon replays the bundled recording, the
worker answers through the client, and every answer is checked against the recording's labels.

The worker reports which recorded frame it used (`frame.source_seq`), so each reply can be
matched with that frame's labelled questions, whatever frame the replay was on.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.evaluation.labels import load_labels
from pnp_vision.service.launch import service_stack

DEMO = PROJECT_ROOT / "recordings" / "demo"
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
WANT_PER_TEMPLATE = 4
DEADLINE_S = 120.0


def _questions(learned: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Every learned template, polarity_mark for all four corners: whatever scene the replayed
    frame shows, its labelled questions are among these."""
    out: list[tuple[str, dict[str, str]]] = []
    for name in learned:
        if name == "polarity_mark":
            out += [(name, {"corner": corner}) for corner in CORNERS]
        else:
            out.append((name, {}))
    return out


def test_replayed_recording_gets_the_labelled_answers(
    trained_model: Path, learned: list[str]
) -> None:
    labels = {frame.seq: frame for frame in load_labels(DEMO)}
    asked = _questions(learned)
    checked: Counter[str] = Counter()
    frames_seen: set[int] = set()
    with (
        tempfile.TemporaryDirectory(prefix="pnpv-", dir="/tmp") as run_dir,
        service_stack(model_dir=trained_model, run_dir=Path(run_dir)) as stack,
        VisionClient(stack.requests_endpoint, timeout=20.0, retries=1) as client,
    ):
        end = time.monotonic() + DEADLINE_S
        while min(checked[name] for name in learned) < WANT_PER_TEMPLATE:
            assert time.monotonic() < end, f"only checked {dict(checked)} in {DEADLINE_S:g} s"
            reply = client.inspect_many("demo", asked, frame="fresh", deadline=10.0)
            assert reply.frame is not None and reply.frame.source_seq is not None
            frame = labels[reply.frame.source_seq]
            frames_seen.add(frame.seq)
            truth = {
                (q.template, tuple(sorted(q.params.items()))): q.answer for q in frame.questions
            }
            for (name, params), result in zip(asked, reply.results, strict=True):
                key = (name, tuple(sorted(params.items())))
                if key not in truth:
                    continue  # not a question this frame's scene answers
                assert result.answer == truth[key], (frame.file, name, params, result)
                checked[name] += 1
    assert len(frames_seen) >= 5  # live replayed frames, not one frame asked again
