"""An inspect request from admission to reply: checks, frame wait, queue, completion, deadlines.

Every request is checked (image size, templates and params, capacity) before it is admitted, so
a bad one is answered at once and never reaches the model. An admitted job waits for its frame
(`frame_waits`), then in the bounded queue for the MLX thread (`jobs`); whichever deadline
passes first is answered `deadline_exceeded` by the I/O thread. `next_deadline()` tells the loop
how long it may sleep. I/O thread only.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pnp_vision.config import Settings
from pnp_vision.errors import Busy, DeadlineExceeded, PnpVisionError, ShuttingDown
from pnp_vision.protocol.requests import (
    FrameUsed,
    InspectRequest,
    InspectResult,
    Reply,
    ServiceTimings,
    error_reply,
    ok_reply,
)
from pnp_vision.service.frame_waits import FrameWaits
from pnp_vision.service.history import History
from pnp_vision.service.jobs import Job, RequestQueue
from pnp_vision.service.model_thread import Completion
from pnp_vision.service.replies import Replies
from pnp_vision.service.retries import Retries, request_key
from pnp_vision.service.status import Counters

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet


class Inspections:
    def __init__(
        self,
        settings: Settings,
        *,
        templates: TemplateSet,
        jobs: RequestQueue,
        waits: FrameWaits,
        done: queue.SimpleQueue[Completion],
        history: History,
        replies: Replies,
        counters: Counters,
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.jobs = jobs
        self.waits = waits
        self.done = done  # completions of every model generation
        # Fed an answered inspection; set by the worker (outcome labels read what it kept).
        self.on_answered: Callable[[Job], None] | None = None
        self.history = history
        self.replies = replies
        self.counters = counters
        self.retries = Retries()
        self.draining = False

    @property
    def pending(self) -> int:
        """Admitted and not yet answered (waiting, queued or in the model)."""
        return len(self.retries.pending)

    def admit(
        self, envelope: list[bytes], body: list[bytes], request: InspectRequest, image: bytes | None
    ) -> None:
        key = request_key(request.id, body)
        cached = self.retries.answered(key)
        if cached is not None:  # a retry of a request already answered: the same answer
            self.counters.counts["resent_replies"] += 1
            self.replies.send_raw(envelope, cached)
            return
        if self.retries.resent_while_pending(key, envelope):  # answer the newest socket, once
            self.counters.counts["duplicates"] += 1
            return
        try:
            self._check(request, image)
        except PnpVisionError as exc:
            self.replies.send(envelope, error_reply(request.id, exc), request=request)
            return
        now = time.monotonic()
        deadline_s = (
            request.deadline_ms / 1000
            if request.deadline_ms is not None
            else self.settings.default_deadline_s
        )
        job = Job(
            key=key,
            envelope=envelope,
            request=request,
            image_bytes=image,
            arrival_wall=time.time(),
            arrival=now,
            deadline=now + deadline_s,
        )
        self.retries.admitted(job)
        if image is not None:
            job.frame_used = FrameUsed(source="image", camera=request.camera)
            job.picked = now
            self.jobs.put(job)
        else:
            self._handle_waits(*self.waits.add(job, now))

    def _check(self, request: InspectRequest, image: bytes | None) -> None:
        if self.draining:
            raise ShuttingDown("the worker is shutting down")
        from pnp_vision.inspect.imageprep import check_encoded_size
        from pnp_vision.inspect.templates import Question

        if image is not None:
            check_encoded_size(image)  # a pixel bomb is bad_request, before admission
        for spec in request.question_list():
            self.templates.render(Question(template=spec.template, params=spec.params))
        if len(self.jobs) + len(self.waits) >= self.jobs.capacity:
            raise Busy(f"the request queue is full ({self.jobs.capacity} waiting); try again later")

    def look(self, now: float) -> None:
        """Frames that arrived and deadlines that passed: move or answer the jobs concerned."""
        if len(self.waits):
            self._handle_waits(*self.waits.service(now))
        for job in self.jobs.take_expired(now):
            late = DeadlineExceeded(_late_msg(job, now))
            self._finish(job, error_reply(job.id, late, frame=job.frame_used))

    def _handle_waits(self, ready: list[Job], failed: list[tuple[Job, PnpVisionError]]) -> None:
        for job, exc in failed:
            self._finish(job, error_reply(job.id, exc))
        for job in ready:
            self.jobs.put(job)

    def next_deadline(self) -> float | None:
        due = (self.waits.next_deadline(), self.jobs.next_deadline())
        return min((t for t in due if t is not None), default=None)

    def deliver_completions(self) -> None:
        while True:
            try:
                done = self.done.get_nowait()
            except queue.Empty:
                return
            self._complete(done)

    def _complete(self, done: Completion) -> None:
        job = done.job
        self.counters.counts["inferences"] += done.ran
        if done.error is not None:
            self._finish(job, error_reply(job.id, done.error, frame=job.frame_used))
            return
        assert done.results is not None
        started = job.started or job.arrival
        picked = job.picked or job.arrival
        timings = ServiceTimings(
            queue_ms=round((started - job.arrival) * 1000, 3),
            frame_wait_ms=round((picked - job.arrival) * 1000, 3),
            inference_ms=done.inference_ms,
            total_ms=round((time.monotonic() - job.arrival) * 1000, 3),
            batch=done.batch,
        )
        result = InspectResult(results=done.results, timings=timings, model=done.model)
        self.history.add(job, done.results, timings.total_ms)
        self._finish(job, ok_reply(job.id, result, frame=job.frame_used), cache=True)

    def answer_all(self, error: PnpVisionError) -> int:
        """Stop admitting; answer every queued and waiting job with `error` (the one in the model
        is left to finish). Returns how many were answered."""
        self.draining = True
        left = self.jobs.close() + self.waits.take_all()
        for job in left:
            self._finish(job, error_reply(job.id, error))
        return len(left)

    def _finish(self, job: Job, reply: Reply, *, cache: bool = False) -> None:
        ms = (time.monotonic() - job.arrival) * 1000
        raw = self.replies.send(job.envelope, reply, request=job.request, ms=ms)
        self.retries.finished(job, raw if cache else None)


def _late_msg(job: Job, now: float) -> str:
    allowed = (job.deadline - job.arrival) * 1000
    return (
        f"deadline of {allowed:.0f} ms passed after {(now - job.arrival) * 1000:.0f} ms"
        " waiting for the model"
    )
