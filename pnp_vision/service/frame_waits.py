"""Admitted jobs waiting for their frame (`fresh`, a `seq` not received yet, discovery).

Woken by events, not polled: the frame subscriber calls `on_frame` from its receive thread for
every decoded frame, and that sets the I/O thread's wake-up while (and only while) a job waits,
so an idle worker is not woken by the camera's frame rate. Deadlines (and the end of camera
discovery) come back as `next_deadline()`, the poll timeout. `waits.service()` is I/O thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pnp_vision.errors import PnpVisionError
from pnp_vision.service.framestore import FrameStore, frame_used

if TYPE_CHECKING:
    from pnp_vision.capture.subscriber import Frame
    from pnp_vision.service.jobs import Job
    from pnp_vision.service.wakeup import Wakeup


class FrameWaits:
    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup
        self.store: FrameStore | None = None  # set once the subscriber (which calls us) exists
        self.jobs: list[Job] = []
        self._watching = False  # read by the subscriber thread: a bool, no lock needed

    def __len__(self) -> int:
        return len(self.jobs)

    def on_frame(self, _frame: Frame) -> None:
        """Subscriber thread: a frame arrived; wake the I/O thread only if someone waits."""
        if self._watching:
            self._wakeup.set()

    def add(self, job: Job, now: float) -> tuple[list[Job], list[tuple[Job, PnpVisionError]]]:
        """Wait for `job`'s frame; its frame may already be held (then it is ready at once)."""
        self.jobs.append(job)
        self._watching = True  # before the first look: a frame landing after it wakes us
        return self.service(now, [job])

    def service(
        self, now: float, jobs: list[Job] | None = None
    ) -> tuple[list[Job], list[tuple[Job, PnpVisionError]]]:
        """Jobs whose frame is now chosen (removed, `frame` set) and jobs that failed (removed)."""
        assert self.store is not None
        ready: list[Job] = []
        failed: list[tuple[Job, PnpVisionError]] = []
        for job in list(self.jobs if jobs is None else jobs):
            try:
                frame = self.store.pick(job, now)
                if frame is None and job.expired(now):
                    raise self.store.no_frame_by_deadline(job)
            except PnpVisionError as exc:
                self.jobs.remove(job)
                failed.append((job, exc))
                continue
            if frame is not None:
                self.jobs.remove(job)
                job.frame = frame
                job.frame_used = frame_used(frame)
                job.picked = now
                ready.append(job)
        self._watching = bool(self.jobs)
        return ready, failed

    def next_deadline(self) -> float | None:
        """When a waiting job must be looked at even without a frame: its deadline, or the end
        of camera discovery (an unknown camera becomes an error then)."""
        if not self.jobs:
            return None
        assert self.store is not None
        times = [job.deadline for job in self.jobs]
        if (end := self.store.discovery_end()) is not None:
            times.append(end)
        return min(times)

    def take_all(self) -> list[Job]:
        left, self.jobs = self.jobs, []
        self._watching = False
        return left
