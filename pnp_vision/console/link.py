"""The console's requests to the worker: one client per thread on one ZeroMQ context.

A ZeroMQ socket belongs to one thread, and one shared socket serialised every tab's requests
behind the slowest (an ask waited for a crop, a status poll for an ask). Each thread of the
console (the watcher, each request thread) gets its own `VisionClient`; they share a context,
so closing one never waits for the others.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import zmq

from pnp_vision.client import VisionClient
from pnp_vision.protocol.requests import Reply


class WorkerLink:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float,
        connect_timeout_s: float = 2.0,
        security: Any = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.security = security
        self._context = zmq.Context()
        self._local = threading.local()

    def client(self, timeout_s: float | None = None) -> VisionClient:
        """This thread's client (retries 0: the console shows a failure, it does not hide it).
        No worker at all is said (`no_worker`) before the reply timeout would say "no reply"."""
        key = timeout_s or self.timeout_s
        clients: dict[float, VisionClient] = self._local.__dict__.setdefault("clients", {})
        if key not in clients:
            clients[key] = VisionClient(
                self.endpoint,
                key,
                0,
                security=self.security,
                context=self._context,
                max_message_bytes=256 << 20,
                connect_timeout=min(self.connect_timeout_s, 0.8 * key),
            )
        return clients[key]

    def request(
        self, request: Any, image: bytes | None = None, timeout_s: float | None = None
    ) -> Reply:
        return self.client(timeout_s).request(request, image)[0]


def new_id(prefix: str) -> str:
    """Request ids that say who asked: the worker's log and `recent` show them."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"
