"""Several workers behind one client: one DEALER connected to every ready worker.

ZeroMQ does the spreading. One DEALER socket connected to several worker endpoints sends each
request to the next connected worker in turn (round robin over its pipes). With
`ZMQ_IMMEDIATE` a pipe exists only while its connection is up, so nothing waits in a queue for
a worker that is down: a killed worker's pipe goes with its connection and the requests go to
the others. No broker, no extra hop, no scheduler of ours; a worker needs no change.

What ZeroMQ cannot tell is whether a connected worker can answer (still loading its model,
draining on SIGTERM, failed). So each worker's `status` is asked about once a second on a
socket of its own (answered by the worker's I/O thread, never behind an inference), and a
worker is connected to the request socket only while it says `ready`.

A request is sent again (same id, same bytes: a worker never runs one twice) at once when the
worker it may be on disconnects, or when one answers `busy` or `shutting_down` (then to the
next worker, until every ready worker said so; then the error stands). Timeouts and their
retries stay the client's (Lazy Pirate): a request no worker answered in time is sent again
on fresh sockets.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zmq
from pydantic import ValidationError
from zmq.utils.monitor import parse_monitor_message

from pnp_vision.errors import ErrorCode, PnpVisionError
from pnp_vision.protocol.requests import (
    Reply,
    StatusRequest,
    StatusResult,
    decode_reply,
    encode_request,
)

if TYPE_CHECKING:
    from pnp_vision.transport.security import Security

PROBE_EVERY_S = 1.0  # how often each worker's status is asked
# Answers that say "not this worker, now": the request goes to another one at once.
ELSEWHERE = frozenset({ErrorCode.BUSY, ErrorCode.SHUTTING_DOWN})
_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def split_endpoints(endpoint: str | Sequence[str]) -> tuple[str, ...]:
    """`"tcp://a:5556,tcp://b:5556"` (or a list) -> each endpoint once, in order."""
    parts = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


@dataclass
class WorkerHealth:
    """What the client knows of one worker, from its `status` and its connections."""

    endpoint: str
    ready: bool = False
    status: StatusResult | None = None
    error: str | None = None  # why it is not ready (no answer, refused key, loading ...)
    asked: float | None = None  # monotonic time of the status request in flight
    seen: float | None = None  # monotonic time of its last status answer


class WorkerPool:
    """The request socket and the status probes of one client (one thread, like the client)."""

    def __init__(
        self,
        context: zmq.Context,
        endpoints: Sequence[str],
        *,
        security: Security | None,
        max_message_bytes: int,
        probe_every_s: float = PROBE_EVERY_S,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.health = {ep: WorkerHealth(ep) for ep in self.endpoints}
        self.probe_every_s = probe_every_s
        self.resends = 0  # requests sent again to another worker (busy, gone): diagnostics
        self._context = context
        self._security = security
        self._max_message_bytes = max_message_bytes
        self._probes: dict[str, tuple[zmq.Socket, zmq.Socket]] = {}  # endpoint -> (socket, monitor)
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._connected: set[str] = set()  # connect() called on the request socket
        self._up: set[str] = set()  # ... and its handshake done
        self._probe_ids = 0
        self._direct: dict[str, Reply | None] = {}  # id -> reply of a request to one worker
        for endpoint in self.endpoints:
            self._probes[endpoint] = self._dealer(endpoint, immediate=False)

    # -- sockets ----------------------------------------------------------------------------

    def _dealer(self, endpoint: str | None, *, immediate: bool) -> tuple[zmq.Socket, zmq.Socket]:
        sock = self._context.socket(zmq.DEALER)
        try:
            sock.linger = 0
            sock.sndhwm = 100 if immediate else 4  # a down worker holds a few probes at most
            sock.rcvhwm = 100
            sock.maxmsgsize = self._max_message_bytes
            sock.immediate = immediate
            if self._security is not None:
                self._security.secure_client(sock)  # before connect
            monitor = sock.get_monitor_socket(_EVENTS)
            monitor.linger = 0
            if endpoint is not None:
                sock.connect(endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        return sock, monitor

    def _request_socket(self) -> zmq.Socket:
        if self._sock is None:
            self._sock, self._monitor = self._dealer(None, immediate=True)
            self._connected, self._up = set(), set()
        return self._sock

    def reset(self) -> None:
        """Drop the request socket (a try timed out: Lazy Pirate); the probes stay."""
        for sock in (self._monitor, self._sock):
            if sock is not None:
                sock.close(linger=0)
        self._sock = self._monitor = None

    def close(self) -> None:
        self.reset()
        for sock, monitor in self._probes.values():
            monitor.close(linger=0)
            sock.close(linger=0)
        self._probes.clear()

    # -- health -----------------------------------------------------------------------------

    def ready(self) -> list[str]:
        return [ep for ep in self.endpoints if self.health[ep].ready]

    def refresh(self, now: float) -> bool:
        """Ask `status` of every worker due, read the answers there are, and connect the
        request socket to exactly the ready workers; True if a connected one was cut off."""
        for endpoint, (sock, monitor) in self._probes.items():
            self._probe_events(endpoint, monitor)
            health = self.health[endpoint]
            while sock.poll(0):
                try:
                    reply = _reply(sock.recv_multipart())
                except PnpVisionError:  # a status answer we cannot read: as none
                    continue
                if reply is not None and reply.id in self._direct:
                    self._direct[reply.id] = reply  # a request to this worker itself
                elif reply is not None:
                    self._on_probe_reply(health, reply, now)
            if health.asked is not None and now - health.asked > max(2.0, self.probe_every_s):
                health.ready, health.asked = False, None
                health.error = health.error or "no status answer within 2 s"
            last = max(health.asked or 0.0, health.seen or 0.0)
            if health.asked is None and (health.seen is None or now - last >= self.probe_every_s):
                self._probe_ids += 1
                request = StatusRequest(id=f"health-{self._probe_ids}")
                try:
                    sock.send_multipart(encode_request(request), zmq.NOBLOCK)
                    health.asked = now
                    if health.seen is None:
                        health.error = health.error or "no status answer yet"
                except zmq.Again:  # a down worker's queue is full: it stays unready
                    health.ready = False
        return self._sync()

    def _probe_events(self, endpoint: str, monitor: zmq.Socket) -> None:
        while monitor.poll(0):
            event = parse_monitor_message(monitor.recv_multipart())["event"]
            health = self.health[endpoint]
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                health.ready, health.error = False, "the worker refused this client's CURVE key"
            elif event in (
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
            ):
                health.ready = False
                health.error = "handshake failed (CURVE on one side only?)"
            elif event == zmq.EVENT_DISCONNECTED:
                health.ready, health.error = False, "disconnected"

    @staticmethod
    def _on_probe_reply(health: WorkerHealth, reply: Reply, now: float) -> None:
        try:
            status = StatusResult.model_validate(reply.result) if reply.ok else None
        except ValidationError:
            return
        health.asked, health.seen, health.status = None, now, status
        health.ready = status is not None and status.ready and not status.draining
        if health.ready:
            health.error = None
        elif status is None:
            health.error = reply.error.message if reply.error else "status refused"
        else:
            health.error = "draining" if status.draining else f"model {status.model.state}"

    def _sync(self) -> bool:
        """Connect the request socket to the ready workers, disconnect the others; True if a
        worker with a live connection was cut off (a request may have been on it)."""
        if self._sock is None:
            return False
        ready = set(self.ready())
        for endpoint in sorted(ready - self._connected):
            self._sock.connect(endpoint)
            self._connected.add(endpoint)
        cut = False
        for endpoint in sorted(self._connected - ready):
            with contextlib.suppress(zmq.ZMQError):  # not connected after all
                self._sock.disconnect(endpoint)
            self._connected.discard(endpoint)
            cut = cut or endpoint in self._up
            self._up.discard(endpoint)
        return cut

    def _request_events(self) -> bool:
        """Read the request socket's monitor; True if a worker's connection went down."""
        lost = False
        while self._monitor is not None and self._monitor.poll(0):
            message = parse_monitor_message(self._monitor.recv_multipart())
            endpoint = message["endpoint"].decode(errors="replace")
            if message["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._up.add(endpoint)
            elif message["event"] == zmq.EVENT_DISCONNECTED:
                lost = lost or endpoint in self._up
                self._up.discard(endpoint)
                if endpoint in self.health:
                    self.health[endpoint].ready = False
                    self.health[endpoint].error = "disconnected"
        return lost

    # -- one try ----------------------------------------------------------------------------

    def wait_ready(self, end: float) -> bool:
        """Until a ready worker's connection is up (or `end`), reading the probes meanwhile."""
        self._request_socket()
        while True:
            now = time.monotonic()
            self.refresh(now)
            self._request_events()
            if self._up:  # only ready workers are connected
                return True
            if now >= end:
                return False
            self._wait(min(end, now + 0.05))

    def ask(self, frames: list[bytes], request_id: str, end: float) -> Reply | None:
        """Send and wait until `end` for the reply (None: none came); see the module doc."""
        if not self._send(frames, end):
            return None
        sock = self._request_socket()
        refused = 0  # busy / shutting_down answers to this request: each from another worker
        while True:
            now = time.monotonic()
            if now >= end:
                return None
            if self._wait(min(end, now + 0.25)):
                reply = _reply(sock.recv_multipart())
                if reply is None or (reply.id is not None and reply.id != request_id):
                    continue  # not ours: a late reply to an earlier request
                if reply.error is None or reply.error.code not in ELSEWHERE:
                    return reply
                refused += 1
                self._settle(min(end, time.monotonic() + 1.0))
                # Round robin visits every connected worker in as many sends, but a worker
                # whose connection came up after the last send may be visited one send late.
                if refused > len(self.ready()):  # every ready worker said so: it stands
                    return reply
            else:
                lost = self._request_events()
                if not self.refresh(time.monotonic()) and not lost:
                    continue
            # a worker went away, or one said busy / shutting_down: to another worker
            self.resends += 1
            if not self._send(frames, end):
                return None

    def _settle(self, until: float) -> None:
        """Up to `until`: let every worker answer its first probe and every ready one's
        connection come up, so the round robin knows them all."""
        while time.monotonic() < until:
            self.refresh(time.monotonic())
            self._request_events()
            waiting = any(h.seen is None and h.asked is not None for h in self.health.values())
            if not waiting and len(self._up) >= len(self.ready()):
                return
            self._wait(min(until, time.monotonic() + 0.05))

    def _send(self, frames: list[bytes], end: float) -> bool:
        """Send once a ready worker is connected (never blocks past `end`)."""
        while self.wait_ready(end):
            try:
                self._request_socket().send_multipart(frames, zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:  # its connection went down meanwhile
                self._request_events()
                if time.monotonic() >= end:
                    return False
        return False

    def direct(
        self, endpoint: str, frames: list[bytes], request_id: str, end: float
    ) -> Reply | None:
        """`frames` to one worker (on its probe socket: what only that worker can answer, such
        as a crop of an inspection it made, or a reload); its reply, or None by `end`."""
        sock, _ = self._probes[endpoint]
        self._direct[request_id] = None
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
            while (reply := self._direct[request_id]) is None:
                now = time.monotonic()
                if now >= end:
                    return None
                self._wait(min(end, now + 0.25))
                self.refresh(time.monotonic())
            return reply
        except zmq.Again:  # its queue is full: that worker is down
            return None
        finally:
            self._direct.pop(request_id, None)

    def _wait(self, until: float) -> bool:
        """Poll the request socket, its monitor and the probes until one is readable or
        `until`; True if the request socket is."""
        poller = zmq.Poller()
        if self._sock is not None:
            poller.register(self._sock, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        for sock, monitor in self._probes.values():
            poller.register(sock, zmq.POLLIN)
            poller.register(monitor, zmq.POLLIN)
        left = max(0.0, until - time.monotonic())
        events = dict(poller.poll(int(left * 1000) + 1))
        return self._sock is not None and bool(events.get(self._sock))


def _reply(frames: list[bytes]) -> Reply | None:
    body = [f for f in frames if f]
    if len(body) != 1:
        return None
    return decode_reply(body[0])  # Internal if it is no protocol message


__all__ = ["WorkerHealth", "WorkerPool", "split_endpoints"]
