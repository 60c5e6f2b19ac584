"""The I/O thread's loop: one poll on the ROUTER and the wake-up, then dispatch.

Driven by events, never by a tick: the poll returns on a request (ROUTER readable), on the
wake-up (a model completion or state change, a frame some job waits for, `stop()` or a signal),
or when the earliest deadline among waiting and queued jobs (or the drain) comes due. With
nothing pending it sleeps up to `max_poll_s`, a safety net only. `ping`, `status`, `templates`,
`recent`, `crop` and `outcome` are answered here, so they never wait behind an inference;
`reload` starts a second model generation (`reloads`) and is answered when it ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import zmq

from pnp_vision.config import Settings
from pnp_vision.errors import BadRequest, Internal, ModelError, PnpVisionError, ShuttingDown
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import (
    CropRequest,
    InspectRequest,
    OutcomeRequest,
    PingRequest,
    PingResult,
    RecentRequest,
    RecentResult,
    ReloadRequest,
    StatusRequest,
    StatusResult,
    TemplatesResult,
    decode_request,
    error_reply,
    ok_reply,
    peek_id,
)
from pnp_vision.service.bad_peers import SLOW_DOWN, BadPeers, Verdict
from pnp_vision.service.history import History
from pnp_vision.service.inspections import Inspections
from pnp_vision.service.model_thread import ModelState
from pnp_vision.service.outcomes import Outcomes
from pnp_vision.service.reloads import Generations
from pnp_vision.service.replies import Replies, peer
from pnp_vision.service.status import Counters
from pnp_vision.service.wakeup import Wakeup

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet

log = logging.getLogger("pnp_vision.service.worker")

MAX_POLL_S = 1.0  # the longest sleep with nothing due: a safety net, not a tick
_BURST = 1000  # requests read per wake-up before deadlines and completions get their turn


class IOLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        router: zmq.Socket,
        wakeup: Wakeup,
        stop: threading.Event,
        inspections: Inspections,
        generations: Generations,
        history: History,
        templates: TemplateSet,
        replies: Replies,
        counters: Counters,
        status: Callable[[], StatusResult],
        max_poll_s: float = MAX_POLL_S,
        reload: threading.Event | None = None,
        outcomes: Outcomes | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.wakeup = wakeup
        self._stop = stop
        self.inspections = inspections
        self.generations = generations
        self._reload = reload or threading.Event()  # SIGHUP: set by the signal handler
        self.outcomes = outcomes
        self.history = history
        self.templates = templates
        self.replies = replies
        self.counters = counters
        self.status = status
        self.max_poll_s = max_poll_s
        self.bad_peers = BadPeers(settings.bad_request_rate, counters.counts)
        self.wakes = 0  # loop iterations: a debug figure (an idle worker must stay asleep)

    def run(self) -> None:
        """Until drained (stop) or the model failed; returns with nothing left to answer."""
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.wakeup.fd, zmq.POLLIN)
        drain_until: float | None = None
        while True:
            events = dict(poller.poll(self._timeout_ms(drain_until)))
            self.wakes += 1
            if events.get(self.wakeup.fd):
                self.wakeup.clear()  # before acting: a wake-up set meanwhile is not lost
            if events.get(self.router):
                self._read_requests()
            for frames in self.bad_peers.release():
                self._on_message_safely(frames)
            self.inspections.deliver_completions()
            self._reloads()
            now = time.monotonic()
            self.inspections.look(now)
            if self._model_gone():
                return
            if self._stop.is_set() and not self.inspections.draining:
                self._begin_drain()
                drain_until = now + self.settings.drain_timeout_s
            if self.inspections.draining:
                if not self.inspections.pending:
                    self._read_requests()  # arrived meanwhile: answered shutting_down, not lost
                    for frames in self.bad_peers.release_all():
                        self._on_message_safely(frames)
                    return
                if drain_until is not None and now > drain_until:
                    log.error(
                        "drain timeout: exiting with the inference in flight %s",
                        kv(pending=self.inspections.pending),
                    )
                    return

    def _timeout_ms(self, drain_until: float | None) -> int:
        due = [
            t
            for t in (self.inspections.next_deadline(), self.bad_peers.next_release(), drain_until)
            if t is not None
        ]
        wait = self.max_poll_s
        if due:
            wait = min(wait, max(0.0, min(due) - time.monotonic()))
        return math.ceil(wait * 1000)  # rounded up: waking before a deadline would spin

    def _read_requests(self) -> None:
        for _ in range(_BURST):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            verdict = self.bad_peers.admit(frames[0], frames)
            if verdict is Verdict.NOW:
                self._on_message_safely(frames)
            elif verdict is Verdict.REFUSED:
                self.replies.send_raw(_split(frames)[0], SLOW_DOWN)
        self.wakeup.set()  # more may be queued: come straight back after the other work

    def _reloads(self) -> None:
        if self._reload.is_set() and not self.inspections.draining:
            self._reload.clear()
            self.generations.request(None, None)  # SIGHUP: no one to answer, the log says it
        templates = self.generations.poll()
        if templates is not None:  # swapped: admission, listings and crops use the new set
            self.templates = self.inspections.templates = templates

    def _model_gone(self) -> bool:
        """A failed (or, never expected, dead) model thread: answer everything, then stop."""
        if self.inspections.draining:
            return False
        model = self.generations.current
        state, error = model.snapshot()
        if state is ModelState.READY and not model.is_alive():
            # The thread catches everything, but a dead one must not leave requests queued
            # forever: answer them and exit non-zero.
            error = Internal("the model thread died")
            model.fail(error)
            state = ModelState.FAILED
        if state is not ModelState.FAILED:
            return False
        self.inspections.answer_all(error or ModelError("model failed"))
        return True

    def _begin_drain(self) -> None:
        self.generations.abandon()
        answered = self.inspections.answer_all(ShuttingDown("the worker is shutting down"))
        in_flight = self.inspections.pending
        log.info("draining %s", kv(answered_shutting_down=answered, in_flight=in_flight))

    # -- requests -------------------------------------------------------------------------

    def _on_message_safely(self, frames: list[bytes]) -> None:
        """No message may end the loop: a bug met while handling one is answered `internal`."""
        try:
            self._on_message(frames)
        except Exception as exc:
            log.exception("internal error on a message %s", kv(parts=len(frames)))
            envelope = _split(frames)[0]
            try:
                reply = error_reply(None, Internal(f"worker bug: {exc!r}"[:300]))
                self.replies.send(envelope, reply)
            except Exception:
                log.exception("cannot answer the message either")

    def _on_message(self, frames: list[bytes]) -> None:
        self.counters.counts["received"] += 1
        envelope, body = _split(frames)
        size = sum(len(part) for part in body)
        limit = self.settings.max_request_bytes
        if size > limit:
            request_id = peek_id(body[0]) if body else None  # a bounded scan, never a parse
            too_big = BadRequest(
                f"request is {size} bytes; the limit is {limit} (max_request_bytes)"
            )
            self.replies.send(envelope, error_reply(request_id, too_big))
            self.bad_peers.charge(envelope[0])
            return
        try:
            request, image = decode_request(body)
        except BadRequest as exc:
            request_id = peek_id(body[0]) if body else None
            log.info("bad request %s", kv(peer=peer(envelope), id=request_id, error=exc))
            self.replies.send(envelope, error_reply(request_id, exc))
            self.bad_peers.charge(envelope[0])
            return
        self.counters.counts[request.kind] += 1
        if isinstance(request, PingRequest):
            result = PingResult(time=time.time(), uptime_s=self.counters.uptime())
            self.replies.send(envelope, ok_reply(request.id, result))
        elif isinstance(request, StatusRequest):
            self.replies.send(envelope, ok_reply(request.id, self.status()))
        elif isinstance(request, InspectRequest):
            self.inspections.admit(envelope, body, request, image)
        elif isinstance(request, RecentRequest):
            found = self.history.recent(request.limit, request.after)
            self.replies.send(envelope, ok_reply(request.id, RecentResult(inspections=found)))
        elif isinstance(request, ReloadRequest):
            if self.inspections.draining:
                shutting = ShuttingDown("the worker is shutting down")
                self.replies.send(envelope, error_reply(request.id, shutting))
            else:
                self.generations.request(envelope, request.id)
        elif isinstance(request, OutcomeRequest):
            try:
                if self.outcomes is None:
                    raise BadRequest("outcome labels are off: set outcomes_dir to record them")
                written = self.outcomes.record(request, self.history, self.templates)
            except PnpVisionError as exc:
                refused = kv(id=request.id, request=request.request, error=exc)
                log.info("outcome refused %s", refused)
                self.replies.send(envelope, error_reply(request.id, exc))
            else:
                self.replies.send(envelope, ok_reply(request.id, written))
        elif isinstance(request, CropRequest):
            try:
                crop = self.history.crop(
                    request.request, request.question, self.templates, whole=request.whole
                )
            except PnpVisionError as exc:
                self.replies.send(envelope, error_reply(request.id, exc))
            else:
                self.replies.send(envelope, ok_reply(request.id, crop))
        else:
            listing = [t.model_dump(mode="json") for t in self.templates]
            self.replies.send(envelope, ok_reply(request.id, TemplatesResult(templates=listing)))


def _split(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(envelope, body). DEALER: [identity, body...]; REQ (or a DEALER mimicking it):
    [identity, b"", body...]."""
    split = 2 if len(frames) > 1 and frames[1] == b"" else 1
    return frames[:split], frames[split:]
