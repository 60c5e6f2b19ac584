"""Batching across requests: the MLX thread answers the inspect requests that are ready together.

`Batches.take` collects a batch from the queue: the next job (waiting for one), every job
already queued, and, while requests come together (the previous batch held more than one),
those arriving within `batch_wait_s` after the first, up to `batch_size` jobs. So a lone request
is never delayed by more than the bound, and not at all while requests come one at a time; under
load the queue fills while a batch runs and the next batch takes it whole.

`answer` runs one batch: a job whose deadline passed is not started (deadline_exceeded, as
alone); the others' questions are grouped by adapter route (one activation per route, the base
never reloaded) and each route's questions of every job go through `Inspector.inspect_batch`
together: one vision pass over all the new views, one packed language pass. Every job gets its
own results, or its own error: a bad image, template or model failure of one job never reaches
the others (the engine runs the calls again one by one if a shared pass fails).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pnp_vision.errors import DeadlineExceeded, Internal, PnpVisionError
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import ModelIdentity, QuestionResult
from pnp_vision.service.jobs import Completion, Job, RequestQueue

log = logging.getLogger(__name__)


class Batches:
    """What the MLX thread takes from the queue next: `size` jobs at most, waiting up to
    `wait_s` for more only while requests come together."""

    def __init__(self, jobs: RequestQueue, size: int, wait_s: float) -> None:
        if size < 1 or wait_s < 0:
            raise ValueError(f"batch size {size} must be >= 1 and wait {wait_s} s >= 0")
        self.jobs = jobs
        self.size = size
        self.wait_s = wait_s
        self._last = 1  # size of the previous batch

    def take(self, until: threading.Event | None = None) -> list[Job]:
        """The next batch (empty: the queue closed and empty, or `until` set)."""
        wait = self.wait_s if self._last > 1 else 0.0
        batch = self.jobs.take_batch(self.size, wait, until)
        self._last = len(batch)
        return batch


def answer(
    inspector: Any,
    jobs: list[Job],
    *,
    route: Callable[[str, str | None], str | None],
    activate: Callable[[str | None], None],
    model: ModelIdentity | None,
) -> list[Completion]:
    """Each job's completion (same order). `route(template, camera)` names the adapter of a
    question, `activate(route)` switches to it; `model` is stamped on answered jobs."""
    started = time.monotonic()
    done: dict[int, Completion] = {}
    live = []
    for job in jobs:
        job.started = started
        if job.expired(started):
            done[id(job)] = Completion(job, error=DeadlineExceeded(late(job)))
        else:
            live.append(job)
    if live:
        done.update(_run(inspector, live, route, activate, model, started))
    return [done[id(job)] for job in jobs]


def _run(
    inspector: Any,
    jobs: list[Job],
    route: Callable[[str, str | None], str | None],
    activate: Callable[[str | None], None],
    model: ModelIdentity | None,
    started: float,
) -> dict[int, Completion]:
    from pnp_vision.inspect import Question
    from pnp_vision.inspect.engine import BatchCall

    # Per adapter route, each job's questions on it (question indices), in arrival order.
    parts: dict[str | None, list[tuple[Job, list[int]]]] = {}
    wire: dict[int, list[QuestionResult | None]] = {}
    for job in jobs:
        specs = job.request.question_list()
        wire[id(job)] = [None] * len(specs)
        mine: dict[str | None, list[int]] = {}
        for i, q in enumerate(specs):
            mine.setdefault(route(q.template, job.request.camera), []).append(i)
        for name, indices in mine.items():
            parts.setdefault(name, []).append((job, indices))
    failed: dict[int, BaseException] = {}
    for name, asked in parts.items():
        asked = [(job, indices) for job, indices in asked if id(job) not in failed]
        if not asked:
            continue
        calls = []
        for job, indices in asked:
            specs = job.request.question_list()
            try:
                questions = [
                    Question(template=specs[i].template, params=specs[i].params) for i in indices
                ]
            except Exception as exc:
                failed[id(job)] = exc
                continue
            image = job.image_bytes if job.image_bytes is not None else job.frame.image
            calls.append(BatchCall(image, questions, job.request.roi))
        asked = [(job, indices) for job, indices in asked if id(job) not in failed]
        try:
            activate(name)
            outcomes = inspector.inspect_batch(calls)
        except Exception as exc:  # the switch (or the engine itself) failed: every job here
            outcomes = [exc] * len(calls)
        for (job, indices), outcome in zip(asked, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed[id(job)] = outcome
                continue
            for i, r in zip(indices, outcome, strict=True):
                wire[id(job)][i] = QuestionResult.model_validate(
                    {**r.model_dump(mode="json"), "adapter": name}
                )
    ms = round((time.monotonic() - started) * 1000, 3)
    out = {}
    for job in jobs:
        error = failed.get(id(job))
        if error is None:
            answered = [r for r in wire[id(job)] if r is not None]
            out[id(job)] = Completion(
                job, answered, inference_ms=ms, ran=True, model=model, batch=len(jobs)
            )
        elif isinstance(error, PnpVisionError):
            out[id(job)] = Completion(job, error=error, inference_ms=ms, ran=True, batch=len(jobs))
        else:
            log.error(
                "inference failed %s",
                kv(id=job.id, camera=job.request.camera),
                exc_info=(type(error), error, error.__traceback__),
            )
            out[id(job)] = Completion(
                job, error=Internal(f"inference failed: {error!r}"), ran=True, batch=len(jobs)
            )
    return out


def late(job: Job) -> str:
    """Why a job was not started: how long it waited against its deadline."""
    waited = (job.started or time.monotonic()) - job.arrival
    allowed = job.deadline - job.arrival
    return f"deadline of {allowed * 1000:.0f} ms passed after {waited * 1000:.0f} ms in the queue"
