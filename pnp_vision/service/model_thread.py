"""A thread that owns one loaded model generation: it creates the Inspector (and its adapters),
warms it up, self-checks it, and runs every inference of that generation.

MLX streams are per thread, so the Inspector is created and used here only. A reload starts a
second ModelThread in standby: it loads while the current one keeps answering, and takes over
the shared job queue only once it passed its self-check (`go`); the old one is `retire`d and
ends after the batch it is running. Jobs are taken and answered in batches (`batching`: the
requests that are ready, up to `batch_size`; 1 is one at a time). Finished jobs go
back to the I/O thread through `done` plus a wake-up of its poller (only the I/O thread may
touch the ROUTER). An engine exception travels back as the job's error; it is never turned into
an answer. The model's state is written here and read by the I/O thread for `status`, so it is
one (state, error) pair behind a lock, never two loose attributes.
"""

from __future__ import annotations

import enum
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnp_vision.errors import ModelError, ModelLoadError, PnpVisionError
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import ModelIdentity
from pnp_vision.service import batching
from pnp_vision.service.jobs import Completion, Job, RequestQueue

if TYPE_CHECKING:
    from pnp_vision.inspect.templates import TemplateSet
    from pnp_vision.service.wakeup import Wakeup

log = logging.getLogger(__name__)


class ModelState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class AdapterRoutes:
    """Which adapter folder answers a question: the template's, else the camera's, else none."""

    templates: Mapping[str, Path] = field(default_factory=dict)
    cameras: Mapping[str, Path] = field(default_factory=dict)

    def folders(self) -> dict[str, Path]:
        """Each distinct folder once, by its name in replies (the folder path)."""
        return {str(f): Path(f) for f in [*self.templates.values(), *self.cameras.values()]}

    def under(self, own: Mapping[str, Path]) -> AdapterRoutes:
        """These routes with a model folder's own template adapters beneath them: a template
        configured here keeps its adapter, the others of `own` take theirs."""
        return AdapterRoutes({**own, **self.templates}, self.cameras) if own else self

    def route(self, template: str, camera: str | None) -> str | None:
        folder = self.templates.get(template)
        if folder is None and camera is not None:
            folder = self.cameras.get(camera)
        return None if folder is None else str(folder)

    def listing(self) -> dict[str, str]:
        return {
            **{f"template:{k}": str(v) for k, v in self.templates.items()},
            **{f"camera:{k}": str(v) for k, v in self.cameras.items()},
        }


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
        refuse_unfamiliar: bool = False,
        done: queue.SimpleQueue[Completion] | None = None,
        generation: int = 1,
        adapters: AdapterRoutes | None = None,
        standby: bool = False,
        self_check: bool = False,
        batch_size: int = 1,
        batch_wait_s: float = 0.0,
    ) -> None:
        super().__init__(name=f"mlx-{generation}", daemon=True)
        self.model_dir = model_dir
        self.templates = templates  # the I/O thread's set of this generation, read by both
        self.min_confidence = min_confidence
        self.compute_dtype = compute_dtype
        self.refuse_untrained = refuse_untrained
        self.refuse_unfamiliar = refuse_unfamiliar
        self.jobs = jobs
        # Shared by every generation: the I/O thread reads completions from one place.
        self.done: queue.SimpleQueue[Completion] = done or queue.SimpleQueue()
        self.generation = generation
        self.routes = adapters or AdapterRoutes()
        self.self_check = self_check
        self.batches = batching.Batches(jobs, batch_size, batch_wait_s)
        self.identity: ModelIdentity | None = None
        self.checked: list[str] = []  # templates the self-check inspected
        self.load_s: float | None = None
        self._wakeup = wakeup
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._state = ModelState.LOADING
        self._error: PnpVisionError | None = None
        self._in_flight: tuple[Job, ...] = ()
        self._adapter_set: Any = None
        self._go = threading.Event()  # standby ends: take jobs (also set by retire)
        self._retired = threading.Event()  # take no further job; exit after the current one
        if not standby:
            self._go.set()

    def go(self) -> None:
        """Start taking jobs (a standby generation that passed its self-check)."""
        self._go.set()

    def retire(self) -> None:
        """Take no further job; the thread ends after the one it runs (if any)."""
        self._retired.set()
        self._go.set()
        self.jobs.wake_all()

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
    def in_flight(self) -> tuple[Job, ...]:
        """The jobs of the batch the model is answering now."""
        with self._lock:
            return self._in_flight

    def run(self) -> None:
        try:
            inspector = self._load()
            if inspector is None:
                return
            self._go.wait()
            while True:
                jobs = self.batches.take(until=self._retired)
                if not jobs:  # closed and empty (the drain), or retired by a reload
                    return
                for completion in self._run_batch(inspector, jobs):
                    self.done.put(completion)
                self._wakeup.set()
        finally:
            self._wakeup.set()  # an exit (expected or not) is an event the I/O thread checks

    def _load(self) -> Any:
        started = time.monotonic()
        try:
            from pnp_vision.inspect import Inspector
            from pnp_vision.inspect.adapters import base_fingerprint

            inspector = Inspector(
                self.model_dir,
                self.templates,
                min_confidence=self.min_confidence,
                compute_dtype=self.compute_dtype,
                refuse_untrained=self.refuse_untrained,
                refuse_unfamiliar=self.refuse_unfamiliar,
            )
            from pnp_vision.inspect.adapters import own_adapters

            # the folder's own adapters (`pnp-vision train`) route its taught templates
            self.routes = self.routes.under(own_adapters(self.model_dir))
            folders = self.routes.folders()
            if folders:
                from pnp_vision.inspect.adapters import AdapterSet

                self._adapter_set = AdapterSet(inspector.model, self.model_dir, folders)
            inspector.warm_up(self.batches.size)
            if self.self_check:
                self.checked = self._check(inspector)
            self.identity = ModelIdentity(
                path=str(self.model_dir),
                fingerprint=base_fingerprint(self.model_dir)[:12],
                generation=self.generation,
            )
            self.info = {k: _jsonable(v) for k, v in inspector.info().items()}
        except PnpVisionError as exc:
            self._load_failed(exc)
            return None
        except Exception as exc:  # an engine bug: still report it as a load failure, with cause
            log.exception("model load failed")
            self._load_failed(ModelLoadError(f"cannot load model {self.model_dir}: {exc!r}"))
            return None
        self.load_s = round(time.monotonic() - started, 3)
        with self._lock:
            self._state = ModelState.READY
        self._wakeup.set()
        log.info(
            "model ready %s",
            kv(
                path=self.model_dir,
                generation=self.generation,
                adapters=len(self.routes.folders()),
                checked=len(self.checked),
                load_s=self.load_s,
            ),
        )
        return inspector

    def _load_failed(self, exc: PnpVisionError) -> None:
        log.error(
            "model load failed %s", kv(path=self.model_dir, generation=self.generation, error=exc)
        )
        self.fail(exc)

    def _check(self, inspector: Any) -> list[str]:
        """One inspection per template (with the adapter its questions get) on a synthetic
        frame: a set that cannot answer every template never replaces the one that can."""
        from pnp_vision.inspect import Question

        image = _check_image()
        checked = []
        for template in self.templates:
            params = example_params(template)
            if params is None:
                log.info("self-check skips a template %s", kv(template=template.name))
                continue
            cameras = [None, *self.routes.cameras]
            for route in dict.fromkeys(self.routes.route(template.name, c) for c in cameras):
                self._activate(route)
                result = inspector.inspect(image, [Question(template=template.name, params=params)])
                probabilities = result[0].probabilities
                total = sum(probabilities.values())
                if result[0].answer not in template.answers or not math.isclose(
                    total, 1.0, abs_tol=1e-3
                ):
                    raise ModelError(
                        f"self-check failed on template {template.name} (adapter {route}):"
                        f" answer {result[0].answer!r}, probabilities summing to {total:.4f}"
                    )
            checked.append(template.name)
        self._activate(None)
        return checked

    def _activate(self, route: str | None) -> None:
        if self._adapter_set is not None:
            self._adapter_set.activate(route)

    def _run_batch(self, inspector: Any, jobs: list[Job]) -> list[Completion]:
        with self._lock:
            self._in_flight = tuple(jobs)
        try:
            return batching.answer(
                inspector,
                jobs,
                route=self.routes.route,
                activate=self._activate,
                model=self.identity,
            )
        finally:
            with self._lock:
                self._in_flight = ()


def example_params(template: Any) -> dict[str, str] | None:
    """Parameters the self-check can ask a template with, or None when one has no example."""
    params: dict[str, str] = {}
    for name, param in template.params.items():
        if param.choices:
            params[name] = param.choices[0]
        elif param.type == "integer":
            params[name] = str(param.minimum if param.minimum is not None else 0)
        else:
            fitting = [v for v in _SAMPLE_VALUES if _allowed(param, name, v)]
            if not fitting:
                return None
            params[name] = fitting[0]
    return params


_SAMPLE_VALUES = ("R0603", "A1", "A", "a", "1", "x")


def _allowed(param: Any, name: str, value: str) -> bool:
    try:
        param.check(name, value)
    except PnpVisionError:
        return False
    return True


def _check_image() -> Any:
    """A synthetic frame with some structure (a bright disc on grey): not a blank image."""
    import numpy as np

    yy, xx = np.mgrid[0:96, 0:128]
    image = np.full((96, 128, 3), 60, np.uint8)
    image[(yy - 48) ** 2 + (xx - 64) ** 2 < 400] = 200
    return image


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
