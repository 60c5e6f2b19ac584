"""The worker's memory of its latest answered inspections, for `recent` and `crop`.

An operator who sees a wrong answer wants the image the model saw, not the camera frame: the
crop is rebuilt on request by the same `prepare` call the engine makes (same frame, same call
ROI, same template ROI and pixel budget), so it is the exact input and nothing is encoded on the
answer path. Holding the frame costs memory, hence the bounded `history_size`.
"""

from __future__ import annotations

import base64
import io
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import BadRequest
from pnp_vision.protocol.requests import (
    CropResult,
    QuestionResult,
    SeenAnswer,
    SeenInspection,
)

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.service.jobs import Job


@dataclass
class Seen:
    summary: SeenInspection
    source: Any  # the BGR frame array or the uploaded image bytes
    roi: tuple[int, int, int, int] | None


class History:
    """The last `capacity` answered inspections, oldest dropped first (I/O thread only)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, Seen] = OrderedDict()

    def add(self, job: Job, results: list[QuestionResult], total_ms: float) -> None:
        if self.capacity <= 0 or not job.request.keep:
            return
        answers = [
            SeenAnswer(
                template=r.template,
                params=r.params,
                answer=r.answer,
                probability=r.probabilities[r.answer],
                confident=r.confident,
                trained=r.trained,
                familiar=r.familiar,
            )
            for r in results
        ]
        summary = SeenInspection(
            id=job.id,
            time=time.time(),
            camera=job.request.camera,
            frame=job.frame_used,
            answers=answers,
            total_ms=round(total_ms, 3),
        )
        source = job.frame.image if job.frame is not None else job.image_bytes
        self._seen.pop(job.id, None)
        self._seen[job.id] = Seen(summary, source, job.request.roi)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def recent(self, limit: int, after: float | None = None) -> list[SeenInspection]:
        """Newest first."""
        found = []
        for seen in reversed(self._seen.values()):
            if len(found) >= limit or (after is not None and seen.summary.time <= after):
                break
            found.append(seen.summary)
        return found

    def get(self, request_id: str, question: int = 0) -> Seen:
        """A kept inspection that has question `question`; BadRequest naming what is missing."""
        seen = self._seen.get(request_id)
        if seen is None:
            raise BadRequest(
                f"no recent inspection {request_id!r}: the worker keeps the last"
                f" {self.capacity} (history_size)"
            )
        if question >= len(seen.summary.answers):
            raise BadRequest(
                f"inspection {request_id!r} has {len(seen.summary.answers)} question(s);"
                f" question {question} does not exist"
            )
        return seen

    def crop(
        self, request_id: str, question: int, templates: TemplateSet, *, whole: bool = False
    ) -> CropResult:
        """The view the model saw; `whole`: the whole frame, with that view's box on it."""
        from pnp_vision.inspect.imageprep import template_box, template_view, to_pil

        seen = self.get(request_id, question)
        template = templates.get(seen.summary.answers[question].template)
        box = None
        if whole:
            view = to_pil(seen.source)
            box = template_box(view.size, template, roi=seen.roi)
        else:
            view = template_view(seen.source, template, roi=seen.roi)
        png = io.BytesIO()
        view.save(png, format="PNG")
        return CropResult(
            request=request_id,
            question=question,
            template=template.name,
            width=view.width,
            height=view.height,
            png_base64=base64.b64encode(png.getvalue()).decode("ascii"),
            box=box,
        )
