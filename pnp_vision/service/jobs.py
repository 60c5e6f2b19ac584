"""An admitted inspect request (a Job), the bounded queue between the I/O and MLX threads, and
what the MLX thread hands back for a job (a Completion).

The I/O thread admits a request only while `depth + waiting_for_frame < capacity`, so a full
queue is answered `busy` at once instead of growing. The MLX thread takes jobs in arrival order,
one or a batch at a time (`take_batch`); the I/O thread may take expired or (on shutdown) all
queued jobs back out to answer them itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pnp_vision.protocol.requests import FrameUsed, InspectRequest, ModelIdentity, QuestionResult

if TYPE_CHECKING:
    from pnp_vision.capture.subscriber import Frame
    from pnp_vision.errors import PnpVisionError


@dataclass
class Job:
    """One inspect request from admission to reply. Only the I/O thread mutates `envelope`."""

    key: tuple[str, bytes]  # (request id, digest of the request frames): resends share it
    envelope: list[bytes]  # ROUTER routing frames; a resend from a reopened socket replaces it
    request: InspectRequest
    image_bytes: bytes | None
    arrival_wall: float  # time.time(): compared with frames' capture_time (same host clock)
    arrival: float  # time.monotonic()
    deadline: float  # time.monotonic()
    frame: Frame | None = None
    frame_used: FrameUsed | None = None
    picked: float | None = None  # monotonic time the frame was chosen
    started: float | None = None  # monotonic time the MLX thread took it

    @property
    def id(self) -> str:
        return self.key[0]

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline


@dataclass
class Completion:
    """A job's outcome from the MLX thread: its results, or the error it is answered with."""

    job: Job
    results: list[QuestionResult] | None = None
    error: PnpVisionError | None = None
    inference_ms: float = 0.0
    ran: bool = False  # the engine was called (False: expired before it started)
    model: ModelIdentity | None = None
    batch: int = 1  # requests run in the same model passes as this one (itself included)


class RequestQueue:
    """FIFO of jobs with frames, bounded by the I/O thread's admission check."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)

    def put(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("queue closed")
            self._jobs.append(job)
            self._cond.notify()

    def get(self, timeout: float | None = None, until: threading.Event | None = None) -> Job | None:
        """The next job; None once closed and empty, once `until` is set (a retired model
        generation takes nothing more), or after `timeout` s, if given."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._jobs or (until is not None and until.is_set()):
                if until is not None and until.is_set():
                    return None
                left = None if end is None else end - time.monotonic()
                if self._closed or (left is not None and left <= 0):
                    return None
                self._cond.wait(left)
            return self._jobs.popleft()

    def take_batch(
        self, limit: int, wait_s: float = 0.0, until: threading.Event | None = None
    ) -> list[Job]:
        """The next job (waiting for one as `get` does), with up to `limit - 1` more: those
        queued now, then those arriving within `wait_s` after the first was taken. Empty:
        closed and empty, or `until` set."""
        first = self.get(timeout=None, until=until)
        if first is None:
            return []
        batch = [first]
        end = time.monotonic() + wait_s
        with self._cond:
            while len(batch) < limit:
                if self._jobs:
                    batch.append(self._jobs.popleft())
                    continue
                left = end - time.monotonic()
                if left <= 0 or self._closed or (until is not None and until.is_set()):
                    break
                self._cond.wait(left)
        return batch

    def wake_all(self) -> None:
        """Wake every waiting consumer (to see its `until`)."""
        with self._cond:
            self._cond.notify_all()

    def next_deadline(self) -> float | None:
        """The earliest deadline of a queued job: when the I/O thread must next look."""
        with self._cond:
            return min((job.deadline for job in self._jobs), default=None)

    def take_expired(self, now: float) -> list[Job]:
        """Remove and return queued jobs whose deadline has passed (answered by the caller)."""
        with self._cond:
            expired = [job for job in self._jobs if job.expired(now)]
            if expired:
                self._jobs = deque(job for job in self._jobs if not job.expired(now))
            return expired

    def close(self) -> list[Job]:
        """Refuse further jobs, wake the consumer, and hand back what was still queued."""
        with self._cond:
            self._closed = True
            left = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
            return left

    @property
    def closed(self) -> bool:
        return self._closed
