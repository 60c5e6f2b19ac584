"""The capture daemon: one watchdog thread per camera, one publisher thread, one stop event.

Usable in-process (``with CaptureDaemon(cams, endpoint) as d: ...``) or as the
``pnp-vision capture`` process, where SIGINT/SIGTERM set the stop event and every thread notices
within a tick: nothing in the control path blocks without a timeout.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import zmq

from pnp_vision.capture.camera import CameraRunner
from pnp_vision.capture.cameras import CameraConfig
from pnp_vision.capture.publisher import Publisher
from pnp_vision.capture.sources import Source, open_source
from pnp_vision.errors import ConfigError, UnknownCamera
from pnp_vision.logs import kv
from pnp_vision.protocol.frames import CameraStatus
from pnp_vision.transport.security import Security

log = logging.getLogger(__name__)


def new_session_id() -> str:
    """Unique per daemon start, so receivers can tell a restart from a seq wrap."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class CaptureDaemon:
    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        endpoint: str,
        *,
        context: zmq.Context | None = None,
        sndhwm: int = 4,
        max_pending: int = 4,
        status_interval_s: float = 1.0,
        session: str | None = None,
        source_factory: Callable[[CameraConfig], Source] = open_source,
        security: Security | None = None,
    ) -> None:
        """``source_factory`` makes each camera's source (a fake one can be passed in)."""
        if not cameras:
            raise ConfigError("the capture daemon needs at least one camera")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ConfigError(f"camera names must be unique, got {names}")
        self.session = session or new_session_id()
        self._stop = threading.Event()
        self.publisher = Publisher(
            endpoint, context=context, sndhwm=sndhwm, max_pending=max_pending, security=security
        )
        self.runners = {
            c.name: CameraRunner(
                c,
                self.publisher,
                self.session,
                self._stop,
                status_interval_s=status_interval_s,
                source_factory=source_factory,
            )
            for c in cameras
        }
        self._started = False

    @property
    def endpoint(self) -> str:
        """The bound endpoint (a wildcard port resolved) once started."""
        return self.publisher.endpoint

    def start(self) -> CaptureDaemon:
        if self._started:
            return self
        self.publisher.start()
        self._started = True
        for runner in self.runners.values():
            runner.start()
        log.info(
            "capture started %s",
            kv(session=self.session, endpoint=self.endpoint, cameras=",".join(self.runners)),
        )
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every camera and the publisher; returns within about ``timeout`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for runner in self.runners.values():
            if runner.thread.ident is not None:  # started
                runner.thread.join(max(0.0, deadline - time.monotonic()) * 0.8)
        self.publisher.stop(max(0.05, deadline - time.monotonic()))
        log.info("capture stopped %s", kv(session=self.session))

    def __enter__(self) -> CaptureDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def statuses(self) -> dict[str, CameraStatus]:
        return {name: r.status() for name, r in self.runners.items()}

    def wait_for(
        self, camera: str, predicate: Callable[[CameraStatus], bool], timeout: float
    ) -> CameraStatus:
        """Wait until a camera's status satisfies ``predicate``; TimeoutError otherwise."""
        if camera not in self.runners:
            raise UnknownCamera(f"camera {camera!r} is not captured; have {sorted(self.runners)}")
        runner = self.runners[camera]
        deadline = time.monotonic() + timeout
        while True:
            status = runner.status()
            if predicate(status):
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"camera {camera!r} status still {status} after {timeout} s")
            with runner.changed:
                runner.changed.wait(min(left, 0.1))

    def run_until_signalled(self) -> None:
        """Start, block until SIGINT/SIGTERM (main thread only), then stop."""
        previous = {
            sig: signal.signal(sig, lambda *_: self._stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
