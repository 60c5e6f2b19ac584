"""The receiving side: a SUB socket on a background thread feeding a small ring per camera.

The thread drains the socket as fast as it can (decoding as it goes), so the consumer always
reads recent frames and a slow consumer costs nothing but skipped frames: the ring holds
``ring_size`` frames per camera, the socket at most ``rcvhwm`` messages. A new capture session
for a camera (daemon restart) drops that camera's older frames, so a frame from before a restart
is never served as "latest".

Raw frames are wrapped without a copy and are read-only; copy one before drawing on it.

A message above ``max_message_bytes`` makes ZeroMQ drop the connection as a protocol error,
and a connecting socket never reconnects after one: the frames would stop for good. A monitor
on the socket reports the disconnect; the thread counts it (``link_drops``), logs it and opens a
fresh socket, so one oversized (or hostile) message costs a few frames, not the camera.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import zmq
from zmq.utils.monitor import parse_monitor_message

from pnp_vision.capture.codec import decode
from pnp_vision.errors import ConfigError, NoFrame, PnpVisionError
from pnp_vision.logs import kv
from pnp_vision.protocol.frames import (
    Buffer,
    CameraStatus,
    Encoding,
    FrameHeader,
    frame_topic,
    status_topic,
    unpack,
)
from pnp_vision.transport.security import Security, secure_connect

log = logging.getLogger(__name__)

_MONITORED = (
    zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


@dataclass(frozen=True)
class Frame:
    header: FrameHeader
    image: np.ndarray  # BGR uint8, read-only
    received: float = field(default_factory=time.time)  # Unix time the subscriber decoded it


class _CameraRing:
    def __init__(self, size: int) -> None:
        self.frames: collections.deque[Frame] = collections.deque(maxlen=size)
        self.session: str | None = None
        self.status: CameraStatus | None = None

    def new_session(self, session: str) -> None:
        if session != self.session:
            self.frames.clear()
            self.session = session


class FrameSubscriber:
    """Latest frames and status per camera from a capture daemon's PUB endpoint, or several
    daemons' (comma-separated endpoints: the one SUB socket connects to each)."""

    def __init__(
        self,
        endpoint: str,
        *,
        cameras: Sequence[str] | None = None,
        ring_size: int = 8,
        max_message_bytes: int = 64 << 20,
        context: zmq.Context | None = None,
        rcvhwm: int = 4,
        on_frame: Callable[[Frame], None] | None = None,
        every_frame: bool = False,
        security: Security | None = None,
        all_statuses: bool = False,
    ) -> None:
        """``on_frame`` runs on the receive thread for each decoded frame (keep it quick).

        ``all_statuses=True`` takes every camera's status, not only those of ``cameras``, so
        `cameras()` tells which cameras the daemon publishes (a recorder asked for one it
        does not); frames stay limited to ``cameras``.

        By default, when several JPEG/PNG frames of a camera are queued at once (decoding fell
        behind), only the newest is decoded and the others are counted in ``skipped``; raw
        frames cost nothing to wrap and are all kept. ``every_frame=True`` (a recorder) decodes
        every frame.
        """
        if ring_size < 1:
            raise ConfigError(f"ring_size must be >= 1, got {ring_size}")
        self.endpoint = endpoint
        self._only = frozenset(cameras) if cameras else None
        self._all_statuses = all_statuses
        self._ring_size = ring_size
        self._on_frame = on_frame
        self._every_frame = every_frame
        self._rings: dict[str, _CameraRing] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.errors = 0  # messages that failed to parse or decode
        self.skipped = 0  # frames superseded by a newer one before they were decoded
        self.link_drops = 0  # connections dropped (oversized message, publisher gone): reopened
        self.refusals = 0  # handshakes the publisher refused (CURVE key, mechanism)
        self.handshakes = 0  # connections that completed the ZMTP (and CURVE) handshake
        self._context = context or zmq.Context.instance()
        self._max_message_bytes = max_message_bytes
        self._rcvhwm = rcvhwm
        self._security = security
        # The first socket is opened here, so a bad endpoint or key fails in the caller.
        sockets = self._open()
        # The sockets move to the receive thread now and are never touched here again.
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name="frame-subscriber", daemon=True
        )
        self._thread.start()

    def _open(self) -> tuple[zmq.Socket, zmq.Socket]:
        """A connected SUB socket and its monitor; both closed again if anything fails."""
        sock = self._context.socket(zmq.SUB)
        monitor: zmq.Socket | None = None
        try:
            sock.linger = 0
            sock.rcvhwm = self._rcvhwm
            sock.maxmsgsize = self._max_message_bytes  # before connect
            secure_connect(sock, self._security)  # CURVE keys, before connect
            if self._only is None:
                sock.subscribe(b"")
            else:
                for name in self._only:
                    sock.subscribe(frame_topic(name))
                    if not self._all_statuses:
                        sock.subscribe(status_topic(name))
                if self._all_statuses:
                    sock.subscribe(status_topic(""))  # every camera's status
            monitor = sock.get_monitor_socket(_MONITORED)
            monitor.linger = 0
            for endpoint in self.endpoint.split(","):  # several capture daemons: all of them
                if endpoint.strip():
                    sock.connect(endpoint.strip())
        except (zmq.ZMQError, PnpVisionError) as exc:
            if monitor is not None:
                monitor.close(linger=0)
            sock.close(linger=0)
            if isinstance(exc, PnpVisionError):
                raise
            raise ConfigError(
                f"cannot connect to frames endpoint {self.endpoint!r}: {exc}"
            ) from exc
        return sock, monitor

    # -- consumer API ---------------------------------------------------------------------------

    def latest(self, camera: str) -> Frame | None:
        with self._cond:
            ring = self._rings.get(camera)
            return ring.frames[-1] if ring and ring.frames else None

    def get(self, camera: str, seq: int) -> Frame | None:
        """A frame of the current session by sequence number, if still in the ring."""
        with self._cond:
            ring = self._rings.get(camera)
            if ring is None:
                return None
            for frame in reversed(ring.frames):
                if frame.header.seq == seq:
                    return frame
            return None

    def frames(self, camera: str) -> list[Frame]:
        """The ring of a camera, oldest first."""
        with self._cond:
            ring = self._rings.get(camera)
            return list(ring.frames) if ring else []

    def wait_fresh(self, camera: str, after: float, timeout: float) -> Frame:
        """The first-received frame captured after ``after`` (Unix time); NoFrame on timeout."""

        def fresh() -> Frame | None:
            ring = self._rings.get(camera)
            if ring is None:
                return None
            for frame in ring.frames:
                if frame.header.capture_time > after:
                    return frame
            return None

        with self._cond:
            self._cond.wait_for(lambda: fresh() is not None, max(0.0, timeout))
            found = fresh()
            if found is not None:
                return found
            ring = self._rings.get(camera)
            status = ring.status if ring else None
        why = f"; camera state {status.state.value}" if status else ""
        if status and status.last_error:
            why += f", last error: {status.last_error}"
        if ring is None:
            why = "; nothing received from it yet"
        raise NoFrame(
            f"no frame from camera {camera!r} captured after {after:.3f} within {timeout:g} s{why}"
        )

    def cameras(self) -> dict[str, CameraStatus | None]:
        """Every camera seen (frames or status), with its latest status if one arrived."""
        with self._cond:
            return {name: ring.status for name, ring in self._rings.items()}

    def close(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> FrameSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receive thread -------------------------------------------------------------------------

    def _ring(self, camera: str) -> _CameraRing:
        ring = self._rings.get(camera)
        if ring is None:
            ring = self._rings[camera] = _CameraRing(self._ring_size)
        return ring

    def _run(self, sockets: tuple[zmq.Socket, zmq.Socket]) -> None:
        sock, monitor = sockets
        try:
            while not self._stop.is_set():
                if self._link_dropped(monitor):
                    sock, monitor = self._reopen(sock, monitor)
                    continue
                if not sock.poll(100):
                    continue
                self._drain(sock)
        finally:
            _close_pair(sock, monitor)

    def _link_dropped(self, monitor: zmq.Socket) -> bool:
        """Read the monitor's events; True when the connection to the publisher was dropped."""
        dropped = False
        while monitor.poll(0):
            event = parse_monitor_message(monitor.recv_multipart())["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshakes += 1
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.refusals += 1
                if not _worth_logging(self.refusals):
                    continue
                log.error(
                    "frames publisher refused this subscriber %s",
                    kv(endpoint=self.endpoint, reason="CURVE key not authorized", n=self.refusals),
                )
            elif event in (
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
            ):
                self.refusals += 1
                if not _worth_logging(self.refusals):
                    continue
                log.error(
                    "frames handshake failed %s",
                    kv(
                        endpoint=self.endpoint,
                        reason="CURVE on one side only, or not ZeroMQ",
                        n=self.refusals,
                    ),
                )
            elif event == zmq.EVENT_DISCONNECTED:
                dropped = True
        return dropped

    def _reopen(self, sock: zmq.Socket, monitor: zmq.Socket) -> tuple[zmq.Socket, zmq.Socket]:
        self.link_drops += 1
        _close_pair(sock, monitor)
        if not _worth_logging(self.link_drops):
            return self._open()
        log.warning(
            "frames link dropped, reconnecting %s",
            kv(
                endpoint=self.endpoint,
                drops=self.link_drops,
                why="publisher gone, or a message over max_message_bytes "
                f"({self._max_message_bytes})",
            ),
        )
        return self._open()

    def _drain(self, sock: zmq.Socket) -> None:
        """Take what is queued (up to a bound), then decode only each camera's newest encoded
        frame: when decoding falls behind, superseded frames are skipped."""
        newest: dict[str, tuple[FrameHeader, Buffer]] = {}
        for _ in range(64):
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            frame = self._parse(parts)
            if frame is None:
                continue
            if self._every_frame or frame[0].encoding is Encoding.RAW_BGR8:
                self._accept(*frame)  # raw frames are wrapped, not decoded: keep all
                continue
            if frame[0].camera in newest:
                self.skipped += 1
            newest[frame[0].camera] = frame
        for frame in newest.values():
            self._accept(*frame)

    def _parse(self, parts: list[zmq.Frame]) -> tuple[FrameHeader, Buffer] | None:
        """A frame message of a wanted camera; statuses are applied here and give None."""
        try:
            buffers = [p.bytes for p in parts[:-1]] + [parts[-1].buffer] if parts else []
            message = unpack(buffers)
        except PnpVisionError as exc:
            self._bad(exc)
            return None
        if isinstance(message, CameraStatus):
            if self._only is None or self._all_statuses or message.camera in self._only:
                with self._cond:
                    ring = self._ring(message.camera)
                    ring.new_session(message.session)
                    ring.status = message
                    self._cond.notify_all()
            return None
        if self._only is not None and message[0].camera not in self._only:
            return None
        return message

    def _accept(self, header: FrameHeader, payload: Buffer) -> None:
        try:
            max_pixels = self._max_message_bytes // 3  # what a raw frame could carry
            frame = Frame(header, decode(header, payload, max_pixels=max_pixels))
        except PnpVisionError as exc:
            self._bad(exc)
            return
        with self._cond:
            ring = self._ring(header.camera)
            ring.new_session(header.session)
            ring.frames.append(frame)
            self._cond.notify_all()
        if self._on_frame is not None:
            self._on_frame(frame)

    def _bad(self, exc: PnpVisionError) -> None:
        self.errors += 1
        if _worth_logging(self.errors):
            log.warning("bad message %s", kv(errors=self.errors, error=str(exc)))


def _close_pair(sock: zmq.Socket, monitor: zmq.Socket) -> None:
    with contextlib.suppress(zmq.ZMQError):
        sock.disable_monitor()
    monitor.close(linger=0)
    sock.close(linger=0)


def _worth_logging(count: int) -> bool:
    """The first few of a repeated event, then every 100th: a flood cannot flood the log."""
    return count <= 5 or count % 100 == 0
