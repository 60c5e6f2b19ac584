"""The controller's client: `VisionClient(endpoint, timeout, retries)` over DEALER (or REQ).

Reliability is the "Lazy Pirate" pattern: send, poll for the reply with a timeout; on timeout
close the socket with LINGER 0 (dropping whatever it still holds), open a fresh one, and resend
the *same* request (same id, same bytes) a bounded number of times. The worker answers a resend
of a request it is still working on once, and a resend of one it already answered with the same
reply, so a retry never runs an inspection twice with different answers. A reply whose id is not
the current request's (a late answer to an earlier, abandoned try) is dropped.

Errors come back as the typed exceptions of `pnp_vision.errors` (`.code` is the wire code).
Two errors are the client's own (`ClientCode`): `NoWorker` (`no_worker`) when no worker completes
the connection handshake within `connect_timeout` (2 s): nothing listens at the endpoint, or a
CURVE worker refused this key; and `ServiceTimeout` (`no_reply`) when a worker is connected but
no reply came after every try. A slow model is neither: it answers `deadline_exceeded`.
One client is meant for one thread.

Several workers (one per GPU or host): give the endpoints comma-separated
(`"tcp://gpu1:5556,tcp://gpu2:5556"`, or a list). One DEALER connected to every ready worker
spreads the requests (`pool`: ZeroMQ's round robin; health from each worker's `status`); a
request a worker answers `busy` or `shutting_down`, or that was on a worker whose connection
went down, goes to another at once, with the same id and bytes. What each worker holds for itself
goes to each: `recent` merges their histories, `crop` and `outcome` find the worker that made the
inspection, `reload` reloads them one after another; `status` is one worker's (`workers()`: all).

    with VisionClient("tcp://127.0.0.1:5556") as vc:
        r = vc.inspect("top", "part_marking", {"marking": "R0603"}, frame="fresh")
        if r.answer == "YES" and r.confident: ...
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import zmq
from pydantic import ValidationError
from zmq.utils.monitor import parse_monitor_message

from pnp_vision.config import StrictModel, load_settings
from pnp_vision.errors import BadRequest, ClientCode, PnpVisionError, error_for_code
from pnp_vision.pool import WorkerHealth, WorkerPool, split_endpoints
from pnp_vision.protocol.base import one_line
from pnp_vision.protocol.requests import (
    CropRequest,
    CropResult,
    FrameChoice,
    FrameUsed,
    InspectRequest,
    InspectResult,
    ModelIdentity,
    Outcome,
    OutcomeRequest,
    OutcomeResult,
    PingRequest,
    PingResult,
    QuestionResult,
    QuestionSpec,
    RecentRequest,
    RecentResult,
    ReloadRequest,
    ReloadResult,
    Reply,
    SeenInspection,
    ServiceTimings,
    StatusRequest,
    StatusResult,
    TemplatesRequest,
    TemplatesResult,
    decode_reply,
    encode_request,
)

if TYPE_CHECKING:
    import numpy as np

    from pnp_vision.transport.security import Security

__all__ = ["Inspection", "NoWorker", "ServiceTimeout", "VisionClient"]

_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class ServiceTimeout(PnpVisionError):
    """Connected, but no reply from the worker after every try (stalled or overloaded)."""

    code = ClientCode.NO_REPLY


class NoWorker(ServiceTimeout):
    """No worker completed the handshake: not running, wrong endpoint, or our key refused."""

    code = ClientCode.NO_WORKER


class Inspection(StrictModel):
    """An answered inspect request: the frame it used and one result per question."""

    id: str
    frame: FrameUsed | None
    results: list[QuestionResult]
    timings: ServiceTimings
    round_trip_ms: float
    model: ModelIdentity | None = None  # which model generation answered

    @property
    def result(self) -> QuestionResult:
        """The only result of a one-question request."""
        if len(self.results) != 1:
            raise ValueError(f"{len(self.results)} results; use .results")
        return self.results[0]

    @property
    def answer(self) -> str:
        return self.result.answer

    @property
    def probability(self) -> float:
        return self.result.probabilities[self.result.answer]

    @property
    def confident(self) -> bool:
        return self.result.confident


QuestionLike = QuestionSpec | str | tuple[str, Mapping[str, str]]


class VisionClient:
    """Requests to a worker (or several) with timeouts and bounded retries; see the module
    docstring."""

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        *,
        socket_type: Literal["dealer", "req"] = "dealer",
        security: Security | None = None,
        context: zmq.Context | None = None,
        max_message_bytes: int | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        if (
            endpoint is None
            or timeout is None
            or retries is None
            or max_message_bytes is None
            or connect_timeout is None
        ):
            settings = load_settings()
            connect_timeout = connect_timeout or settings.connect_timeout_s
            endpoint = endpoint or settings.requests_endpoint
            timeout = settings.request_timeout_s if timeout is None else timeout
            retries = settings.client_retries if retries is None else retries
            max_message_bytes = max_message_bytes or settings.max_message_bytes
            if security is None and settings.keys_dir is not None:
                from pnp_vision.transport.security import security_from_settings

                security = security_from_settings(settings.keys_dir, settings.client_key)
        if timeout <= 0:
            raise BadRequest(f"timeout must be > 0 s, got {timeout}")
        if retries < 0:
            raise BadRequest(f"retries must be >= 0, got {retries}")
        if socket_type not in ("dealer", "req"):
            raise BadRequest(f"socket_type must be 'dealer' or 'req', got {socket_type!r}")
        self.endpoints = split_endpoints(endpoint)
        if not self.endpoints:
            raise BadRequest(f"no worker endpoint in {endpoint!r}")
        if len(self.endpoints) > 1 and socket_type != "dealer":
            raise BadRequest("several worker endpoints need socket_type 'dealer'")
        self.endpoint = ",".join(self.endpoints)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.socket_type = socket_type
        self.security = security
        self.max_message_bytes = max_message_bytes
        self.connect_timeout = float(connect_timeout)
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._opened = 0.0  # when the current socket was opened (monotonic)
        self._handshaken = False  # the current socket completed a handshake with a worker
        # Once a worker has answered, a lost connection is a restart to ride out with retries
        # (Lazy Pirate), not "no worker here": NoWorker is for the first contact only.
        self._ever_handshaken = False
        self.reconnects = 0  # sockets reopened after a timeout (for tests and diagnostics)
        self._pool: WorkerPool | None = None  # several endpoints: their sockets and health
        self._pool_ready = False  # a worker of the pool has been ready once

    # -- socket handling --------------------------------------------------------------------

    def _open(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER if self.socket_type == "dealer" else zmq.REQ)
        try:
            sock.linger = 0
            sock.sndhwm = 100
            sock.rcvhwm = 100
            sock.maxmsgsize = self.max_message_bytes
            if self.security is not None:
                self.security.secure_client(sock)  # before connect
            self._monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS)
            self._monitor.linger = 0
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self._close_sockets(sock)
            raise BadRequest(f"cannot connect to {self.endpoint!r}: {exc}") from exc
        except BaseException:
            self._close_sockets(sock)  # an open socket would make close() hang in term()
            raise
        self._opened = time.monotonic()
        self._handshaken = False
        return sock

    def _close_sockets(self, sock: zmq.Socket | None) -> None:
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None
        if sock is not None:
            sock.close(linger=0)

    def _reset(self) -> None:
        self._close_sockets(self._socket)
        self._socket = None

    def close(self) -> None:
        self._reset()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._own_context:
            self._context.term()

    def __enter__(self) -> VisionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the request/reply core -------------------------------------------------------------

    def request(self, request: Any, image: bytes | None = None) -> tuple[Reply, float]:
        """Send `request` (a protocol model), wait for its reply; returns (reply, round trip ms).

        Raises the typed error for an error reply, ServiceTimeout when nothing comes back.
        """
        frames = encode_request(request, image)
        if len(self.endpoints) > 1:
            return self._request_pool(request, frames)
        per_try = self.timeout
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            if self._socket is None:
                self._socket = self._open()
            self._socket.send_multipart(frames, copy=False)
            reply = self._await(request.id, per_try)
            if reply is not None:
                return _ok(reply), (time.monotonic() - started) * 1000
            # Lazy Pirate: the socket may hold a half-sent request or a late reply; drop it.
            self._reset()
            if attempt < self.retries:
                self.reconnects += 1
        tries = self.retries + 1
        raise ServiceTimeout(
            f"no reply from {self.endpoint} to {request.kind} {request.id} after {tries} "
            f"{'try' if tries == 1 else 'tries'} of {per_try:g} s (connected, but the worker "
            "did not answer: stalled or overloaded?)"
        )

    def _request_pool(self, request: Any, frames: list[bytes]) -> tuple[Reply, float]:
        """`request` over several workers: the same Lazy Pirate tries, each spread by the pool;
        what each worker holds for itself (`recent`, `crop`, `outcome`, `reload`) goes to each."""
        pool = self._workers()
        started = time.monotonic()
        if not self._pool_ready:
            if not pool.wait_ready(started + self.connect_timeout):
                reasons = "; ".join(
                    f"{h.endpoint}: {h.error or 'no answer'}" for h in pool.health.values()
                )
                raise NoWorker(f"no worker ready at {self.endpoint} ({reasons})")
            self._pool_ready = True
        if request.kind in _EACH_WORKER:
            reply = self._each_worker(pool, request, frames)
            return reply, (time.monotonic() - started) * 1000
        for attempt in range(self.retries + 1):
            reply = pool.ask(frames, request.id, time.monotonic() + self.timeout)
            if reply is not None:
                return _ok(reply), (time.monotonic() - started) * 1000
            pool.reset()  # Lazy Pirate: a fresh request socket for the next try
            if attempt < self.retries:
                self.reconnects += 1
        tries = self.retries + 1
        raise ServiceTimeout(
            f"no reply from any worker at {self.endpoint} to {request.kind} {request.id} after "
            f"{tries} {'try' if tries == 1 else 'tries'} of {self.timeout:g} s"
        )

    def _each_worker(self, pool: WorkerPool, request: Any, frames: list[bytes]) -> Reply:
        """`request` to every ready worker, each on its own socket: `recent` merges their
        histories (newest first), `crop` and `outcome` take the worker that made the inspection,
        `reload` reloads them one after another (the others answer meanwhile) and stops at the
        first failure."""
        replies: list[Reply] = []
        for endpoint in pool.ready():
            reply = pool.direct(endpoint, frames, request.id, time.monotonic() + self.timeout)
            if reply is None:
                continue  # that worker did not answer in time; the others may
            replies.append(reply)
            if (request.kind == "reload" and not reply.ok) or (
                request.kind in ("crop", "outcome") and reply.ok
            ):
                break
        if not replies:
            raise ServiceTimeout(f"no worker at {self.endpoint} answered {request.kind}")
        failed = [r for r in replies if not r.ok]
        answered = [r for r in replies if r.ok]
        if not answered or (request.kind == "reload" and failed):
            error = failed[-1].error
            assert error is not None
            raise error_for_code(error.code, error.message)
        if request.kind != "recent":
            return answered[-1]
        seen = [i for r in answered for i in RecentResult.model_validate(r.result).inspections]
        newest = sorted(seen, key=lambda i: i.time, reverse=True)[: request.limit]
        merged = RecentResult(inspections=newest).model_dump(mode="json")
        return answered[0].model_copy(update={"result": merged})

    def _workers(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(
                self._context,
                self.endpoints,
                security=self.security,
                max_message_bytes=self.max_message_bytes,
            )
        return self._pool

    def workers(self) -> dict[str, WorkerHealth]:
        """Each worker endpoint's health as this client sees it (several endpoints only):
        ready or not, why not, and its last `status`. Refreshed on every request, and here."""
        if len(self.endpoints) < 2:
            raise BadRequest("workers() is for a client of several endpoints")
        pool = self._workers()
        pool.wait_ready(time.monotonic() + self.connect_timeout)
        return dict(pool.health)

    @property
    def resends(self) -> int:
        """Requests sent again to another worker (busy, shutting down, or gone)."""
        return self._pool.resends if self._pool is not None else 0

    def _handshake_events(self) -> None:
        """Read the monitor: note a completed handshake; raise NoWorker on a refused one."""
        assert self._monitor is not None
        while self._monitor.poll(0):
            event = parse_monitor_message(self._monitor.recv_multipart())["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshaken = self._ever_handshaken = True
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._reset()
                name = self.security.client_name if self.security else "-"
                raise NoWorker(
                    f"the worker at {self.endpoint} refused this client's CURVE key "
                    f"(client_key {name!r}): copy {name}.key into the worker's keys_dir/authorized/"
                )
            else:
                self._reset()
                curve = "without" if self.security is None else "with"
                raise NoWorker(
                    f"handshake with {self.endpoint} failed ({curve} CURVE here): is the worker "
                    "running with the same keys_dir setting (CURVE on both sides or neither)?"
                )

    def _await_handshake(self, end: float) -> bool:
        """Wait (until `end`) for the handshake; NoWorker once connect_timeout has passed."""
        connect_end = self._opened + self.connect_timeout
        while True:
            self._handshake_events()
            if self._handshaken:
                return True
            now = time.monotonic()
            if now >= connect_end and not self._ever_handshaken:
                self._reset()
                raise NoWorker(
                    f"no worker answering at {self.endpoint}: is `pnp-vision worker` running "
                    "(and, with CURVE, is this key authorized)?"
                )
            if now >= end:
                return False
            assert self._monitor is not None
            wait_until = end if self._ever_handshaken else min(end, connect_end)
            self._monitor.poll(int((wait_until - now) * 1000) + 1)

    def _await(self, request_id: str, timeout: float) -> Reply | None:
        assert self._socket is not None
        end = time.monotonic() + timeout
        if not self._handshaken and not self._await_handshake(end):
            return None
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self._socket.poll(int(left * 1000) + 1, zmq.POLLIN):
                return None
            frames = self._socket.recv_multipart()
            body = [f for f in frames if f]  # a DEALER talking to a REQ-style envelope
            if len(body) != 1:
                continue
            reply = decode_reply(body[0])
            if reply.id == request_id:
                return reply
            if reply.id is None and not reply.ok:
                # The worker could not read our id: our own request is malformed (or garbled).
                return reply
            # else: a late reply to an earlier request: not ours, drop it

    # -- the API ----------------------------------------------------------------------------

    def ping(self) -> PingResult:
        reply, _ = self.request(PingRequest(id=_new_id()))
        return PingResult.model_validate(reply.result)

    def status(self) -> StatusResult:
        reply, _ = self.request(StatusRequest(id=_new_id()))
        return StatusResult.model_validate(reply.result)

    def templates(self) -> list[dict[str, Any]]:
        reply, _ = self.request(TemplatesRequest(id=_new_id()))
        return TemplatesResult.model_validate(reply.result).templates

    def recent(self, limit: int = 20, after: float | None = None) -> list[SeenInspection]:
        """The worker's latest answered inspections, from any controller, newest first."""
        reply, _ = self.request(RecentRequest(id=_new_id(), limit=limit, after=after))
        return RecentResult.model_validate(reply.result).inspections

    def crop(self, request_id: str, question: int = 0) -> bytes:
        """PNG bytes of the image the model saw for one question of a recent inspection."""
        got = self.request(CropRequest(id=_new_id(), request=request_id, question=question))[0]
        return base64.b64decode(CropResult.model_validate(got.result).png_base64)

    def reload(self) -> ReloadResult:
        """Reload the worker's model, adapters and templates; returns when the new set answers.

        Raises the error that made it fail (the old set then keeps answering). Loading a large
        model takes a while: give this client a `timeout` long enough for it."""
        reply, _ = self.request(ReloadRequest(id=_new_id()))
        return ReloadResult.model_validate(reply.result)

    def outcome(self, request_id: str, answers: Mapping[int, str]) -> OutcomeResult:
        """Tell the worker the true answers (question index -> answer) the machine observed for
        a recent inspection: its frame is written, labelled, into the worker's outcomes_dir."""
        outcomes = [Outcome(question=q, answer=a) for q, a in answers.items()]
        request = OutcomeRequest(id=_new_id(), request=request_id, outcomes=outcomes)
        reply, _ = self.request(request)
        return OutcomeResult.model_validate(reply.result)

    def inspect(
        self,
        camera: str | None,
        template: str,
        params: Mapping[str, str] | None = None,
        *,
        image: bytes | Path | np.ndarray | None = None,
        frame: FrameChoice | str = FrameChoice.LATEST,
        max_age: float | None = None,
        seq: int | None = None,
        deadline: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> Inspection:
        """Ask one templated question about a camera's frame (or an inline image)."""
        return self.inspect_many(
            camera,
            [QuestionSpec(template=template, params=dict(params or {}))],
            image=image,
            frame=frame,
            max_age=max_age,
            seq=seq,
            deadline=deadline,
            roi=roi,
        )

    def inspect_many(
        self,
        camera: str | None,
        questions: Sequence[QuestionLike],
        *,
        image: bytes | Path | np.ndarray | None = None,
        frame: FrameChoice | str = FrameChoice.LATEST,
        max_age: float | None = None,
        seq: int | None = None,
        deadline: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> Inspection:
        """Several questions answered on one and the same frame, in one model call.

        `max_age` and `deadline` are seconds. The deadline bounds the worker's work (frame wait,
        queue); `timeout` stays per try: a resend of a request the worker is still on costs
        nothing (it is not run twice), so a deadline longer than one try is fine.
        """
        if frame not in FrameChoice._value2member_map_:
            choices = ", ".join(FrameChoice._value2member_map_)
            raise BadRequest(f"frame {frame!r} is not one of {choices}")
        try:
            request = InspectRequest(
                id=_new_id(),
                camera=camera,
                image=image is not None,
                questions=[_question(q) for q in questions],
                frame=FrameChoice(frame),
                max_age_ms=None if max_age is None else max_age * 1000,
                seq=seq,
                deadline_ms=None if deadline is None else deadline * 1000,
                roi=roi,
            )
        except ValidationError as exc:
            raise BadRequest(f"invalid inspect request: {one_line(exc)}") from None
        payload = None if image is None else _image_bytes(image)
        reply, round_trip = self.request(request, payload)
        result = InspectResult.model_validate(reply.result)
        return Inspection(
            id=request.id,
            frame=reply.frame,
            results=result.results,
            timings=result.timings,
            round_trip_ms=round(round_trip, 3),
            model=result.model,
        )


# What only the worker holding the answer can answer, or what every worker must get.
_EACH_WORKER = frozenset({"recent", "crop", "outcome", "reload"})


def _new_id() -> str:
    return uuid.uuid4().hex


def _question(q: QuestionLike) -> QuestionSpec:
    if isinstance(q, QuestionSpec):
        return q
    if isinstance(q, str):
        return QuestionSpec(template=q)
    template, params = q
    return QuestionSpec(template=template, params=dict(params))


def _image_bytes(image: bytes | Path | np.ndarray) -> bytes:
    """PNG/JPEG bytes as they are; a path is read; a BGR numpy array is PNG-encoded."""
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, str | Path):
        try:
            return Path(image).read_bytes()
        except OSError as exc:
            raise BadRequest(f"cannot read image {image}: {exc}") from exc
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise BadRequest(f"cannot PNG-encode an array of shape {getattr(image, 'shape', '?')}")
    return buf.tobytes()


def _ok(reply: Reply) -> Reply:
    """`reply`, or its error raised as the exception its code names."""
    if not reply.ok:
        assert reply.error is not None
        raise error_for_code(reply.error.code, reply.error.message)
    return reply
