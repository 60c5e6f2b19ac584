"""The one thread that owns MLX: it creates the Inspector, warms it up, and runs every inference.

MLX streams are per thread, so the Inspector is created and used here only. Finished jobs go
back to the I/O thread through a queue plus a one-byte wake-up on an inproc PAIR socket (only the
I/O thread may touch the ROUTER). An engine exception travels back as the job's error; it is
never turned into an answer.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from pnp_vision.errors import DeadlineExceeded, Internal, ModelLoadError, PnpVisionError
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import QuestionResult
from pnp_vision.service.jobs import Job, RequestQueue

log = logging.getLogger(__name__)


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
        prompts_dir: Path,
        min_confidence: float,
        compute_dtype: str,
        jobs: RequestQueue,
        refuse_untrained: bool = False,
        context: zmq.Context,
        wake_endpoint: str,
    ) -> None:
        super().__init__(name="mlx", daemon=True)
        self.model_dir = model_dir
        self.prompts_dir = prompts_dir
        self.min_confidence = min_confidence
        self.compute_dtype = compute_dtype
        self.refuse_untrained = refuse_untrained
        self.jobs = jobs
        self.done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._context = context
        self._wake_endpoint = wake_endpoint
        self.state = "loading"  # loading -> ready | failed; read by the I/O thread for status
        self.error: PnpVisionError | None = None
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._in_flight: Job | None = None
        self.changed = threading.Event()  # set on every state change, for the I/O thread

    @property
    def in_flight(self) -> Job | None:
        with self._lock:
            return self._in_flight

    def run(self) -> None:
        with self._context.socket(zmq.PAIR) as wake:
            wake.linger = 0
            wake.connect(self._wake_endpoint)
            inspector = self._load()
            wake.send(b"", zmq.NOBLOCK)
            if inspector is None:
                return
            while True:
                job = self.jobs.get(timeout=0.5)
                if job is None:
                    if self.jobs.closed:
                        return
                    continue
                self.done.put(self._run_job(inspector, job))
                # On zmq.Again a wake-up is already pending; the I/O thread drains `done` fully.
                with contextlib.suppress(zmq.Again):
                    wake.send(b"", zmq.NOBLOCK)

    def _load(self) -> Any:
        started = time.monotonic()
        try:
            from pnp_vision.inspect import Inspector, TemplateSet

            inspector = Inspector(
                self.model_dir,
                TemplateSet.load(self.prompts_dir),
                min_confidence=self.min_confidence,
                compute_dtype=self.compute_dtype,
                refuse_untrained=self.refuse_untrained,
            )
            inspector.warm_up()
            self.info = {k: _jsonable(v) for k, v in inspector.info().items()}
        except PnpVisionError as exc:
            self._fail(exc)
            return None
        except Exception as exc:  # an engine bug: still report it as a load failure, with cause
            log.exception("model load failed")
            self._fail(ModelLoadError(f"cannot load model {self.model_dir}: {exc!r}"))
            return None
        self.state = "ready"
        self.changed.set()
        log.info("model ready %s", kv(path=self.model_dir, load_s=time.monotonic() - started))
        return inspector

    def _fail(self, exc: PnpVisionError) -> None:
        self.error = exc
        self.state = "failed"
        self.changed.set()
        log.error("model load failed %s", kv(path=self.model_dir, error=exc))

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
            log.exception("inference failed %s", kv(id=job.id))
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
