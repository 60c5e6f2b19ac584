"""Choosing the frame a request is answered on, from the frames a `FrameSubscriber` holds.

Runs on the I/O thread and never blocks: `pick` returns the frame, None ("not yet, ask again when
a frame arrives or a deadline passes", see `frame_waits`), or raises the error the request must be
answered with. `latest` answers at
once. `fresh` waits (until the request deadline) for the first frame captured after the request
arrived; `seq` waits likewise for a frame newer than any held (the controller may have received
it before the worker did) and fails at once for one already dropped. A camera not seen yet is
waited for during the first `discovery_s` after start, since the capture daemon announces every
camera in its status about once a second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pnp_vision.errors import NoFrame, UnknownCamera
from pnp_vision.protocol.requests import CameraView, FrameChoice, FrameUsed

if TYPE_CHECKING:
    from pnp_vision.capture.subscriber import Frame, FrameSubscriber
    from pnp_vision.service.jobs import Job


class FrameStore:
    def __init__(
        self,
        subscriber: FrameSubscriber,
        *,
        endpoint: str,
        max_frame_age_s: float,
        discovery_s: float,
    ) -> None:
        self.subscriber = subscriber
        self.endpoint = endpoint
        self.max_frame_age_s = max_frame_age_s
        self._discovery_end = time.monotonic() + discovery_s

    def _discovering(self, now: float) -> bool:
        return now < self._discovery_end

    def discovery_end(self) -> float | None:
        """The monotonic time camera discovery ends, while it has not ended yet."""
        return self._discovery_end if self._discovering(time.monotonic()) else None

    def pick(self, job: Job, now: float) -> Frame | None:
        """The frame for `job`, None to wait, or raise UnknownCamera / NoFrame."""
        request = job.request
        camera = request.camera
        assert camera is not None and not request.image
        seen = self.subscriber.cameras()
        if camera not in seen:
            if self._discovering(now):
                return None
            names = ", ".join(sorted(seen)) or "none"
            raise UnknownCamera(
                f"camera {camera!r} is not published on {self.endpoint} (cameras seen: {names})"
            )
        if request.frame is FrameChoice.FRESH:
            return self._first_after(camera, job.arrival_wall)
        if request.frame is FrameChoice.SEQ:
            assert request.seq is not None
            frame = self.subscriber.get(camera, request.seq)
            if frame is None:
                newest = self.subscriber.latest(camera)
                if newest is None or newest.header.seq < request.seq:
                    return None  # not received yet (the asker may have seen it first): wait
                raise NoFrame(
                    f"frame seq {request.seq} of camera {camera!r} is not held "
                    f"({self._held(camera)})"
                )
            return frame
        max_age = (
            request.max_age_ms / 1000 if request.max_age_ms is not None else self.max_frame_age_s
        )
        frame = self.subscriber.latest(camera)
        if frame is not None and time.time() - frame.header.capture_time <= max_age:
            return frame
        if self._discovering(now):
            return None
        raise NoFrame(
            f"camera {camera!r} has no frame newer than {max_age * 1000:.0f} ms "
            f"({self._held(camera)})"
        )

    def no_frame_by_deadline(self, job: Job) -> NoFrame | UnknownCamera:
        """The error for a job still waiting for its frame when its deadline passed."""
        camera = job.request.camera
        waited = (time.monotonic() - job.arrival) * 1000
        if camera not in self.subscriber.cameras():
            return UnknownCamera(
                f"camera {camera!r} was not seen on {self.endpoint} within {waited:.0f} ms"
            )
        if job.request.seq is not None:
            return NoFrame(
                f"frame seq {job.request.seq} of camera {camera!r} did not arrive within the "
                f"{waited:.0f} ms deadline ({self._held(camera)})"
            )
        return NoFrame(
            f"no frame from camera {camera!r} captured after the request within its "
            f"{waited:.0f} ms deadline ({self._held(camera)})"
        )

    def _first_after(self, camera: str, after: float) -> Frame | None:
        frame = self.subscriber.latest(camera)
        if frame is None or frame.header.capture_time <= after:
            return None
        # Looked at on every frame, so usually the newest is the first; walk back in case several
        # came (the I/O thread was busy).
        while frame.header.seq > 0:
            earlier = self.subscriber.get(camera, frame.header.seq - 1)
            if (
                earlier is None
                or earlier.header.session != frame.header.session
                or earlier.header.capture_time <= after
            ):
                break
            frame = earlier
        return frame

    def _held(self, camera: str) -> str:
        """A short account of the camera for error messages: state and newest frame age."""
        view = self.view(camera)
        parts = [f"state {view.state or 'unknown'}"]
        if view.last_seq is None:
            parts.append("no frame held")
        else:
            parts.append(f"newest frame seq {view.last_seq}, {view.frame_age_ms:.0f} ms old")
        if view.last_error:
            parts.append(f"last error: {view.last_error}")
        return "; ".join(parts)

    def view(self, camera: str) -> CameraView:
        status = self.subscriber.cameras().get(camera)
        frame = self.subscriber.latest(camera)
        view = CameraView()
        if status is not None:
            view = CameraView(
                state=str(status.state),
                fps=status.fps,
                frames=status.frames,
                drops=status.drops,
                reconnects=status.reconnects,
                last_error=status.last_error,
                session=status.session,
            )
        if frame is not None:
            view.last_seq = frame.header.seq
            view.session = frame.header.session
            view.frame_age_ms = (time.time() - frame.header.capture_time) * 1000
        return view

    def views(self) -> dict[str, CameraView]:
        return {name: self.view(name) for name in sorted(self.subscriber.cameras())}


def frame_used(frame: Frame) -> FrameUsed:
    header = frame.header
    return FrameUsed(
        source="camera",
        camera=header.camera,
        session=header.session,
        seq=header.seq,
        capture_time=header.capture_time,
        age_ms=round((time.time() - header.capture_time) * 1000, 3),
        source_seq=header.source_seq,
    )
