"""Outcome labels from the controller: recordings that label themselves in production.

A controller that later observes what really happened (the part was placed, the nozzle was
off-centre) sends an `outcome` request naming the inspection and the true answers. The worker
takes that inspection's frame from `History` and writes it, with the answers as labels, into the
`outcomes_dir` recording with the same writers `pnp-vision record` and `pnp-vision label` use,
so `pnp-vision train --recording OUTCOMES_DIR` learns from it. A second outcome for the same
inspection labels the same frame (no duplicate). Runs on the I/O thread: one PNG write per
inspection labelled, a few milliseconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import BadRequest, ConfigError
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import OutcomeRequest, OutcomeResult

if TYPE_CHECKING:
    from pnp_vision.capture.recording import RecordingWriter
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.service.history import History, Seen

log = logging.getLogger("pnp_vision.service.worker")

_REMEMBERED = 4096  # inspection id -> its written frame, so a later outcome reuses the frame


class Outcomes:
    """Writes labelled frames into one recording folder (I/O thread only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._writer: RecordingWriter | None = None
        self._next_seq = 0
        self._written: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def record(
        self, request: OutcomeRequest, history: History, templates: TemplateSet
    ) -> OutcomeResult:
        """Validate every outcome first (nothing is written for a bad request), then label."""
        from pnp_vision.evaluation.labels import load_labels_if_any, save_labels, with_answer

        started = time.monotonic()
        seen = history.get(request.request)
        answers = seen.summary.answers
        checked = []
        for outcome in request.outcomes:
            if outcome.question >= len(answers):
                raise BadRequest(
                    f"inspection {request.request!r} has {len(answers)} question(s);"
                    f" question {outcome.question} does not exist"
                )
            asked = answers[outcome.question]
            allowed = templates.get(asked.template).answers
            if outcome.answer not in allowed:
                raise BadRequest(
                    f"question {outcome.question} ({asked.template}): answer"
                    f" {outcome.answer!r} is not one of {', '.join(allowed)}"
                )
            checked.append((asked, outcome.answer))
        seq, file = self._frame(request.request, seen)
        frames = load_labels_if_any(self.folder)
        for asked, answer in checked:
            frames = with_answer(
                frames,
                seq=seq,
                file=file,
                template=asked.template,
                params=dict(asked.params),
                answer=answer,
            )
        save_labels(self.folder, frames)
        log.info(
            "outcome %s",
            kv(
                id=request.id,
                request=request.request,
                camera=seen.summary.camera,
                seq=seq,
                labelled=len(checked),
                ms=round((time.monotonic() - started) * 1000, 1),
            ),
        )
        return OutcomeResult(recording=str(self.folder), seq=seq, file=file, labelled=len(checked))

    def _frame(self, request_id: str, seen: Seen) -> tuple[int, str]:
        """The inspection's frame in the recording: written once, at the next free seq."""
        if request_id in self._written:
            return self._written[request_id]
        from pnp_vision.protocol.frames import FrameHeader

        writer = self._open()
        image = _bgr(seen.source, seen.roi)
        used = seen.summary.frame
        header = FrameHeader(
            camera=seen.summary.camera or "image",
            session=(used.session if used is not None and used.session else "outcomes"),
            seq=self._next_seq,
            capture_time=(
                used.capture_time if used is not None and used.capture_time else seen.summary.time
            ),
            width=int(image.shape[1]),
            height=int(image.shape[0]),
        )
        file = writer.write(header, image)
        written = (self._next_seq, file)
        self._next_seq += 1
        self._written[request_id] = written
        while len(self._written) > _REMEMBERED:
            self._written.popitem(last=False)
        return written

    def _open(self) -> RecordingWriter:
        if self._writer is None:
            from pnp_vision.capture.recording import INDEX_NAME, RecordingWriter

            index = self.folder / INDEX_NAME
            if index.exists():
                try:
                    rows = [json.loads(line) for line in index.read_text().splitlines() if line]
                except (OSError, json.JSONDecodeError) as exc:
                    raise ConfigError(f"{index}: unreadable recording index: {exc}") from exc
                self._next_seq = max((int(r.get("seq", -1)) for r in rows), default=-1) + 1
            self._writer = RecordingWriter(self.folder, append=True)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _bgr(source: Any, roi: tuple[int, int, int, int] | None) -> Any:
    """The frame as the inspection saw it before its templates' crops: BGR, the call's ROI."""
    import cv2
    import numpy as np

    if isinstance(source, bytes | bytearray):
        image = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise BadRequest("the inspected image cannot be decoded again")
    else:
        image = source
    if roi is not None:
        x, y, w, h = roi
        image = image[y : y + h, x : x + w]
    return np.ascontiguousarray(image)
