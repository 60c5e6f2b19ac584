"""Reload without downtime: a second model generation loads while the current one answers.

A `reload` request (or SIGHUP) re-reads the settings, the `prompts/` templates, the model folder
and its adapters into a new `ModelThread` in standby. The current generation keeps taking jobs
meanwhile; the new one loads, warms up and self-checks (one inspection per template). Only then
does the I/O thread swap them: new templates for admission, `go` for the new thread, `retire`
for the old (which finishes the job it is running, so nothing in flight is lost). A failed
reload leaves the old generation answering and is reported in the reply, in `status` and in one
log line. Both generations are resident during the load: memory for two models is needed.
I/O thread only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pnp_vision.config import Settings
from pnp_vision.errors import Busy, ModelError, PnpVisionError, ShuttingDown
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import ReloadResult, ReloadStatus, error_reply, ok_reply
from pnp_vision.service.model_thread import ModelState, ModelThread
from pnp_vision.service.replies import Replies

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet

log = logging.getLogger("pnp_vision.service.worker")

# (settings, templates, generation, standby) -> a ModelThread not yet started
MakeModel = Callable[[Settings, "TemplateSet", int, bool], ModelThread]


class Generations:
    """The model generation answering now (`current`) and the one a reload loads (`pending`)."""

    def __init__(
        self,
        first: ModelThread,
        *,
        make: MakeModel,
        reread: Callable[[], Settings],
        replies: Replies,
    ) -> None:
        self.current = first
        self.pending: ModelThread | None = None
        self.pending_templates: TemplateSet | None = None
        self.status: ReloadStatus | None = None
        self._make = make
        self._reread = reread
        self._replies = replies
        self._waiters: list[tuple[list[bytes], str]] = []
        self._started = 0.0

    def request(self, envelope: list[bytes] | None, request_id: str | None) -> None:
        """Start a reload (or join the one running); the reply comes when it ends."""
        if self.pending is not None:
            if envelope is not None and request_id is not None:
                self._waiters.append((envelope, request_id))
            log.info("reload joins the one running %s", kv(id=request_id))
            return
        if self.current.state is not ModelState.READY:
            self._refuse(envelope, request_id, Busy("the model is still loading; reload later"))
            return
        from pnp_vision.inspect.templates import TemplateSet

        generation = self.current.generation + 1
        self._started = time.monotonic()
        try:
            settings = self._reread()
            templates = TemplateSet.load(settings.prompts_dir)
        except PnpVisionError as exc:
            self._record(generation, error=exc)
            log.error("reload failed %s", kv(id=request_id, generation=generation, error=exc))
            self._refuse(envelope, request_id, exc)
            return
        if envelope is not None and request_id is not None:
            self._waiters.append((envelope, request_id))
        self.pending = self._make(settings, templates, generation, True)
        self.pending_templates = templates
        self.status = ReloadStatus(state="loading", generation=generation, started=time.time())
        log.info(
            "reload started %s",
            kv(id=request_id, generation=generation, path=settings.model_dir),
        )
        self.pending.start()

    def poll(self) -> TemplateSet | None:
        """After any wake-up: finish a reload that ended. Returns the new templates on a swap."""
        pending = self.pending
        if pending is None:
            return None
        state, error = pending.snapshot()
        if state is ModelState.LOADING:
            if pending.is_alive():
                return None
            error = ModelError("the reload's model thread died")
        if state is ModelState.FAILED or error is not None:
            failure = error or ModelError("reload failed")
            self._record(pending.generation, error=failure)
            log.error(
                "reload failed, the old model keeps answering %s",
                kv(
                    generation=pending.generation,
                    kept=self.current.generation,
                    error=failure,
                    load_s=self._elapsed(),
                ),
            )
            self._answer(lambda rid: error_reply(rid, failure))
            self.pending = self.pending_templates = None
            return None
        templates = self.pending_templates
        assert templates is not None and pending.identity is not None
        old, self.current = self.current, pending
        self.pending = self.pending_templates = None
        pending.go()
        old.retire()
        self._record(pending.generation)
        log.info(
            "reload done %s",
            kv(
                generation=pending.generation,
                path=pending.model_dir,
                fingerprint=pending.identity.fingerprint,
                adapters=len(pending.routes.folders()),
                checked=len(pending.checked),
                load_s=self._elapsed(),
            ),
        )
        result = ReloadResult(
            model=pending.identity,
            load_s=pending.load_s or self._elapsed(),
            templates=templates.names(),
            adapters=pending.routes.listing(),
            checked=pending.checked,
        )
        self._answer(lambda rid: ok_reply(rid, result))
        return templates

    def abandon(self) -> None:
        """On shutdown: drop a reload still loading, answering its waiters shutting_down."""
        if self.pending is not None:
            self.pending.retire()
            self.pending = self.pending_templates = None
            self._answer(lambda rid: error_reply(rid, ShuttingDown("the worker is shutting down")))

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def _record(self, generation: int, error: PnpVisionError | None = None) -> None:
        started = self.status.started if self.status is not None else time.time()
        self.status = ReloadStatus(
            state="failed" if error is not None else "ok",
            generation=generation,
            started=started,
            load_s=self._elapsed(),
            error=str(error) if error is not None else None,
        )

    def _answer(self, reply: Callable[[str], object]) -> None:
        waiters, self._waiters = self._waiters, []
        for envelope, request_id in waiters:
            self._replies.send(envelope, reply(request_id))  # type: ignore[arg-type]

    def _refuse(
        self, envelope: list[bytes] | None, request_id: str | None, error: PnpVisionError
    ) -> None:
        if envelope is not None:
            self._replies.send(envelope, error_reply(request_id, error))
