"""The one thread that owns MLX: it creates the Inspector, warms it up, and runs every inference.

MLX streams are per thread, so the Inspector is created and used here only. Finished jobs go
back to the I/O thread through `done` plus a wake-up of its poller (only the I/O thread may
touch the ROUTER). An engine exception travels back as the job's error; it is never turned into
an answer. The model's state is written here and read by the I/O thread for `status`, so it is
one (state, error) pair behind a lock, never two loose attributes.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import DeadlineExceeded, Internal, ModelLoadError, PnpVisionError
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import QuestionResult
from pnp_vision.service.jobs import Job, RequestQueue

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.service.wakeup import Wakeup

log = logging.getLogger(__name__)


class ModelState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Completion:
    job: Job
    results: list[QuestionResult] | None = None
    error: PnpVisionError | None = None
    inference_ms: float = 0.0
    ran: bool = False  # the engine was called (False: expired before it started)


class ModelThread(threading.Thread):
    def __init__(
        self,
        *,
        model_dir: Path,
        templates: TemplateSet,
        min_confidence: float,
        compute_dtype: str,
        jobs: RequestQueue,
        wakeup: Wakeup,
        refuse_untrained: bool = False,
    ) -> None:
        super().__init__(name="mlx", daemon=True)
        self.model_dir = model_dir
        self.templates = templates  # the I/O thread's own set: loaded once, read by both
        self.min_confidence = min_confidence
        self.compute_dtype = compute_dtype
        self.refuse_untrained = refuse_untrained
        self.jobs = jobs
        self.done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._wakeup = wakeup
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._state = ModelState.LOADING
        self._error: PnpVisionError | None = None
        self._in_flight: Job | None = None

    @property
    def state(self) -> ModelState:
        with self._lock:
            return self._state

    @property
    def error(self) -> PnpVisionError | None:
        with self._lock:
            return self._error

    def snapshot(self) -> tuple[ModelState, PnpVisionError | None]:
        """State and error read together (a reader never sees `failed` without its error)."""
        with self._lock:
            return self._state, self._error

    def fail(self, error: PnpVisionError) -> None:
        """Mark the model failed (here on a load error; by the I/O thread if this thread died)."""
        with self._lock:
            self._state, self._error = ModelState.FAILED, error
        self._wakeup.set()

    @property
    def in_flight(self) -> Job | None:
        with self._lock:
            return self._in_flight

    def run(self) -> None:
        try:
            inspector = self._load()
            if inspector is None:
                return
            while True:
                job = self.jobs.get(timeout=None)
                if job is None:  # closed and empty: the drain
                    return
                self.done.put(self._run_job(inspector, job))
                self._wakeup.set()
        finally:
            self._wakeup.set()  # an exit (expected or not) is an event the I/O thread checks

    def _load(self) -> Any:
        started = time.monotonic()
        try:
            from pnp_vision.inspect import Inspector

            inspector = Inspector(
                self.model_dir,
                self.templates,
                min_confidence=self.min_confidence,
                compute_dtype=self.compute_dtype,
                refuse_untrained=self.refuse_untrained,
            )
            inspector.warm_up()
            self.info = {k: _jsonable(v) for k, v in inspector.info().items()}
        except PnpVisionError as exc:
            self._load_failed(exc)
            return None
        except Exception as exc:  # an engine bug: still report it as a load failure, with cause
            log.exception("model load failed")
            self._load_failed(ModelLoadError(f"cannot load model {self.model_dir}: {exc!r}"))
            return None
        with self._lock:
            self._state = ModelState.READY
        self._wakeup.set()
        log.info("model ready %s", kv(path=self.model_dir, load_s=time.monotonic() - started))
        return inspector

    def _load_failed(self, exc: PnpVisionError) -> None:
        log.error("model load failed %s", kv(path=self.model_dir, error=exc))
        self.fail(exc)

    def _run_job(self, inspector: Any, job: Job) -> Completion:
        job.started = time.monotonic()
        if job.expired(job.started):
            return Completion(job, error=DeadlineExceeded(_late(job)))
        with self._lock:
            self._in_flight = job
        try:
            from pnp_vision.inspect import Question

            questions = [
                Question(template=q.template, params=q.params) for q in job.request.question_list()
            ]
            image = job.image_bytes if job.image_bytes is not None else job.frame.image
            results = inspector.inspect(image, questions, roi=job.request.roi)
            wire = [QuestionResult.model_validate(r.model_dump(mode="json")) for r in results]
            return Completion(job, wire, inference_ms=_ms_since(job.started), ran=True)
        except PnpVisionError as exc:
            return Completion(job, error=exc, inference_ms=_ms_since(job.started), ran=True)
        except Exception as exc:
            log.exception("inference failed %s", kv(id=job.id, camera=job.request.camera))
            return Completion(job, error=Internal(f"inference failed: {exc!r}"), ran=True)
        finally:
            with self._lock:
                self._in_flight = None


def _late(job: Job) -> str:
    waited = (job.started or time.monotonic()) - job.arrival
    allowed = job.deadline - job.arrival
    return f"deadline of {allowed * 1000:.0f} ms passed after {waited * 1000:.0f} ms in the queue"


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 3)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
