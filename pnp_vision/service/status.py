"""The worker's counters and its `status` reply, built from what each part reports.

`status` is answered by the I/O thread itself (never queued behind an inference), so it reads
the model thread's state through `ModelThread.snapshot()` and the queue under its lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pnp_vision.config import Settings
from pnp_vision.errors import ErrorCode
from pnp_vision.protocol.requests import (
    ModelStatus,
    QueueStatus,
    ReloadStatus,
    Reply,
    StatusResult,
)
from pnp_vision.service.framestore import FrameStore
from pnp_vision.service.jobs import RequestQueue
from pnp_vision.service.model_thread import ModelState, ModelThread
from pnp_vision.service.template_counts import PerTemplate

_COUNTED = (
    "received",
    "inspect",
    "status",
    "templates",
    "ping",
    "recent",
    "crop",
    "reload",
    "outcome",
    "replies",
    "ok_replies",
    "inferences",
    "duplicates",
    "resent_replies",
    "bad_requests_held",
    "bad_requests_refused",
)


@dataclass
class Counters:
    """What went through the worker since it started (I/O thread only)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTED, 0))
    errors: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in ErrorCode})
    templates: PerTemplate = field(default_factory=PerTemplate)
    started: float = field(default_factory=time.monotonic)

    def count_reply(self, reply: Reply) -> None:
        if reply.ok:
            self.counts["ok_replies"] += 1
        elif reply.error is not None:
            self.errors[reply.error.code.value] += 1

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)


def status_result(
    settings: Settings,
    counters: Counters,
    model: ModelThread,
    reload: ReloadStatus | None,
    store: FrameStore,
    jobs: RequestQueue,
    *,
    waiting_for_frame: int,
    draining: bool,
) -> StatusResult:
    """`model`: the generation answering now; `reload`: the last reload's outcome (taken
    from `reloads.Generations` by the caller: replies use these counters, reloads use replies,
    so this module must not import reloads)."""
    state, error = model.snapshot()
    return StatusResult(
        uptime_s=counters.uptime(),
        ready=state is ModelState.READY and not draining,
        draining=draining,
        model=ModelStatus(
            state=state.value,
            path=str(model.model_dir),
            info=model.info,
            error=str(error) if error else None,
            identity=model.identity,
            adapters=model.routes.listing(),
        ),
        queue=QueueStatus(
            capacity=jobs.capacity,
            depth=len(jobs),
            waiting_for_frame=waiting_for_frame,
            in_flight=len(model.in_flight),
        ),
        cameras=store.views(),
        counters={
            **counters.counts,
            "frame_errors": store.subscriber.errors,
            "frame_link_drops": store.subscriber.link_drops,
        },
        errors={code: n for code, n in counters.errors.items() if n},
        endpoints={"requests": settings.requests_endpoint, "frames": settings.frames_endpoint},
        min_confidence=settings.min_confidence,
        templates=counters.templates.snapshot(),
        reload=reload,
        folders=settings.folders,
    )
