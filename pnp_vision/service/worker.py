"""`Worker`: the resident inspection service, composed of its parts and run until stopped.

The parts, each in its own module: `ioloop` (the I/O thread's poll and dispatch), `inspections`
(admission, frame waits, deadlines, completions), `retries` (resends and duplicates),
`frame_waits` / `framestore` (frame choice), `jobs` (the queue to the MLX thread),
`model_thread` (MLX and its state), `reloads` (model generations: reload without downtime),
`status` (counters and the status reply), `history` (`recent` / `crop`), `outcomes` (labelled
frames from the controller). This module only builds them, binds the sockets and handles
signals (SIGINT/SIGTERM drain, SIGHUP reloads).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from pnp_vision.config import Settings
from pnp_vision.errors import bind_failed
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import StatusResult
from pnp_vision.service.frame_waits import FrameWaits
from pnp_vision.service.framestore import FrameStore
from pnp_vision.service.history import History
from pnp_vision.service.inspections import Inspections
from pnp_vision.service.ioloop import MAX_POLL_S, IOLoop
from pnp_vision.service.jobs import RequestQueue
from pnp_vision.service.model_thread import AdapterRoutes, Completion, ModelState, ModelThread
from pnp_vision.service.outcomes import Outcomes
from pnp_vision.service.reloads import Generations
from pnp_vision.service.replies import Replies
from pnp_vision.service.status import Counters, status_result
from pnp_vision.service.wakeup import Wakeup
from pnp_vision.transport.security import security_from_settings

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet

log = logging.getLogger(__name__)


class Worker:
    """Build with settings, then `serve()` (blocks until SIGTERM/SIGINT or `stop()`).

    `reread`: how a reload gets its settings again (the CLI re-reads config/*.toml and the
    environment with its own options on top); by default the same settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        context: zmq.Context | None = None,
        reread: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self.reread = reread or (lambda: settings)
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.counters = Counters()
        self.jobs = RequestQueue(settings.queue_size)
        self.history = History(settings.history_size)
        self.wakeup = Wakeup()
        self.waits = FrameWaits(self.wakeup)
        self._stop = threading.Event()
        # Set once the ROUTER is bound (not the model): for callers running serve() in a thread.
        self.ready = threading.Event()
        self.templates: TemplateSet | None = None
        self.router: zmq.Socket | None = None
        self.model: ModelThread | None = None  # the first generation (see generations)
        self.generations: Generations | None = None
        self.outcomes: Outcomes | None = None
        self._reload = threading.Event()  # set by SIGHUP or reload()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self.store: FrameStore | None = None
        self.inspections: Inspections | None = None
        self.loop: IOLoop | None = None
        # The longest the loop sleeps with nothing due (a safety net; tests raise it to show
        # that nothing but events wakes the loop).
        self.max_poll_s = MAX_POLL_S
        self._subscriber: Any = None
        self._zap: Any = None

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Begin the drain (thread-safe; what the signal handlers call)."""
        self._stop.set()
        self.wakeup.set()

    def reload(self) -> None:
        """Reload model, adapters and templates like SIGHUP does (thread-safe)."""
        self._reload.set()
        self.wakeup.set()

    @property
    def wakes(self) -> int:
        """How often the I/O loop has woken (a debug figure: an idle worker stays asleep)."""
        return self.loop.wakes if self.loop is not None else 0

    @property
    def draining(self) -> bool:
        return self.inspections is not None and self.inspections.draining

    def serve(self) -> None:
        """Run until stopped; raise ModelLoadError if the model cannot be loaded."""
        from pnp_vision.inspect.runtime import setup_runtime

        setup_runtime(self.settings)  # before pnp_vision.inspect (or anything) imports mlx
        from pnp_vision.capture.subscriber import FrameSubscriber
        from pnp_vision.inspect.templates import TemplateSet

        settings = self.settings
        # Loaded once: the I/O thread checks requests against it, the model thread renders it.
        self.templates = templates = TemplateSet.load(settings.prompts_dir)
        restore = _nothing
        try:
            self._subscriber = FrameSubscriber(
                settings.frames_endpoint,
                max_message_bytes=settings.max_message_bytes,
                context=self.context,
                security=security_from_settings(settings.keys_dir, settings.client_key),
                on_frame=self.waits.on_frame,
            )
            self.store = self.waits.store = FrameStore(
                self._subscriber,
                endpoint=settings.frames_endpoint,
                max_frame_age_s=settings.max_frame_age_s,
                discovery_s=settings.camera_discovery_s,
            )
            self.router = self._bind_router()
            self.model = self._make_model(settings, templates, 1, False)
            replies = Replies(self.router, self.counters)
            self.generations = Generations(
                self.model, make=self._make_model, reread=self.reread, replies=replies
            )
            if settings.outcomes_dir is not None:
                self.outcomes = Outcomes(Path(settings.outcomes_dir))
            self.inspections = Inspections(
                settings,
                templates=templates,
                jobs=self.jobs,
                waits=self.waits,
                done=self._done,
                history=self.history,
                replies=replies,
                counters=self.counters,
            )
            self.loop = IOLoop(
                settings,
                router=self.router,
                wakeup=self.wakeup,
                stop=self._stop,
                inspections=self.inspections,
                generations=self.generations,
                history=self.history,
                templates=templates,
                replies=replies,
                counters=self.counters,
                status=self.status,
                max_poll_s=self.max_poll_s,
                reload=self._reload,
                outcomes=self.outcomes,
            )
            restore = self._install_signal_handlers()
            self.model.start()
            self.ready.set()
            log.info(
                "worker listening %s",
                kv(endpoint=settings.requests_endpoint, frames=settings.frames_endpoint),
            )
            self.loop.run()
        finally:
            restore()
            self._close()
        state, error = self.generations.current.snapshot()
        if state is ModelState.FAILED and error is not None:
            raise error

    def _make_model(
        self, settings: Settings, templates: TemplateSet, generation: int, standby: bool
    ) -> ModelThread:
        """One model generation; a reload's (standby) self-checks before it may answer."""
        return ModelThread(
            model_dir=Path(settings.model_dir),
            templates=templates,
            min_confidence=settings.min_confidence,
            compute_dtype=settings.compute_dtype,
            refuse_untrained=settings.refuse_untrained,
            refuse_unfamiliar=settings.refuse_unfamiliar,
            jobs=self.jobs,
            wakeup=self.wakeup,
            done=self._done,
            generation=generation,
            adapters=AdapterRoutes(dict(settings.adapters), dict(settings.camera_adapters)),
            standby=standby,
            self_check=standby,
            batch_size=settings.batch_size,
            batch_wait_s=settings.batch_wait_s,
        )

    def _bind_router(self) -> zmq.Socket:
        from pnp_vision.transport.security import ZapHandler, warn_if_exposed

        settings = self.settings
        router = self.context.socket(zmq.ROUTER)
        router.linger = 1000  # let the last replies out on shutdown
        router.sndhwm = 1000
        router.rcvhwm = 1000
        # A frame above this is dropped by ZeroMQ (the peer is disconnected); smaller but still
        # too large requests get a `bad_request` reply from the I/O loop.
        router.maxmsgsize = settings.max_message_bytes
        try:
            security = security_from_settings(settings.keys_dir, settings.client_key)
            if security is not None:
                self._zap = ZapHandler(self.context, security.authorized_dir).start()
                security.secure_server(router)  # before bind; logs refused handshakes
            warn_if_exposed(settings.requests_endpoint, security)
            router.bind(settings.requests_endpoint)
        except zmq.ZMQError as exc:
            router.close(linger=0)
            raise bind_failed("requests_endpoint", settings.requests_endpoint, exc) from exc
        except BaseException:
            router.close(linger=0)  # an open socket would make context.term() hang forever
            raise
        return router

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return _nothing
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: self._on_signal(signum))
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            log.info("signal received, reloading %s", kv(signal="SIGHUP"))
            self.reload()
            return
        log.info("signal received, draining %s", kv(signal=signal.Signals(signum).name))
        self.stop()

    def _close(self) -> None:
        if self.generations is not None:
            self.generations.abandon()
            current = self.generations.current
            if current.is_alive():
                current.join(timeout=2.0)  # past the drain timeout it is left to die with us
        if self.outcomes is not None:
            self.outcomes.close()
        if self._subscriber is not None:
            self._subscriber.close()
        if self.router is not None:
            self.router.close()
        if self._zap is not None:
            self._zap.stop()
        self.wakeup.close()
        if self._own_context:
            self.context.term()  # the model thread holds no socket: this never waits on it
        log.info("worker stopped %s", kv(**self.counters.counts))

    # -- status ---------------------------------------------------------------------------

    def status(self) -> StatusResult:
        assert self.generations is not None and self.store is not None
        return status_result(
            self.settings,
            self.counters,
            self.generations.current,
            self.generations.status,
            self.store,
            self.jobs,
            waiting_for_frame=len(self.waits),
            draining=self.draining,
        )


def _nothing() -> None:
    pass
