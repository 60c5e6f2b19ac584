"""One camera: a watchdog thread that opens the source, paces or grabs, and publishes.

Live sources (devices, streams) are read by a separate grab thread that reads in a loop and
keeps only the newest frame, so OpenCV's internal buffer never hands us an old frame, and a read
that blocks (network) never blocks the watchdog. The watchdog reopens a source that errors or
stops delivering for ``stall_timeout_s``, waiting with backoff between attempts; it reports its
state about once a second and on every change. Files and recordings are read by the watchdog
thread itself, paced as configured.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from pnp_vision.capture.cameras import CameraConfig, Pacing
from pnp_vision.capture.codec import encode, shape_frame
from pnp_vision.capture.publisher import FrameMessage, Publisher
from pnp_vision.capture.sources import Grabbed, Source, SourceError, open_source
from pnp_vision.errors import ImageError
from pnp_vision.logs import kv
from pnp_vision.protocol.frames import CameraState, CameraStatus, FrameHeader

log = logging.getLogger(__name__)

_TICK_S = 0.1  # longest the watchdog sleeps before looking at stop/status again


class CameraStats:
    """Counters shared by the watchdog, grab and publisher threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames = 0
        self.drops = 0
        self.reconnects = 0
        self.last_seq: int | None = None
        self.last_capture_time: float | None = None
        self._sent_at: collections.deque[float] = collections.deque(maxlen=240)

    def sent(self, header: FrameHeader) -> None:
        with self._lock:
            self.frames += 1
            self.last_seq = header.seq
            self.last_capture_time = header.capture_time
            self._sent_at.append(time.monotonic())

    def dropped(self, _header: FrameHeader | None = None) -> None:
        with self._lock:
            self.drops += 1

    def fps(self, window_s: float = 2.0) -> float:
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._sent_at if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class _LatestSlot:
    """Holds the newest grabbed frame; a frame replaced before it was taken is a drop."""

    def __init__(self, on_overwrite: Callable[[], None]) -> None:
        self._cond = threading.Condition()
        self._item: Grabbed | None = None
        self._on_overwrite = on_overwrite

    def put(self, item: Grabbed) -> None:
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
        if replaced:
            self._on_overwrite()

    def take(self, timeout: float) -> Grabbed | None:
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None, timeout)
            item, self._item = self._item, None
            return item


class _Grabber:
    """Opens a live source and reads it in a loop on its own (daemon) thread.

    Stopping only sets a flag: a read stuck in OpenCV cannot be interrupted, so the thread is
    left to notice the flag when the read returns (bounded by the read timeout), and it closes
    the source itself. The watchdog never waits for it.
    """

    def __init__(self, source: Source, slot: _LatestSlot, name: str) -> None:
        self._source, self._slot = source, slot
        self._stop = threading.Event()
        self.opened = threading.Event()
        self.error: SourceError | None = None
        self.thread = threading.Thread(target=self._run, name=f"grab-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            self._source.open()
            self.opened.set()
            while not self._stop.is_set():
                item = self._source.read()
                if item is None:
                    raise SourceError("stream ended")
                if not self._stop.is_set():
                    self._slot.put(item)
        except SourceError as exc:
            self.error = exc
        except Exception as exc:  # OpenCV surprises must not kill the camera silently
            self.error = SourceError(f"grab failed: {exc!r}")
        finally:
            self._source.close()


class _Ended(Exception):
    """A file or recording reached its end."""


class CameraRunner:
    """The watchdog thread of one camera; see the module docstring."""

    def __init__(
        self,
        cam: CameraConfig,
        publisher: Publisher,
        session: str,
        stop: threading.Event,
        *,
        status_interval_s: float = 1.0,
        source_factory: Callable[[CameraConfig], Source] = open_source,
    ) -> None:
        self.cam, self._publisher, self.session, self._stop = cam, publisher, session, stop
        self._status_interval = status_interval_s
        self._source_factory = source_factory
        self.stats = CameraStats()
        self.state = CameraState.STARTING
        self._state_since = time.time()
        self.last_error: str | None = None
        self._next_status = 0.0
        self._seq = 0
        self._delivered = False
        self._last_sent: float | None = None  # paced sources: when the last frame went out
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"camera-{cam.name}", daemon=True)

    # -- status -------------------------------------------------------------------------------

    def status(self) -> CameraStatus:
        s = self.stats
        return CameraStatus(
            camera=self.cam.name,
            session=self.session,
            state=self.state,
            time=time.time(),
            state_since=self._state_since,
            fps=round(s.fps(), 2) if self.state is CameraState.STREAMING else 0.0,
            frames=s.frames,
            drops=s.drops,
            reconnects=s.reconnects,
            last_error=self.last_error,
            last_seq=s.last_seq,
            last_capture_time=s.last_capture_time,
            source=self.cam.describe(),
        )

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
        if error is not None:
            self.last_error = error
        if state is not self.state:
            log.log(
                logging.WARNING if state in (CameraState.RECONNECTING, CameraState.FAILED)
                else logging.INFO,
                "camera state %s",
                kv(camera=self.cam.name, state=state.value, was=self.state.value,
                   error=self.last_error),
            )  # fmt: skip
            self.state = state
            self._state_since = time.time()
            self._publish_status()
        with self.changed:
            self.changed.notify_all()

    def _publish_status(self) -> None:
        self._next_status = time.monotonic() + self._status_interval
        self._publisher.offer_status(self.status())

    def _tick(self) -> None:
        if time.monotonic() >= self._next_status:
            self._publish_status()

    def _sleep(self, seconds: float) -> bool:
        """Wait (sending status on time); True if asked to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, _TICK_S)):
                return True
            self._tick()
        return self._stop.is_set()

    # -- main loop ----------------------------------------------------------------------------

    def start(self) -> None:
        self._publish_status()
        self.thread.start()

    def _run(self) -> None:
        try:
            self._capture()
        except Exception as exc:  # never let one camera take the daemon down
            log.exception("camera thread crashed %s", kv(camera=self.cam.name))
            self._set_state(CameraState.FAILED, f"internal error: {exc!r}")
        # Ended or failed cameras keep reporting, so a late subscriber still learns why.
        while not self._sleep(self._status_interval):
            pass
        self._set_state(CameraState.STOPPED)

    def _capture(self) -> None:
        """Open, stream, reopen with backoff; returns when ended, failed or stopped."""
        failures = 0
        while not self._stop.is_set():
            self._delivered = False
            try:
                if self.cam.is_live:
                    self._run_live()
                else:
                    self._run_paced()
            except _Ended:
                if not self.cam.loop:
                    self._publisher.wait_drained(1.0)
                    self._set_state(CameraState.ENDED)
                    return
                if self._delivered:
                    continue  # start over at once: not a fault
                self._set_state(
                    CameraState.FAILED, f"{self.cam.describe()!r} has no readable frames"
                )
                return
            except SourceError as exc:
                if exc.permanent:
                    self._set_state(CameraState.FAILED, str(exc))
                    return
                self.last_error = str(exc)
            if self._stop.is_set():
                break
            failures = 1 if self._delivered else failures + 1
            limit = self.cam.max_reconnects
            if limit is not None and failures > limit:
                self._set_state(
                    CameraState.FAILED, f"gave up after {limit} reconnects: {self.last_error}"
                )
                return
            self._set_state(CameraState.RECONNECTING)
            if self._sleep(self.cam.backoff.delay(failures)):
                return
            self.stats.reconnects += 1

    def _run_live(self) -> None:
        slot = _LatestSlot(self.stats.dropped)
        grabber = _Grabber(self._source_factory(self.cam), slot, self.cam.name)
        grabber.start()
        cam = self.cam
        first_frame_limit = cam.open_timeout_s + cam.stall_timeout_s
        started = time.monotonic()
        last_frame: float | None = None
        try:
            while not self._stop.is_set():
                item = slot.take(_TICK_S)
                now = time.monotonic()
                if item is not None:
                    last_frame = now
                    self._publish(item)
                elif grabber.error is not None:
                    raise grabber.error
                elif last_frame is None and now - started > first_frame_limit:
                    raise SourceError(f"no frame within {first_frame_limit:g} s of opening")
                elif last_frame is not None and now - last_frame > cam.stall_timeout_s:
                    raise SourceError(f"no frame for {cam.stall_timeout_s:g} s (stalled)")
                self._tick()
        finally:
            grabber.stop()

    def _run_paced(self) -> None:
        source = self._source_factory(self.cam)
        source.open()
        try:
            interval = 1.0 / self.cam.fps if self.cam.fps else 0.1
            prev_pts: float | None = None
            while not self._stop.is_set():
                item = source.read()
                if item is None:
                    raise _Ended
                if self.cam.pacing is Pacing.DRAIN:
                    while not self._publisher.wait_room(_TICK_S):
                        self._tick()
                        if self._stop.is_set():
                            return
                else:
                    if self.cam.pacing is Pacing.RECORDED and item.pts is not None:
                        gap = item.pts - prev_pts if prev_pts is not None else -1.0
                        if 0 < gap <= 10:
                            interval = gap  # else (first frame, loop wrap) keep the last gap
                        prev_pts = item.pts
                    if self._last_sent is not None:  # kept across loops: no burst at a wrap
                        due = self._last_sent + interval
                        if self._sleep(due - time.monotonic()):
                            return
                        # On time: keep the schedule; late: restart it (no catch-up burst).
                        now = time.monotonic()
                        self._last_sent = due if now - due < interval else now
                    else:
                        self._last_sent = time.monotonic()
                self._publish(item, capture_time=time.time())
                self._tick()
        finally:
            source.close()

    def _publish(self, item: Grabbed, capture_time: float | None = None) -> None:
        cam = self.cam
        try:
            image = shape_frame(item.image, cam)
            payload = encode(
                image, cam.encoding, jpeg_quality=cam.jpeg_quality, png_level=cam.png_compression
            )
        except ImageError as exc:
            self.stats.dropped()
            self.last_error = str(exc)
            return
        header = FrameHeader(
            camera=cam.name,
            session=self.session,
            seq=self._seq,
            capture_time=capture_time if capture_time is not None else item.capture_time,
            width=image.shape[1],
            height=image.shape[0],
            channels=image.shape[2],
            encoding=cam.encoding,
            source_seq=item.source_seq if not cam.is_live else None,
            source_time=item.source_time,
        )
        self._seq += 1
        self._delivered = True
        if self.state is not CameraState.STREAMING:
            self._set_state(CameraState.STREAMING)
        self._publisher.offer_frame(
            FrameMessage(header, payload, on_sent=self.stats.sent, on_dropped=self.stats.dropped)
        )
