"""The one thread that owns the daemon's PUB socket (ZeroMQ sockets are not thread-safe).

Camera threads hand messages over through a small bounded queue. When it is full the *oldest*
frame is dropped and counted against its camera (the newest frame is what a consumer wants);
status messages have their own queue and are never dropped. The socket's send high-water mark
is small, so a slow subscriber loses old frames in ZeroMQ instead of growing memory.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from pnp_vision.errors import ConfigError, PnpVisionError, bind_failed
from pnp_vision.logs import kv
from pnp_vision.protocol.frames import CameraStatus, FrameHeader, pack_frame, pack_status
from pnp_vision.transport.security import Security, release_zap, secure_bind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameMessage:
    header: FrameHeader
    payload: Any  # buffer-protocol object (numpy array); sent without a copy
    on_sent: Callable[[FrameHeader], None] | None = None
    on_dropped: Callable[[FrameHeader], None] | None = None


class Publisher:
    """Binds ``endpoint`` on start(); ``endpoint`` may use a wildcard port (``tcp://127.0.0.1:*``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        context: zmq.Context | None = None,
        sndhwm: int = 4,
        linger_ms: int = 200,
        max_pending: int = 4,
        security: Security | None = None,
    ) -> None:
        if max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {max_pending}")
        self.requested_endpoint = endpoint
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._sndhwm, self._linger_ms, self._max_pending = sndhwm, linger_ms, max_pending
        self._security = security
        self._zap = False
        self._frames: collections.deque[FrameMessage] = collections.deque()
        self._statuses: collections.deque[CameraStatus] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._in_flight = False
        self._thread = threading.Thread(target=self._run, name="capture-publisher", daemon=True)

    def start(self, timeout: float = 5.0) -> None:
        """Bind in the publisher thread; a bad or busy endpoint raises here, naming it."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConfigError(f"publisher did not bind {self.requested_endpoint!r} in {timeout} s")
        if isinstance(self._error, PnpVisionError):
            raise self._error
        if self._error is not None:
            raise bind_failed("frames_endpoint", self.requested_endpoint, self._error) from (
                self._error
            )

    def offer_frame(self, msg: FrameMessage) -> None:
        """Queue a frame; evicts (and reports) the oldest queued frame when full."""
        evicted = None
        with self._cond:
            if len(self._frames) >= self._max_pending:
                evicted = self._frames.popleft()
            self._frames.append(msg)
            self._cond.notify()
        if evicted is not None and evicted.on_dropped is not None:
            evicted.on_dropped(evicted.header)

    def offer_status(self, status: CameraStatus) -> None:
        with self._cond:
            self._statuses.append(status)
            self._cond.notify()

    def wait_room(self, timeout: float) -> bool:
        """For `drain` pacing: True once a frame can be queued without evicting another."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self._frames) < self._max_pending or self._stop.is_set(), timeout
            )

    def wait_drained(self, timeout: float) -> bool:
        """True once every queued frame went to the socket (so a final status counts them)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._frames and not self._in_flight) or not self._thread.is_alive(),
                timeout,
            )

    def stop(self, timeout: float = 1.0) -> None:
        """Send what is queued (statuses first), then close the socket with LINGER."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        sock = self._context.socket(zmq.PUB)
        try:
            sock.linger = self._linger_ms
            sock.sndhwm = self._sndhwm  # before bind: applies to every subscriber's pipe
            self._zap = secure_bind(sock, self._context, self.requested_endpoint, self._security)
            sock.bind(self.requested_endpoint)
            self.endpoint = sock.last_endpoint.decode()
        except (zmq.ZMQError, PnpVisionError) as exc:  # a bad endpoint or a missing key
            sock.close(linger=0)  # an open socket would block context.term() forever
            self._error = exc
            self._release_zap()
            self._ready.set()
            return
        self._ready.set()
        log.info("publishing %s", kv(endpoint=self.endpoint, sndhwm=self._sndhwm))
        try:
            self._loop(sock)
        finally:
            sock.close()
            self._release_zap()

    def _release_zap(self) -> None:
        if self._zap:
            self._zap = False
            release_zap(self._context)

    def _loop(self, sock: zmq.Socket) -> None:
        while True:
            try:
                if self._step(sock):
                    return
            except Exception:  # a bug in one message must not silence every camera
                log.exception("publisher step failed")

    def _step(self, sock: zmq.Socket) -> bool:
        """Send what is queued (statuses first, then one frame); True when done stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._frames or self._statuses or self._stop.is_set(), 0.2)
            statuses = list(self._statuses)
            self._statuses.clear()
            frame = self._frames.popleft() if self._frames else None
            self._in_flight = frame is not None
            if frame is not None:
                self._cond.notify_all()  # room for `drain` pacing
            stopping = self._stop.is_set()
        for status in statuses:
            self._send(sock, pack_status(status), status.camera)
        if frame is not None:
            try:
                parts = pack_frame(frame.header, frame.payload)
                if self._send(sock, parts, frame.header.camera) and frame.on_sent is not None:
                    frame.on_sent(frame.header)
            finally:
                with self._cond:
                    self._in_flight = False
                    self._cond.notify_all()
        return stopping and not self._statuses and not self._frames

    @staticmethod
    def _send(sock: zmq.Socket, parts: list, camera: str) -> bool:
        try:
            # PUB never blocks: past the high-water mark ZeroMQ drops for that subscriber.
            sock.send_multipart(parts, copy=False)
            return True
        except zmq.ZMQError as exc:
            log.error("send failed %s", kv(camera=camera, error=repr(exc)))
            return False
