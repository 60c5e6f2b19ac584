"""The worker's I/O thread: one ROUTER for controllers, the frame store, the queue, the replies.

This thread alone touches the ROUTER. It answers `ping`, `status` and `templates` itself, so they
never wait behind an inference; it checks every inspect request (parse, template, params,
capacity) before admitting it, picks its frame, and hands it to the MLX thread through a bounded
queue. Replies from the MLX thread come back through `ModelThread.done` plus an inproc wake-up.

Retries: a request resent with the same id and bytes while still pending is not run twice (the
reply goes to the newest sender); one resent after it was answered gets the same reply again.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from pnp_vision.config import Settings
from pnp_vision.errors import (
    BadRequest,
    Busy,
    ConfigError,
    DeadlineExceeded,
    ErrorCode,
    Internal,
    ModelError,
    PnpVisionError,
    ShuttingDown,
)
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import (
    MAX_JSON_BYTES,
    CropRequest,
    FrameUsed,
    InspectRequest,
    InspectResult,
    ModelStatus,
    PingRequest,
    PingResult,
    QueueStatus,
    RecentRequest,
    RecentResult,
    Reply,
    ServiceTimings,
    StatusRequest,
    StatusResult,
    TemplatesResult,
    decode_request,
    encode_reply,
    error_reply,
    ok_reply,
    peek_id,
)
from pnp_vision.service.framestore import FrameStore, frame_used
from pnp_vision.service.history import History
from pnp_vision.service.jobs import Job, RequestQueue
from pnp_vision.service.model_thread import Completion, ModelThread
from pnp_vision.transport.security import security_from_settings

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet

log = logging.getLogger(__name__)

_RECENT_REPLIES = 256
_IDLE_TICK_S = 0.2
_QUEUE_TICK_S = 0.02  # deadline sweeps of queued jobs
_FRAME_TICK_S = 0.005  # polling for `fresh` frames


class Worker:
    """Build with settings, then `serve()` (blocks until SIGTERM/SIGINT or `stop()`)."""

    def __init__(self, settings: Settings, *, context: zmq.Context | None = None) -> None:
        self.settings = settings
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.started = time.monotonic()
        self.jobs = RequestQueue(settings.queue_size)
        self.waiting: list[Job] = []  # admitted, waiting for their frame
        self.pending: dict[tuple[str, bytes], Job] = {}  # admitted and not yet answered
        self.recent: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self.history = History(settings.history_size)
        self.counters: dict[str, int] = {
            "received": 0,
            "inspect": 0,
            "status": 0,
            "templates": 0,
            "ping": 0,
            "recent": 0,
            "crop": 0,
            "replies": 0,
            "ok_replies": 0,
            "inferences": 0,
            "duplicates": 0,
            "resent_replies": 0,
        }
        self.errors: dict[str, int] = {code.value: 0 for code in ErrorCode}
        self._stop = threading.Event()
        self.draining = False
        # Set once the ROUTER is bound (not the model): for callers running serve() in a thread.
        self.ready = threading.Event()
        self.templates: TemplateSet | None = None
        self.router: zmq.Socket | None = None
        self.model: ModelThread | None = None
        self.store: FrameStore | None = None
        self._subscriber: Any = None
        self._zap: Any = None

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Begin the drain (thread-safe; what the signal handlers call)."""
        self._stop.set()

    def serve(self) -> None:
        """Run until stopped; raise ModelLoadError if the model cannot be loaded."""
        from pnp_vision.inspect.runtime import setup_runtime

        setup_runtime(self.settings)  # before pnp_vision.inspect (or anything) imports mlx
        from pnp_vision.capture.subscriber import FrameSubscriber
        from pnp_vision.inspect.templates import TemplateSet

        settings = self.settings
        self.templates = TemplateSet.load(settings.prompts_dir)
        wake_endpoint = f"inproc://pnp-vision-wake-{id(self)}"
        wake = self.context.socket(zmq.PAIR)
        wake.linger = 0
        wake.bind(wake_endpoint)
        restore = _nothing
        try:
            self._subscriber = FrameSubscriber(
                settings.frames_endpoint,
                max_message_bytes=settings.max_message_bytes,
                context=self.context,
                security=security_from_settings(settings.keys_dir, settings.client_key),
            )
            self.store = FrameStore(
                self._subscriber,
                endpoint=settings.frames_endpoint,
                max_frame_age_s=settings.max_frame_age_s,
                discovery_s=settings.camera_discovery_s,
            )
            self.router = self._bind_router()
            self.model = ModelThread(
                model_dir=Path(settings.model_dir),
                prompts_dir=Path(settings.prompts_dir),
                min_confidence=settings.min_confidence,
                compute_dtype=settings.compute_dtype,
                refuse_untrained=settings.refuse_untrained,
                jobs=self.jobs,
                context=self.context,
                wake_endpoint=wake_endpoint,
            )
            restore = self._install_signal_handlers()
            self.model.start()
            self.ready.set()
            log.info(
                "worker listening %s",
                kv(endpoint=settings.requests_endpoint, frames=settings.frames_endpoint),
            )
            self._loop(wake)
        finally:
            restore()
            self._close(wake)
        if self.model.state == "failed" and self.model.error is not None:
            raise self.model.error

    def _bind_router(self) -> zmq.Socket:
        from pnp_vision.transport.security import (
            ZapHandler,
            security_from_settings,
            warn_if_exposed,
        )

        settings = self.settings
        router = self.context.socket(zmq.ROUTER)
        router.linger = 1000  # let the last replies out on shutdown
        router.sndhwm = 1000
        router.rcvhwm = 1000
        # A frame above this is dropped by ZeroMQ (the peer is disconnected); smaller but still
        # too large requests get a `bad_request` reply from _on_message.
        router.maxmsgsize = settings.max_message_bytes
        try:
            security = security_from_settings(settings.keys_dir, settings.client_key)
            if security is not None:
                self._zap = ZapHandler(self.context, security.authorized_dir).start()
                security.secure_server(router)  # before bind; logs refused handshakes
            warn_if_exposed(settings.requests_endpoint, security)
            router.bind(settings.requests_endpoint)
        except zmq.ZMQError as exc:
            router.close(linger=0)
            raise ConfigError(
                f"cannot bind requests_endpoint {settings.requests_endpoint}: {exc}"
            ) from exc
        except BaseException:
            router.close(linger=0)  # an open socket would make context.term() hang forever
            raise
        return router

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: self._on_signal(signum))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int) -> None:
        log.info("signal received, draining %s", kv(signal=signal.Signals(signum).name))
        self._stop.set()

    def _close(self, wake: zmq.Socket) -> None:
        model_alive = self.model is not None and self.model.is_alive()
        if model_alive:
            self.model.join(timeout=2.0)  # type: ignore[union-attr]
            model_alive = self.model.is_alive()  # type: ignore[union-attr]
        if self._subscriber is not None:
            self._subscriber.close()
        if self.router is not None:
            self.router.close()
        wake.close()
        if self._zap is not None:
            self._zap.stop()
        if self._own_context and not model_alive:
            self.context.term()  # would block on the model thread's socket while it lives
        log.info("worker stopped %s", kv(**self.counters))

    # -- the loop -------------------------------------------------------------------------

    def _loop(self, wake: zmq.Socket) -> None:
        assert self.router is not None and self.model is not None
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        drain_until: float | None = None
        while True:
            if self.waiting:
                tick = _FRAME_TICK_S
            elif len(self.jobs):
                tick = _QUEUE_TICK_S
            else:
                tick = _IDLE_TICK_S
            events = dict(poller.poll(tick * 1000))
            if events.get(wake):
                while wake.poll(0):
                    wake.recv()
            if events.get(self.router):
                for _ in range(1000):  # bounded: timers and replies get their turn
                    try:
                        frames = self.router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message_safely(frames)
            self._deliver_completions()
            now = time.monotonic()
            self._service_waiting(now)
            for job in self.jobs.take_expired(now):
                late = DeadlineExceeded(_late_msg(job, now))
                self._finish(job, error_reply(job.id, late, frame=job.frame_used))
            if self.model.state == "failed" and not self.draining:
                self._fail_all(self.model.error or ModelError("model failed"))
                return
            if self.model.state == "ready" and not self.model.is_alive() and not self.draining:
                # Never expected (the thread catches everything), but a dead model thread must
                # not leave requests queued forever: answer them and exit non-zero.
                self.model.state = "failed"
                self.model.error = Internal("the model thread died")
                self._fail_all(self.model.error)
                return
            if self._stop.is_set() and not self.draining:
                self._begin_drain()
                drain_until = now + self.settings.drain_timeout_s
            if self.draining:
                if not self.pending:
                    return
                if drain_until is not None and now > drain_until:
                    log.error(
                        "drain timeout: exiting with the inference in flight %s",
                        kv(pending=len(self.pending)),
                    )
                    return

    def _begin_drain(self) -> None:
        self.draining = True
        left = self.jobs.close() + self.waiting
        self.waiting = []
        for job in left:
            self._finish(job, error_reply(job.id, ShuttingDown("the worker is shutting down")))
        in_flight = len(self.pending)
        log.info("draining %s", kv(answered_shutting_down=len(left), in_flight=in_flight))

    def _fail_all(self, error: PnpVisionError) -> None:
        self.draining = True
        for job in self.jobs.close() + self.waiting:
            self._finish(job, error_reply(job.id, error))
        self.waiting = []

    # -- requests -------------------------------------------------------------------------

    def _on_message_safely(self, frames: list[bytes]) -> None:
        """No message may end the loop: a bug met while handling one is answered `internal`."""
        try:
            self._on_message(frames)
        except Exception as exc:
            log.exception("internal error on a message %s", kv(parts=len(frames)))
            envelope = frames[:2] if len(frames) > 1 and frames[1] == b"" else frames[:1]
            try:
                self._send(envelope, error_reply(None, Internal(f"worker bug: {exc!r}"[:300])))
            except Exception:
                log.exception("cannot answer the message either")

    def _on_message(self, frames: list[bytes]) -> None:
        self.counters["received"] += 1
        # DEALER: [identity, body...]; REQ (or a DEALER mimicking it): [identity, b"", body...]
        split = 2 if len(frames) > 1 and frames[1] == b"" else 1
        envelope, body = frames[:split], frames[split:]
        size = sum(len(part) for part in body)
        if size > self.settings.max_request_bytes:
            request_id = peek_id(body[0]) if body and len(body[0]) <= MAX_JSON_BYTES else None
            self._send(
                envelope,
                error_reply(
                    request_id,
                    BadRequest(
                        f"request is {size} bytes; the limit is {self.settings.max_request_bytes}"
                        " (max_request_bytes)"
                    ),
                ),
            )
            return
        try:
            request, image = decode_request(body)
        except BadRequest as exc:
            request_id = peek_id(body[0]) if body else None
            log.info("bad request %s", kv(peer=_peer(envelope), id=request_id, error=exc))
            self._send(envelope, error_reply(request_id, exc))
            return
        self.counters[request.kind] += 1
        if isinstance(request, PingRequest):
            result = PingResult(time=time.time(), uptime_s=self._uptime())
            self._send(envelope, ok_reply(request.id, result))
        elif isinstance(request, StatusRequest):
            self._send(envelope, ok_reply(request.id, self.status()))
        elif isinstance(request, InspectRequest):
            self._admit(envelope, body, request, image)
        elif isinstance(request, RecentRequest):
            found = self.history.recent(request.limit, request.after)
            self._send(envelope, ok_reply(request.id, RecentResult(inspections=found)))
        elif isinstance(request, CropRequest):
            assert self.templates is not None
            try:
                crop = self.history.crop(request.request, request.question, self.templates)
            except PnpVisionError as exc:
                self._send(envelope, error_reply(request.id, exc))
            else:
                self._send(envelope, ok_reply(request.id, crop))
        else:
            assert self.templates is not None
            listing = [t.model_dump(mode="json") for t in self.templates]
            self._send(envelope, ok_reply(request.id, TemplatesResult(templates=listing)))

    def _admit(
        self, envelope: list[bytes], body: list[bytes], request: InspectRequest, image: bytes | None
    ) -> None:
        assert self.templates is not None and self.store is not None
        digest = hashlib.blake2b(b"\0".join(body), digest_size=16).digest()
        key = (request.id, digest)
        cached = self.recent.get(key)
        if cached is not None:  # a retry of a request already answered: the same answer
            self.counters["resent_replies"] += 1
            self._send_raw(envelope, cached)
            return
        pending = self.pending.get(key)
        if pending is not None:  # a retry while it runs: answer the newest socket, once
            self.counters["duplicates"] += 1
            pending.envelope = envelope
            return
        try:
            if self.draining:
                raise ShuttingDown("the worker is shutting down")
            from pnp_vision.inspect.imageprep import check_encoded_size
            from pnp_vision.inspect.templates import Question

            if image is not None:
                check_encoded_size(image)  # a pixel bomb is bad_request, before admission
            for spec in request.question_list():
                self.templates.render(Question(template=spec.template, params=spec.params))
            if len(self.jobs) + len(self.waiting) >= self.jobs.capacity:
                raise Busy(
                    f"the request queue is full ({self.jobs.capacity} waiting); try again later"
                )
        except PnpVisionError as exc:
            self._send(envelope, error_reply(request.id, exc), request=request)
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
        self.pending[key] = job
        if image is not None:
            job.frame_used = FrameUsed(source="image", camera=request.camera)
            job.picked = now
            self.jobs.put(job)
        else:
            self.waiting.append(job)
            self._service_waiting(now, [job])

    def _service_waiting(self, now: float, jobs: list[Job] | None = None) -> None:
        assert self.store is not None
        for job in list(self.waiting if jobs is None else jobs):
            try:
                frame = self.store.pick(job, now)
                if frame is None and job.expired(now):
                    raise self.store.no_frame_by_deadline(job)
            except PnpVisionError as exc:
                self.waiting.remove(job)
                self._finish(job, error_reply(job.id, exc))
                continue
            if frame is not None:
                self.waiting.remove(job)
                job.frame = frame
                job.frame_used = frame_used(frame)
                job.picked = now
                self.jobs.put(job)

    def _deliver_completions(self) -> None:
        assert self.model is not None
        while True:
            try:
                done = self.model.done.get_nowait()
            except Exception:  # queue.Empty
                return
            self._complete(done)

    def _complete(self, done: Completion) -> None:
        job = done.job
        self.counters["inferences"] += done.ran
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
        )
        result = InspectResult(results=done.results, timings=timings)
        self.history.add(job, done.results, timings.total_ms)
        reply = ok_reply(job.id, result, frame=job.frame_used)
        self._finish(job, reply, cache=True)

    def _finish(self, job: Job, reply: Reply, *, cache: bool = False) -> None:
        self.pending.pop(job.key, None)
        ms = (time.monotonic() - job.arrival) * 1000
        raw = self._send(job.envelope, reply, request=job.request, ms=ms)
        if cache:
            self.recent[job.key] = raw
            while len(self.recent) > _RECENT_REPLIES:
                self.recent.popitem(last=False)

    def _send(
        self,
        envelope: list[bytes],
        reply: Reply,
        *,
        request: InspectRequest | None = None,
        ms: float | None = None,
    ) -> bytes:
        raw = encode_reply(reply)
        self._send_raw(envelope, raw)
        if reply.ok:
            self.counters["ok_replies"] += 1
        elif reply.error is not None:
            self.errors[reply.error.code.value] += 1
        if request is not None:
            outcome = "ok" if reply.ok else reply.error.code.value  # type: ignore[union-attr]
            level = logging.INFO if reply.ok or reply.error.code != "internal" else logging.ERROR
            fields = {"id": reply.id, "camera": request.camera, "outcome": outcome}
            if ms is not None:
                fields["ms"] = round(ms, 1)
            if reply.frame is not None and reply.frame.seq is not None:
                fields["seq"] = reply.frame.seq
            log.log(level, "inspect %s", kv(**fields))
        return raw

    def _send_raw(self, envelope: list[bytes], raw: bytes) -> None:
        assert self.router is not None
        self.counters["replies"] += 1
        try:
            self.router.send_multipart([*envelope, raw], zmq.NOBLOCK)
        except zmq.Again:  # the peer stopped reading; its reply is lost, never blocks the loop
            log.warning("reply dropped: peer not reading %s", kv(peer=envelope[0].hex()))

    # -- status ---------------------------------------------------------------------------

    def _uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def status(self) -> StatusResult:
        assert self.model is not None and self.store is not None
        model = self.model
        return StatusResult(
            uptime_s=self._uptime(),
            ready=model.state == "ready" and not self.draining,
            draining=self.draining,
            model=ModelStatus(
                state=model.state,  # type: ignore[arg-type]
                path=str(model.model_dir),
                info=model.info,
                error=str(model.error) if model.error else None,
            ),
            queue=QueueStatus(
                capacity=self.jobs.capacity,
                depth=len(self.jobs),
                waiting_for_frame=len(self.waiting),
                in_flight=1 if model.in_flight is not None else 0,
            ),
            cameras=self.store.views(),
            counters={
                **self.counters,
                "frame_errors": self.store.subscriber.errors,
                "frame_link_drops": self.store.subscriber.link_drops,
            },
            errors={code: n for code, n in self.errors.items() if n},
            endpoints={
                "requests": self.settings.requests_endpoint,
                "frames": self.settings.frames_endpoint,
            },
        )


def _peer(envelope: list[bytes]) -> str:
    """The ROUTER's routing id of a peer, for log lines (its address is not known here)."""
    return envelope[0].hex() if envelope else "-"


def _nothing() -> None:
    pass


def _late_msg(job: Job, now: float) -> str:
    allowed = (job.deadline - job.arrival) * 1000
    return (
        f"deadline of {allowed:.0f} ms passed after {(now - job.arrival) * 1000:.0f} ms"
        " waiting for the model"
    )
