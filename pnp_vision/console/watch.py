"""One watcher for every open tab: the worker's state and answers, the cameras' health.

Tabs used to poll the worker through the console (status every 2 s, `recent` 4 times a second
per tab), so a stopped worker took a request timeout to show and the worker's counters grew
with every tab. Here one thread asks the worker on its own socket (status three times a second
with a short timeout, `recent` four times a second), another reads the frame subscriber ten
times a second, and both push to every tab as server-sent events: a `state` event when
something an operator sees changed (at most once a second otherwise), and each answered
inspection once. A stopped worker shows within one poll and its timeout (under a second).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from typing import Any

from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.client import ServiceTimeout
from pnp_vision.console.cameras import CameraWatch
from pnp_vision.console.link import WorkerLink
from pnp_vision.errors import PnpVisionError
from pnp_vision.protocol.requests import SeenInspection, StatusResult

log = logging.getLogger(__name__)

STATUS_EVERY_S = 0.3
STATUS_TIMEOUT_S = 0.6  # the worker answers status from its I/O thread at once, loaded or not
RECENT_EVERY_S = 0.25
KEPT_INSPECTIONS = 100  # what a new tab is shown at once


class Hub:
    """Server-sent events to every open tab. `close()` ends every stream, so open tabs never
    hold the console's exit."""

    QUEUE = 256  # events a tab may fall behind by before it is dropped (it reconnects)

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def subscribe(self) -> asyncio.Queue[str | None]:
        """On the event loop."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(self.QUEUE)
        if self.closed:
            queue.put_nowait(None)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._queues.discard(queue)

    def publish(self, event: str) -> None:
        """From any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._put, event)

    def close(self) -> None:
        """From any thread (a signal handler included)."""
        self.closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._end)

    def _put(self, event: str) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a tab that stopped reading: end its stream
                self._queues.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    def _end(self) -> None:
        for queue in list(self._queues):
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


def sse(event: str | None, data: Any) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def worker_words(status: StatusResult | None, error: str | None) -> dict[str, str]:
    """The worker's state in the words an operator reads: stopped, loading, reloading, busy,
    stopping, failed or ready, and one line of detail."""
    if status is None:
        return {"state": "stopped", "detail": error or "no reply"}
    queue = status.queue
    waiting = queue.depth + queue.waiting_for_frame
    if status.draining:
        return {"state": "stopping", "detail": "shutting down: new questions are refused"}
    if status.model.state == "failed":
        return {"state": "failed", "detail": f"the model failed: {status.model.error}"}
    if status.model.state == "loading":
        return {"state": "loading", "detail": f"loading the model {status.model.path}"}
    if status.reload is not None and status.reload.state == "loading":
        detail = f"loading generation {status.reload.generation}; the current one answers"
        return {"state": "reloading", "detail": detail}
    if waiting >= queue.capacity:
        detail = f"queue full ({waiting}/{queue.capacity}): new questions are answered busy"
        return {"state": "busy", "detail": detail}
    if queue.in_flight or waiting:
        return {"state": "ready", "detail": f"answering; {waiting} waiting"}
    return {"state": "ready", "detail": "idle"}


def worker_view(
    status: StatusResult | None, error: str | None, endpoint: str, since: float | None
) -> dict[str, Any]:
    view: dict[str, Any] = {"endpoint": endpoint, **worker_words(status, error)}
    if status is None:
        view["since"] = since
        return view
    model = status.model
    templates = {name: t.model_dump() for name, t in status.templates.items()}
    view.update(
        model={
            "path": model.path,
            "fingerprint": model.identity.fingerprint if model.identity else None,
            "generation": model.identity.generation if model.identity else None,
            "device": model.info.get("device"),
            "dtype": model.info.get("dtype"),
            "adapters": len(model.adapters),
        },
        reload=status.reload.model_dump() if status.reload else None,
        queue=status.queue.model_dump(),
        bar=status.min_confidence,
        templates=templates,
        answered=sum(t["answered"] for t in templates.values()),
        errors=sum(sum(t["errors"].values()) for t in templates.values()),
        uptime_s=status.uptime_s,
    )
    return view


class Watch:
    """The thread that polls the worker and the cameras; see the module docstring."""

    def __init__(
        self,
        link: WorkerLink,
        frames: FrameSubscriber,
        cameras: CameraWatch,
        hub: Hub,
    ) -> None:
        self.link = link
        self.frames = frames
        self.cameras = cameras
        self.hub = hub
        self.inspections: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=KEPT_INSPECTIONS
        )
        self.status: StatusResult | None = None
        self.state: dict[str, Any] = {}
        self._error: str | None = "not asked yet"
        self._down_since: float | None = time.time()
        self._after: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll_worker, name="console-worker", daemon=True),
            threading.Thread(target=self._publish, name="console-state", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:  # daemons: one waiting on a dead worker is left behind
            thread.join(0.2)

    @property
    def worker_up(self) -> bool:
        return self.status is not None

    def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What a new tab is sent first: the state and the inspections kept, oldest first."""
        with self._lock:
            return self.state, list(self.inspections)

    def _poll_worker(self) -> None:
        """Its own thread: a stopped worker costs each poll its timeout, which must not hold
        back the cameras' state."""
        next_status = next_recent = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self._poll_status()
            if now >= next_recent and self.status is not None:
                next_recent = now + RECENT_EVERY_S
                self._poll_recent()
            self._stop.wait(max(0.0, min(next_status, next_recent) - time.monotonic()))

    def _publish(self) -> None:
        last_sent, sent_key = 0.0, None
        while not self._stop.is_set():
            now = time.monotonic()
            state = {
                "time": time.time(),
                "worker": worker_view(
                    self.status, self._error, self.link.endpoint, self._down_since
                ),
                "cameras": self.cameras.views(),
            }
            key = _key(state)
            with self._lock:
                self.state = state
            if key != sent_key or now - last_sent >= 1.0:
                self.hub.publish(sse("state", state))
                last_sent, sent_key = now, key
            self._stop.wait(0.1)

    def _poll_status(self) -> None:
        try:
            status = self.link.client(STATUS_TIMEOUT_S).status()
        except PnpVisionError as exc:
            self._down(exc)
            return
        if self.status is None:
            log.info("console: worker at %s answers", self.link.endpoint)
        self.status, self._error, self._down_since = status, None, None

    def _down(self, exc: PnpVisionError) -> None:
        if isinstance(exc, ServiceTimeout):  # NoWorker too: nothing there, or no reply
            why = f"no reply within {STATUS_TIMEOUT_S:g} s"
        else:
            why = _short(exc)
        if self.status is not None:
            log.warning("console: worker at %s stopped answering: %s", self.link.endpoint, why)
            self._down_since = time.time()
        self.status, self._error = None, why

    def _poll_recent(self) -> None:
        try:
            after = self._after if self._after is not None else time.time() - 3600
            seen = self.link.client(STATUS_TIMEOUT_S).recent(256, after)
        except ServiceTimeout as exc:  # as good as a status poll: no worker answering
            self._down(exc)
            return
        except PnpVisionError:
            return
        for item in reversed(seen):
            self._after = max(self._after or 0.0, item.time)
            self._add(item)

    def _add(self, item: SeenInspection) -> None:
        data = item.model_dump(mode="json")
        with self._lock:
            self.inspections.append(data)
        self.hub.publish(sse("inspection", data))


def _key(state: dict[str, Any]) -> str:
    """What an operator would see change at once (not ages ticking)."""
    worker = state["worker"]
    cameras = [(c["name"], c["state"], c["seq"] is None) for c in state["cameras"]]
    model = worker.get("model") or {}
    reload = worker.get("reload") or {}
    return json.dumps(
        [worker["state"], model.get("generation"), reload.get("state"), cameras], default=str
    )


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
